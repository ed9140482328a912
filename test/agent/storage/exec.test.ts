// The storage child-process runner: exit codes, stderr capture, stdin, and the timeout that kills the whole process group.
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageCommandError, StorageCommandTimeoutError } from '../../../agent/storage/errors.js';
import { resolveTool, run } from '../../../agent/storage/exec.js';

t.test('stdout, stdin and binary output', async (t) => {
  const r = await run(['sh', '-c', 'cat; echo done'], { timeoutMs: 5000, input: 'hello\n' });
  t.equal(r.rc, 0);
  t.equal(r.stdout, 'hello\ndone\n');
  const bin = await run(['head', '-c', '4096', '/dev/zero'], { timeoutMs: 5000 });
  t.equal(bin.stdoutBuf.length, 4096);
});

t.test('a non-zero exit is a StorageCommandError with argv, rc and stderr', async (t) => {
  const e = await run(['sh', '-c', 'echo "  WARNING: noise" >&2; echo "real problem" >&2; exit 3'], { timeoutMs: 5000 }).catch((x: unknown) => x);
  t.ok(e instanceof StorageCommandError);
  const err = e as StorageCommandError;
  t.equal(err.rc, 3);
  t.same(err.argv, ['sh', '-c', 'echo "  WARNING: noise" >&2; echo "real problem" >&2; exit 3']);
  t.match(err.stderr, 'real problem');
  t.match(err.message, /rc=3\): real problem$/);
  t.equal(err.code, 1008, 'storageCommandFailed');
  t.match(err.data, { rc: 3, argv: ['sh', '-c'] });
  const ok = await run(['sh', '-c', 'exit 5'], { timeoutMs: 5000, okCodes: [0, 5] });
  t.equal(ok.rc, 5, 'okCodes are not errors');
  await t.rejects(run(['/nonexistent/tool'], { timeoutMs: 5000 }), { name: 'StorageCommandError', rc: 127 });
});

t.test('a timeout kills the command and everything it started', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hv-exec-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'pid');
  const t0 = performance.now();
  const e = await run(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 }).catch((x: unknown) => x);
  const ms = performance.now() - t0;
  t.ok(e instanceof StorageCommandTimeoutError, 'StorageCommandTimeoutError');
  t.equal((e as StorageCommandTimeoutError).code, 1002, 'the agent\'s timeout code');
  t.ok(ms < 3000, `returned after ${Math.round(ms)} ms`);
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  // Dead means gone or a zombie (PID 1 here reaps orphans only every couple of seconds).
  const dead = async () => {
    const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    return st === '' || /^\d+ \(.*\) Z/.test(st);
  };
  let gone = await dead();
  for (let i = 0; i < 50 && !gone; i++) { await sleep(20); gone = await dead(); }
  t.ok(gone, 'the grandchild (sleep) was killed with the group');
});

t.test('tools are found in sbin even if PATH lacks it', async (t) => {
  t.match(resolveTool('lvm'), /^\/(usr\/)?s?bin\/lvm$/);
  t.equal(resolveTool('/bin/true'), '/bin/true');
});
