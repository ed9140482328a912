// scripts/tap-no-processinfo.mjs, which scripts/run-tests.sh preloads into every node process of
// a test run, keeps tap's @tapjs/processinfo from hooking module loading: a process started as tap
// starts a test file (processinfo's --import last) records no loaded file, while without the
// preload the same process records the files it loaded. With coverage on it skips nothing.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const PRELOAD = join(REPO, 'scripts', 'tap-no-processinfo.mjs');
const PROCESSINFO = join(REPO, 'node_modules', '@tapjs', 'processinfo', 'dist', 'esm', 'import.mjs');

/** Runs a script the way tap runs a test file; returns the files processinfo recorded for it. */
async function recordedFiles(t: Test, env: NodeJS.ProcessEnv): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hv-tap-preload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'dep.mjs'), 'export const x = 1;\n');
  writeFileSync(join(dir, 'main.mjs'), "import { x } from './dep.mjs';\nif (x !== 1) process.exit(2);\n");
  await execFileP(process.execPath, [`--import=${pathToFileURL(PROCESSINFO).href}`, join(dir, 'main.mjs')], {
    timeout: 30_000,
    // Only what this case sets: not the NODE_OPTIONS of the tap process running this test.
    env: { PATH: process.env['PATH'], _TAPJS_PROCESSINFO_CWD_: dir, ...env },
  });
  const infoDir = join(dir, '.tap', 'processinfo');
  const records = readdirSync(infoDir).map((f) => JSON.parse(readFileSync(join(infoDir, f), 'utf8')) as { files: string[]; argv: string[] });
  const mine = records.find((r) => r.argv.some((a) => a.endsWith('main.mjs')));
  if (!mine) throw new Error(`no processinfo record of main.mjs in ${infoDir}`);
  return mine.files.filter((f) => f.startsWith(dir));
}

const missing = existsSync(PROCESSINFO) ? false : `tap's @tapjs/processinfo is not at ${PROCESSINFO}`;
const preload = `--import=${pathToFileURL(PRELOAD).href}`;

t.test('without the preload processinfo records the modules a test process loads', { skip: missing }, async (t) => {
  // NODE_OPTIONS set (to a no-op): else tap's spawn hook in this process hands the child this process's own.
  t.ok((await recordedFiles(t, { NODE_OPTIONS: '--no-deprecation' })).some((f) => f.endsWith('dep.mjs')), 'the imported module is recorded');
});

t.test('with the preload processinfo hooks no module load; with coverage on it still does', { skip: missing }, async (t) => {
  // (processinfo records the main script itself without its hook: only the import tells.)
  const files = await recordedFiles(t, { NODE_OPTIONS: preload });
  t.notOk(files.some((f) => f.endsWith('dep.mjs')), `the imported module is not recorded: the loader hook was not registered (${files.length} file(s) recorded)`);
  const covered = await recordedFiles(t, { NODE_OPTIONS: preload, _TAPJS_PROCESSINFO_COVERAGE_: '1' });
  t.ok(covered.some((f) => f.endsWith('dep.mjs')), 'with coverage on the preload leaves processinfo alone');
});
