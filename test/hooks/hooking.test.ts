// The `hooking` module (hooks/lib/hooking.py) that hook scripts import: its
// Python unittest suite (test/hooks/hooking_test.py), run with the system
// Python 3, one tap assertion per Python test.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PYTHON = '/usr/bin/python3'; // not the pyenv python3 on PATH

t.test('hooking.py unit tests pass under /usr/bin/python3', async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: join(REPO, 'hooks', 'lib'), PYTHONDONTWRITEBYTECODE: '1' };
  for (const name of ['_hook_domxml', '_hook_json', '_hook_launchflags', 'vmId']) delete env[name];
  const res = spawnSync(PYTHON, ['-m', 'unittest', '-v', 'hooking_test'], {
    cwd: join(REPO, 'test', 'hooks'),
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  t.equal(res.error, undefined, 'python started');
  const out = res.stderr ?? '';
  // "test_x (hooking_test.Class.test_x) ... ok|skipped '...'|FAIL|ERROR"
  const results = [...out.matchAll(/^(test\w+) \(([\w.]+)\)(?:\n[^\n]*?)? \.\.\. (ok|skipped.*|FAIL|ERROR|expected failure|unexpected success)$/gm)];
  t.ok(results.length >= 30, `the suite ran (${results.length} tests)`);
  for (const [, name, where, verdict] of results) {
    const label = `${where ?? name}`;
    if (verdict === 'ok' || verdict === 'expected failure') t.pass(label);
    else if (verdict?.startsWith('skipped')) t.pass(`${label} (${verdict})`);
    else t.fail(`${label}: ${verdict}`);
  }
  t.equal(res.status, 0, 'unittest exit status', { output: res.status === 0 ? undefined : out });
  t.match(out, /\nOK( \(skipped=\d+\))?\n?$/, 'unittest reports OK');
});
