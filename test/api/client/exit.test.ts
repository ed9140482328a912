// close() leaves Node able to exit: a child process holding reconnecting
// clients in the states a controller meets (connected, retrying with a timer
// pending, mid-connect) closes them and returns, and exits by itself, at once.
// A control run that leaves one client open does not exit, so the check can fail.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { REPO, freePort, waitExit } from '../../agent/harness.js';
import { AgentProcess } from './agent-process.js';

const FIXTURE = join(REPO, 'dist', 'test', 'api', 'client', 'fixtures', 'hold-and-close.js');

const agent = await AgentProcess.start();
t.teardown(() => agent.stop());
const held: Socket[] = [];
const silent = createServer((s) => { held.push(s); }); // accepts TCP, never speaks TLS
await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
t.teardown(() => { for (const s of held) s.destroy(); silent.close(); });

/** Runs the fixture; once it said it closed its clients (bounded: 20 s), waits up to `afterCloseMs` for it to exit. */
async function run(env: Record<string, string>, afterCloseMs: number): Promise<{ exited: boolean; code: number | null; lines: Record<string, unknown>[]; closedToExitMs: number; stderr: string }> {
  const child = spawn(process.execPath, [FIXTURE], {
    env: {
      ...process.env, ...env,
      HV_URL: agent.target.url,
      HV_REFUSED_URL: `wss://localhost:${await freePort()}/`,
      HV_SILENT_URL: `wss://localhost:${(silent.address() as { port: number }).port}/`,
      HV_PKI_DIR: agent.config['pki.dir'],
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let closedAt = 0;
  let stderr = '';
  let saidClosed: () => void = () => {};
  const closedLine = new Promise<void>((resolve) => { saidClosed = resolve; });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n').filter(Boolean)) {
      const o = JSON.parse(l) as Record<string, unknown>;
      lines.push(o);
      if ('closedMs' in o) { closedAt = performance.now(); saidClosed(); }
    }
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closedLine, waitExit(child, 20_000), new Promise((r) => { timer = setTimeout(r, 20_000); })]);
  clearTimeout(timer);
  const exited = await waitExit(child, afterCloseMs);
  const closedToExitMs = exited && closedAt ? Math.round(performance.now() - closedAt) : -1;
  if (!exited) { child.kill('SIGKILL'); await waitExit(child, 5_000); }
  return { exited, code: child.exitCode, lines, closedToExitMs, stderr };
}

t.test('after close() of connected, retrying and mid-connect clients, the process exits by itself at once', async (t) => {
  const r = await run({}, 5_000);
  t.same(r.lines[0]?.['states'], ['connected', 'disconnected', 'connecting'], 'the three clients were connected, waiting to retry, and mid-connect');
  t.ok(Number(r.lines[0]?.['retryInMs']) >= 2_500, `the retrying one had a timer of ${String(r.lines[0]?.['retryInMs'])} ms pending`);
  t.same(r.lines[1]?.['states'], ['closed', 'closed', 'closed'], `all closed in ${String(r.lines[1]?.['closedMs'])} ms`);
  t.ok(r.exited, 'the process exited without process.exit()');
  t.equal(r.code, 0, `with code 0${r.stderr ? `; stderr: ${r.stderr.slice(0, 500)}` : ''}`);
  t.ok(r.closedToExitMs >= 0 && r.closedToExitMs < 1_000, `${r.closedToExitMs} ms after closing`);
});

t.test('control: leaving the retrying client open keeps the process alive (so the check above can fail)', async (t) => {
  const r = await run({ HOLD_ONE: '1' }, 3_000);
  t.same(r.lines[1]?.['states'], ['closed', 'disconnected', 'closed'], 'two closed, the retrying one left open');
  t.notOk(r.exited, 'the process was still running 3 s after closing the other two (the retry timer and the reconnects after it)');
});
