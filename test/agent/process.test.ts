// agent/process.ts, the one way the agent runs a program: the process group is
// killed on timeout and abort, output is bounded, the run ends when the child
// exits even if a grandchild holds its pipes, and a Runner raises the caller's
// named errors. Real processes throughout.
import t, { type Test } from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CommandError, CommandTimeoutError, createRunner, run, runProcess, startDetached, type CommandErrors,
} from '../../agent/process.js';

async function scratch(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hv-process-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Gone, or a zombie waiting for a slow init to reap it: not running either way. */
async function deadWithin(pid: number, ms: number): Promise<boolean> {
  const dead = async (): Promise<boolean> => {
    const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    return st === '' || /^\d+ \(.*\) Z/.test(st);
  };
  for (let waited = 0; waited < ms; waited += 20) {
    if (await dead()) return true;
    await sleep(20);
  }
  return dead();
}

const pidIn = async (file: string): Promise<number> => Number((await readFile(file, 'utf8')).trim());

t.test('a run ends when the child exits, although a daemon it started holds the pipes', async (t) => {
  const pidFile = join(await scratch(t), 'daemon.pid');
  const t0 = performance.now();
  const r = await runProcess(['sh', '-c', `echo before; setsid sleep 30 & echo $! > ${pidFile}; exit 0`], { timeoutMs: 20_000 });
  const ms = performance.now() - t0;
  t.teardown(async () => { try { process.kill(await pidIn(pidFile), 'SIGKILL'); } catch { /* gone */ } });
  t.equal(r.rc, 0);
  t.equal(r.stdout.toString(), 'before\n', 'the output written before the exit is all there');
  t.ok(ms < 2000, `returned after ${Math.round(ms)} ms, not when the daemon ends (30 s) or at the timeout (20 s)`);
  t.notOk(r.timedOut);
});

t.test('all output is read when the child exits right after writing a lot', async (t) => {
  const r = await runProcess(['head', '-c', '5000000', '/dev/zero'], { timeoutMs: 20_000 });
  t.equal(r.rc, 0);
  t.equal(r.stdout.length, 5_000_000, 'every byte, including what was still in the pipe at exit');
  t.notOk(r.truncated);
});

t.test('output still in the pipes at exit is all read even when the grace period is shorter than the reading', async (t) => {
  // A grace of 0 ms: the timer is due at once after the exit, while what the pipe still held is
  // being read. The run must still end with every byte, and when the pipes close.
  const t0 = performance.now();
  const r = await runProcess(['head', '-c', '5000000', '/dev/zero'], { timeoutMs: 20_000, pipeGraceMs: 0 });
  t.equal(r.rc, 0);
  t.equal(r.stdout.length, 5_000_000, 'every byte');
  t.ok(performance.now() - t0 < 10_000, 'ended when the pipes closed, not at the timeout');
});

t.test('output is bounded: the child is drained but only the cap is kept', async (t) => {
  const r = await runProcess(['sh', '-c', 'head -c 3000000 /dev/zero; head -c 200000 /dev/zero >&2; echo done >&2'],
    { timeoutMs: 20_000, stdoutCapBytes: 1000, stderrCapBytes: 100 });
  t.equal(r.rc, 0, 'the child did not block on a full pipe');
  t.equal(r.stdout.length, 1000);
  t.equal(Buffer.byteLength(r.stderr), 100);
  t.ok(r.truncated);
});

t.test('a timeout kills the whole process group', async (t) => {
  const pidFile = join(await scratch(t), 'child.pid');
  const t0 = performance.now();
  const r = await runProcess(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 });
  const ms = performance.now() - t0;
  t.ok(r.timedOut);
  t.equal(r.exitSignal, 'SIGKILL');
  t.equal(r.rc, 137, '128 + SIGKILL');
  t.ok(ms < 3000, `returned after ${Math.round(ms)} ms`);
  t.ok(await deadWithin(await pidIn(pidFile), 1000), 'the grandchild (sleep) was killed with the group');
});

t.test('an abort kills the whole process group and says so', async (t) => {
  const pidFile = join(await scratch(t), 'child.pid');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  const r = await runProcess(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 20_000, signal: ac.signal });
  t.ok(r.aborted);
  t.notOk(r.timedOut);
  t.ok(await deadWithin(await pidIn(pidFile), 1000), 'the grandchild was killed with the group');
  const before = await runProcess(['sleep', '30'], { timeoutMs: 20_000, signal: AbortSignal.abort() });
  t.ok(before.aborted && before.ms === 0, 'an already aborted signal starts nothing');
});

t.test('a program that cannot start: rc 127 and the spawn error, never a rejection', async (t) => {
  const r = await runProcess(['/nonexistent/program'], { timeoutMs: 5000 });
  t.equal(r.rc, 127);
  t.match(String(r.spawnError), /ENOENT/);
  await t.rejects(runProcess([], { timeoutMs: 5000 }), TypeError, 'an empty argv is a programming error');
});

t.test('stdin, environment and locale', async (t) => {
  const r = await runProcess(['sh', '-c', 'cat; echo "$LC_ALL/$HV_X/${HV_BASE:-none}"'], { timeoutMs: 5000, input: 'in:', env: { HV_X: 'x' } });
  t.equal(r.stdout.toString(), 'in:C/x/none\n', 'LC_ALL=C by default (callers parse output), env added');
  const inherit = await runProcess(['sh', '-c', 'echo "${LC_ALL:-unset}/$HV_BASE/${PATH:+path}"'],
    { timeoutMs: 5000, locale: 'inherit', baseEnv: { HV_BASE: 'b', PATH: process.env.PATH } });
  t.equal(inherit.stdout.toString(), 'unset/b/path\n', 'baseEnv replaces process.env; the locale is left alone');
  const noStdin = await runProcess(['sh', '-c', 'cat; echo end'], { timeoutMs: 5000 });
  t.equal(noStdin.stdout.toString(), 'end\n', 'stdin is /dev/null without input');
});

t.test("a Runner raises the caller's errors: failed, timed out, aborted; okCodes are not errors", async (t) => {
  class Failed extends Error { constructor(readonly rc: number, readonly stderr: string) { super('failed'); } }
  class TimedOut extends Error {}
  class Aborted extends Error {}
  const errors: CommandErrors = {
    failed: (_argv, rc, stderr) => new Failed(rc, stderr),
    timedOut: () => new TimedOut(),
    aborted: () => new Aborted(),
  };
  const runner = createRunner({ area: 'test', errors });
  const ok = await runner(['sh', '-c', 'printf "a\\0b"; exit 3'], { timeoutMs: 5000, okCodes: [0, 3] });
  t.equal(ok.rc, 3);
  t.equal(ok.stdout, 'a\0b');
  t.same([...ok.stdoutBuf], [97, 0, 98]);
  const failed = await runner(['sh', '-c', 'echo why >&2; exit 4'], { timeoutMs: 5000 }).catch((e: unknown) => e);
  t.ok(failed instanceof Failed && failed.rc === 4 && failed.stderr === 'why\n', 'failed(argv, rc, stderr)');
  const notFound = await runner(['/nonexistent/program'], { timeoutMs: 5000 }).catch((e: unknown) => e);
  t.ok(notFound instanceof Failed && notFound.rc === 127 && /ENOENT/.test(notFound.stderr), 'a spawn error is a failure with rc 127');
  t.ok(await runner(['sleep', '30'], { timeoutMs: 200 }).catch((e: unknown) => e) instanceof TimedOut, 'timedOut()');
  t.ok(await runner(['sleep', '30'], { timeoutMs: 20_000, signal: AbortSignal.timeout(200) }).catch((e: unknown) => e) instanceof Aborted, 'aborted()');
});

t.test("the agent's own runner: CommandError (-32603) and CommandTimeoutError (1002), with argv and cause", async (t) => {
  const e = await run(['sh', '-c', 'echo "bad thing" >&2; exit 2'], { timeoutMs: 5000 }).catch((x: unknown) => x);
  t.ok(e instanceof CommandError);
  t.equal((e as CommandError).code, -32603);
  t.equal((e as CommandError).rc, 2);
  t.match((e as CommandError).message, /^sh -c failed \(rc=2\): bad thing$/);
  const missing = await run(['/nonexistent/program'], { timeoutMs: 5000 }).catch((x: unknown) => x);
  t.match((missing as CommandError).cause, { code: 'ENOENT' }, 'the spawn error is the cause');
  const slow = await run(['sleep', '30'], { timeoutMs: 200 }).catch((x: unknown) => x);
  t.ok(slow instanceof CommandTimeoutError);
  t.equal((slow as CommandTimeoutError).code, 1002);
});

t.test('startDetached: a daemon in its own session, output to its log, its exit reported', async (t) => {
  const log = join(await scratch(t), 'd.log');
  const d = startDetached(['sh', '-c', 'echo "sid=$(ps -o sid= -p $$ | tr -d " ") pid=$$ $HV_D"; exit 5'], { logFile: log, env: { HV_D: 'd' } });
  // The child is unref'd (the agent does not wait for its daemon): a timer keeps this test's loop alive.
  const within = async <T>(p: Promise<T>): Promise<T | 'timeout'> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), 10_000); });
    try { return await Promise.race([p, timeout]); } finally { clearTimeout(timer); }
  };
  t.equal(await within(d.exited), 5);
  const text = await readFile(log, 'utf8');
  t.match(text, `sid=${d.pid} pid=${d.pid} d`, 'it leads its own session and got the env');
  t.equal(await within(startDetached(['/nonexistent/program'], { logFile: log }).exited), 127);
});
