// The agent's systemd protocol end to end: a real hostvisord child process,
// the real systemd-notify binary, and a real AF_UNIX datagram socket standing
// in for systemd's notify socket (no systemd runs here).
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnAgent, testConfig, MAIN_JS } from '../harness.js';

/** One datagram as the receiver saw it: wall-clock and monotonic seconds. */
interface Msg { t: number; mono: number; msg: string; fields: Record<string, string> }

/**
 * Receiver: prints every datagram (BARRIER=1 included) as a JSON line with
 * its arrival time, until killed or `maxSec` passed. recv() without ancillary
 * buffer drops (closes) the fd that systemd-notify attaches to BARRIER=1,
 * which releases its barrier.
 */
const RECEIVER = `
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
print(json.dumps({"bound": True}), flush=True)
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data = s.recv(65536)
    except socket.timeout:
        break
    print(json.dumps({"t": time.time(), "mono": time.monotonic(), "msg": data.decode()}), flush=True)
`;

/** SIGKILLs agents this process spawned (spawnAgent does not hand out the child when it fails). */
function killStrayAgents(): void {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== process.pid) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(MAIN_JS)) process.kill(Number(name), 'SIGKILL');
    } catch { /* gone */ }
  }
}

function parseFields(msg: string): Record<string, string> {
  const f: Record<string, string> = {};
  for (const line of msg.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) f[line.slice(0, i)] = line.slice(i + 1);
  }
  return f;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

t.test('READY=1 (with STATUS=) only after recovery, WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 on SIGTERM and exit 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-agent-notify-'));
  const sock = join(dir, 'notify.sock');
  const py = spawn('/usr/bin/python3', ['-u', '-c', RECEIVER, sock, '120'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let child: ChildProcess | undefined;
  t.teardown(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise<void>((r) => { const to = setTimeout(r, 5_000); child!.once('exit', () => { clearTimeout(to); r(); }); });
    }
    killStrayAgents();
    py.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const msgs: Msg[] = [];
  let bound = false;
  let buf = '';
  py.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      const r = JSON.parse(l) as { bound?: boolean; t: number; mono: number; msg: string };
      if (r.bound) bound = true;
      else msgs.push({ t: r.t, mono: r.mono, msg: r.msg, fields: parseFields(r.msg) });
    }
  });
  await waitFor('receiver bound', () => (bound && existsSync(sock) ? true : undefined), 10_000);

  const config = await testConfig();
  const agent = await spawnAgent(config, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '1000000' });
  child = agent.child;
  const pid = String(child.pid);
  const notes = () => msgs.filter((m) => m.msg !== 'BARRIER=1');
  const logs = () => agent.logs.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return { raw: l }; } });

  // READY=1, after recovery.
  const ready = await waitFor('READY=1', () => notes().find((m) => m.fields.READY === '1'), 10_000);
  t.match(ready.fields, { READY: '1', MAINPID: pid }, 'READY=1 names the agent as MAINPID');
  t.match(ready.fields.STATUS, /^running; \d+ VMs$/, `STATUS= came with READY=1 (${ready.fields.STATUS})`);
  const before = notes().filter((m) => m.mono < ready.mono);
  t.same(before.map((m) => m.msg), [], 'nothing was notified before READY=1');
  t.equal(notes().filter((m) => m.fields.READY === '1').length, 1, 'READY=1 sent once');
  const readyLog = logs().find((r) => r.msg === 'ready');
  const phases = (readyLog?.phasesMs ?? {}) as Record<string, number>;
  t.type(phases.recovery, 'number', `the ready log line has a recovery phase (${JSON.stringify(phases)})`);
  const reconciled = logs().find((r) => r.msg === 'VMs reconciled with libvirt');
  t.ok(reconciled, 'the agent logged the reconciliation with libvirt');
  const reconciledAt = Date.parse(String(reconciled?.ts));
  t.ok(ready.t * 1000 >= reconciledAt - 1, `READY=1 arrived after the VMs were reconciled (${Math.round(ready.t * 1000 - reconciledAt)} ms later)`);
  t.equal(readyLog?.watchdogMs, 500, 'the agent computed a 500 ms watchdog period from WATCHDOG_USEC=1000000');

  // WATCHDOG=1 about every 500 ms.
  await sleep(3_000 + 300);
  const dogs = notes().filter((m) => m.fields.WATCHDOG === '1' && m.mono > ready.mono && m.mono <= ready.mono + 3);
  t.ok(dogs.length >= 4, `at least 4 WATCHDOG=1 within 3 s of READY=1 (${dogs.length})`);
  t.ok(dogs.every((m) => m.fields.MAINPID === pid), 'every WATCHDOG=1 names the agent as MAINPID');
  const gaps = dogs.slice(1).map((m, i) => Math.round((m.mono - dogs[i]!.mono) * 1000));
  const med = gaps.length ? median(gaps) : NaN;
  t.ok(med >= 350 && med <= 700, `median WATCHDOG=1 gap ${med} ms is between 350 and 700 ms (gaps ${gaps.join(', ')})`);
  t.comment(`first WATCHDOG=1 ${Math.round((dogs[0]?.mono ?? NaN) * 1000 - ready.mono * 1000)} ms after READY=1; gaps ${gaps.join(', ')} ms`);

  // SIGTERM: STOPPING=1, then exit 0.
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child!.once('exit', (code, signal) => resolve({ code, signal })));
  const tTerm = performance.now();
  child.kill('SIGTERM');
  const stopping = await waitFor('STOPPING=1', () => notes().find((m) => m.fields.STOPPING === '1'), 10_000);
  t.match(stopping.fields, { STOPPING: '1', MAINPID: pid }, 'STOPPING=1 names the agent as MAINPID');
  const exitWait = new AbortController();
  const code = await Promise.race([exit, sleep(20_000, 'timeout' as const, { signal: exitWait.signal }).catch(() => 'timeout' as const)]);
  exitWait.abort();
  t.not(code, 'timeout', 'the agent exits within 20 s of SIGTERM');
  if (code === 'timeout') t.comment(`agent still running 20 s after SIGTERM; last log lines:\n${agent.logs.slice(-15).join('\n')}`);
  if (code !== 'timeout') {
    t.same(code, { code: 0, signal: null }, 'with exit code 0');
    t.comment(`exited ${Math.round(performance.now() - tTerm)} ms after SIGTERM`);
  }
  t.ok(logs().some((r) => r.msg === 'stopped'), 'the agent logged stopped');
  const atExit = notes().length;
  await sleep(1_000);
  t.same(notes().slice(atExit).map((m) => m.msg), [], 'nothing notified after the agent exited');
  t.notOk(notes().some((m) => m.fields.READY === '1' && m.mono > ready.mono), 'no second READY=1');
});

t.test('SIGTERM while the agent is still starting (libvirt unreachable) stops it cleanly', async (t) => {
  const { spawn } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { testConfig, MAIN_JS, scratchDir } = await import('../harness.js');
  const config = await testConfig({ 'libvirt.uri': 'qemu+unix:///system?socket=/nonexistent/libvirt-sock' });
  const file = join(scratchDir('hv-agent-'), 'agent.toml');
  writeFileSync(file, Object.entries(config).map(([k, v]) => `"${k}" = ${JSON.stringify(v)}`).join('\n') + '\n');
  const child = spawn(process.execPath, [MAIN_JS, '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  for (let i = 0; i < 100 && !log.includes('libvirt connect failed'); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(log, /libvirt connect failed/, 'it is retrying libvirt');
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
  if (code === 'hung') child.kill('SIGKILL');
  t.equal(code, 0, 'exits with 0 soon after SIGTERM');
  t.match(log, /stopping before start-up finished/);
});
