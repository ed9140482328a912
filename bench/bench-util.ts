// Shared helpers of the agent-level benchmarks (bench/vm-start.ts, bench/stats.ts):
// env knobs, statistics, the table printer, guest cleanup, the agent child
// process (test/agent/harness.ts spawnAgent) and its RSS, and signal handling.
// Everything here is bounded in time; nothing is printed on stdout.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection, native } from '../agent/libvirt/index.js';
import type { HostvisorClient } from '../api/client/client.js';
import type { Config } from '../agent/config/settings.js';
import { MAIN_JS, spawnAgent, testConfig, type Overrides } from '../test/agent/harness.js';

export const URI = 'qemu:///system';
/** Every guest a benchmark starts is named hv-bench-*; leftovers are destroyed at start and in finally. */
export const NAME_PREFIX = 'hv-bench-';

export const log = (msg: string): void => { process.stderr.write(`bench: ${msg}\n`); };

export function envInt(name: string, dflt: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer in [${min}, ${max}], not '${raw}'`);
  return v;
}

// ---------- abort (SIGINT/SIGTERM) ----------

let abortedFlag = false;
const children = new Set<ChildProcess>();

export function aborted(): boolean { return abortedFlag; }
export function checkAborted(): void { if (abortedFlag) throw new Error('aborted'); }

/** First signal: flag (loops stop, finally blocks clean up). Second: exit at once. */
export function installSignalHandlers(): void {
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    abortedFlag = true;
    log(`${sig}: stopping, cleaning up`);
    if (signals > 1) {
      for (const c of children) c.kill('SIGKILL');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Sleeps up to ms, in short steps so that an abort is noticed. */
export async function pause(ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (!abortedFlag) {
    const left = until - performance.now();
    if (left <= 0) return;
    await sleep(Math.min(left, 200));
  }
}

/** Rejects after ms (the promise itself goes on; callers clean up in finally). */
export function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e); });
  });
}

// ---------- memory ----------

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) { g(); g(); }
}
export const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

/** VmRSS and VmHWM of a process from /proc/<pid>/status, in KiB. */
export function procMemKiB(pid: number): { rssKiB: number; hwmKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'));
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}
export const kibToMib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;

// ---------- statistics ----------

export const round = (v: number, digits = 1): number => { const f = 10 ** digits; return Math.round(v * f) / f; };
export const ratio = (a: number | null, b: number | null): number | null =>
  (a === null || b === null || !(b > 0) ? null : Math.round((a / b) * 100) / 100);

/** Nearest-rank quantile of ascending values (q in [0, 1]). */
export function quantile(sorted: ArrayLike<number>, q: number): number | null {
  if (sorted.length === 0) return null;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[k] ?? null;
}

/** The median: mean of the two middle values for an even count. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? null) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export interface Summary { n: number; min: number | null; median: number | null; p90: number | null; p99: number | null; max: number | null; mean: number | null }

export function summarize(values: readonly number[], digits = 1): Summary {
  const s = [...values].sort((a, b) => a - b);
  const r = (v: number | null): number | null => (v === null ? null : round(v, digits));
  return {
    n: s.length,
    min: r(s[0] ?? null),
    median: r(median(s)),
    p90: r(quantile(s, 0.9)),
    p99: r(quantile(s, 0.99)),
    max: r(s[s.length - 1] ?? null),
    mean: r(s.length ? s.reduce((a, b) => a + b, 0) / s.length : null),
  };
}

/** The facts every bench's JSON ends with: the load at start and end, the versions, the run's length. */
export interface RunFacts { loadavg_1m_start: number; loadavg_1m_end: number; libvirt_version: number; node: string; total_s: number }
export function runFacts(load1Start: number, runStart: number): RunFacts {
  return {
    loadavg_1m_start: round(load1Start, 2),
    loadavg_1m_end: round(loadavg()[0] ?? 0, 2),
    libvirt_version: native.libVersion(),
    node: process.version,
    total_s: round((performance.now() - runStart) / 1000),
  };
}

export const fmt = (v: number | null | undefined, digits = 1): string => (v === null || v === undefined ? '-' : v.toFixed(digits));

/** First column left-aligned, the others right-aligned; a rule under the header. */
export function printTable(rows: string[][]): void {
  const head = rows[0];
  if (!head) return;
  const widths = head.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
}

// ---------- libvirt ----------

export async function openWithRetry(deadlineMs: number, callTimeoutMs = 30_000): Promise<Connection> {
  const until = performance.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await Connection.open(URI, { callTimeoutMs });
    } catch (e) {
      if (performance.now() + 500 > until) throw e;
      log(`connect attempt ${attempt} failed (${String(e)}); retrying`);
      await sleep(500);
    }
  }
}

/** Destroys (and undefines, if persistent) every hv-bench-* domain (or only those named `prefix`*), on a fresh connection. Returns how many it found. */
export async function destroyBenchGuests(prefix = NAME_PREFIX): Promise<number> {
  const c = await openWithRetry(30_000);
  try {
    const doms = (await c.listAllDomains()).filter((d) => d.name.startsWith(prefix));
    await Promise.all(doms.map(async (d) => {
      if (d.id >= 0) await d.destroy().catch((e: unknown) => log(`destroy ${d.name}: ${String(e)}`));
      await d.undefine().catch(() => {}); // transient ones vanish on destroy and this fails
    }));
    return doms.length;
  } finally {
    await c.close().catch(() => {});
  }
}

/** Running domains that are not ours (other work on this host skews the figures). */
export async function otherDomains(c: Connection): Promise<number> {
  return (await c.listAllDomains()).filter((d) => d.id >= 0 && !d.name.startsWith(NAME_PREFIX)).length;
}

/** Rejects once the client's connection ends (race it against event waits, so a dead agent fails fast). */
export function whenClosed(client: HostvisorClient): Promise<never> {
  const p = client.disconnected.then((d): never => {
    throw new Error(`the API connection to the agent closed (code ${d.code ?? '?'}: ${d.error.message})`, { cause: d.error });
  });
  p.catch(() => {});
  return p;
}

// ---------- the agent as a child process ----------

export interface BenchAgent { child: ChildProcess; pid: number; config: Config; logs: string[]; stopping: boolean }

/** Children of this process running dist/agent/main.js (spawnAgent keeps no handle when it times out). */
function agentChildPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(MAIN_JS)) pids.push(Number(name));
    } catch { /* gone */ }
  }
  return pids;
}

/** hostvisord as a child process (harness spawnAgent, ready in ≤ 60 s), on a free port with the dev PKI. */
export async function startAgentChild(overrides: Overrides, o: { memoryProbe?: boolean } = {}): Promise<BenchAgent> {
  const config = await testConfig(overrides);
  // The probe (bench/mem-probe.ts) reports the V8 heap on SIGUSR2; the agent has no such hook of its own.
  const env = o.memoryProbe
    ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${new URL('./mem-probe.js', import.meta.url).href}`.trim() } : {};
  try {
    const { child, logs } = await spawnAgent(config, env);
    if (child.pid === undefined) throw new Error('agent child has no pid');
    const a: BenchAgent = { child, pid: child.pid, config, logs, stopping: false };
    children.add(child);
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (!a.stopping) log(`agent pid ${a.pid} exited unexpectedly (code ${code}, signal ${signal})`);
    });
    return a;
  } catch (e) {
    for (const pid of agentChildPids()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    throw e;
  }
}

/** After a failure: did the agent die, and what did it log last (stderr, JSON lines). */
export function dumpAgent(a: BenchAgent | undefined, lines = 40): void {
  if (!a) return;
  const { child } = a;
  const state = child.exitCode !== null || child.signalCode !== null
    ? `EXITED (code ${child.exitCode}, signal ${child.signalCode})` : 'still running';
  log(`agent pid ${a.pid}: ${state}; last ${Math.min(lines, a.logs.length)} of ${a.logs.length} log lines:`);
  for (const l of a.logs.slice(-lines)) process.stderr.write(`  ${l.slice(0, 2000)}\n`);
}

/** SIGTERM (the agent leaves VMs running: destroy them first), SIGKILL after timeoutMs. */
export async function stopAgentChild(a: BenchAgent, timeoutMs = 15_000): Promise<void> {
  const { child } = a;
  a.stopping = true;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const t = setTimeout(() => { log('agent did not stop on SIGTERM; SIGKILL'); child.kill('SIGKILL'); }, timeoutMs);
  await exited;
  clearTimeout(t);
}

/** Runs a benchmark's main(): exit code from it; on failure logs and exits even if timers linger. */
export function runBench(main: () => Promise<number>): void {
  installSignalHandlers();
  main().then(
    (code) => { process.exitCode = code; },
    (e: unknown) => {
      log(`FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exitCode = 1;
      setTimeout(() => process.exit(1), 2_000).unref(); // pending event-wait timers must not hold the exit
    },
  );
}

/** Best-effort cleanup at the end of a bench: destroys its guests, and says so (or what to do by hand). */
export async function destroyLeftGuests(destroy: () => Promise<number>, pattern: string): Promise<void> {
  try {
    const n = await destroy();
    if (n > 0) log(`destroyed ${n} ${pattern} guest(s) left running`);
  } catch (e) {
    log(`cleanup failed: ${String(e)} -- destroy ${pattern} by hand (virsh destroy)`);
  }
}
