// Benchmark: Hostvisor's libvirt binding (agent/libvirt, N-API addon) against
// Debian's python3-libvirt (the official binding VDSM uses), same calls, same
// domains, same libvirtd, in the same run.
//
//   npm run bench:libvirt-binding   (scripts/bench.sh: lab setup + build, then
//   node --expose-gc dist/bench/libvirt-binding.js; as root)
//
// 1. destroys leftover hv-bench-<N> domains, starts 10 transient tiny guests
//    (hv-bench-0..9, TCG, lab.end=wait) and waits for LAB-BOOT-OK on each;
// 2. for getInfo, getXMLDesc and getAllDomainStats, at 1 and 32 calls in
//    flight: warm-up, then calls/s over a fixed wall-clock window, p50/p99;
// 3. runs bench/libvirt_binding_baseline.py (child, /usr/bin/python3) for the
//    same cells with 1 and 32 threads on one shared connection;
// 4. destroys the guests (finally), prints a table, and ends with ONE line of
//    JSON (nothing is printed after it).
//
// Env knobs (all bounded): BENCH_WINDOW_MS (default 1750), BENCH_WARMUP_MS (250),
// BENCH_MAX_CALLS per cell (200000), BENCH_BOOT_TIMEOUT_MS (45000).
// Only the local libvirt unix socket is used; no network traffic.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection, type Domain, enums, native } from '../agent/libvirt/index.js';
import { ensureRunDir, guestDomainXml, repoRoot, serialPathFor, waitForSerialMarker } from '../test/lab/guest.js';

const URI = 'qemu:///system';
const PYTHON = '/usr/bin/python3';
const GUESTS = 10;
const NAME_PREFIX = 'hv-bench-';
// Exactly hv-bench-<digits>: other benches use hv-bench-stats-*, hv-bench-start-bare-* and must not be touched.
const OUR_NAME = /^hv-bench-\d+$/;
const CALLS = ['getInfo', 'getXMLDesc', 'getAllDomainStats'] as const;
const LEVELS = [1, 32] as const;
type CallKind = (typeof CALLS)[number];

function envInt(name: string, dflt: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer in [${min}, ${max}], not '${raw}'`);
  return v;
}

// 12 cells x (warm-up + window) ~ 24 s; with ~15-25 s of guest boot the run stays near 50 s.
const WINDOW_MS = envInt('BENCH_WINDOW_MS', 1750, 100, 10_000);
const WARMUP_MS = envInt('BENCH_WARMUP_MS', 250, 0, 5_000);
const MAX_CALLS = envInt('BENCH_MAX_CALLS', 200_000, 100, 2_000_000);
const BOOT_TIMEOUT_MS = envInt('BENCH_BOOT_TIMEOUT_MS', 45_000, 5_000, 120_000);
// createXML/destroy take seconds when the host is loaded (other tests' guests); 30 s as the facade's default.
const CALL_TIMEOUT_MS = 30_000;
// The python child lives through both sides' cells (interleaved), plus connect/lookup.
const PY_HARD_LIMIT_S = Math.ceil((2 * CALLS.length * LEVELS.length * (WINDOW_MS + WARMUP_MS)) / 1000) + 30;
// Diagnostic: register and run libvirt's default event loop in the python child too (as VDSM does).
const PY_EVENT_LOOP = process.env['BENCH_PY_EVENT_LOOP'] === '1';

const log = (msg: string): void => { process.stderr.write(`bench: ${msg}\n`); };

let aborted = false;
let pyChild: ChildProcess | undefined;

// ---------- memory ----------

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) { g(); g(); }
}
const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

// ---------- guests ----------

async function openWithRetry(deadlineMs: number): Promise<Connection> {
  const until = performance.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await Connection.open(URI, { callTimeoutMs: CALL_TIMEOUT_MS });
    } catch (e) {
      if (performance.now() + 500 > until) throw e;
      log(`connect attempt ${attempt} failed (${String(e)}); retrying`);
      await sleep(500);
    }
  }
}

/** Destroys (and undefines, if persistent) every hv-bench-<N> domain, on a fresh connection. Returns how many it found. */
async function destroyBenchGuests(): Promise<number> {
  // Generous: libvirtd may be restarting (lab tests do that); AUTODESTROY does not survive a restart.
  const c = await openWithRetry(30_000);
  try {
    let found = 0;
    for (let pass = 1; pass <= 3; pass++) {
      const doms = (await c.listAllDomains()).filter((d) => OUR_NAME.test(d.name));
      if (pass === 1) found = doms.length;
      if (doms.length === 0) return found;
      if (pass === 3) throw new Error(`still there after 2 passes: ${doms.map((d) => d.name).join(' ')}`);
      for (const d of doms) {
        if (d.id >= 0) await d.destroy().catch((e: unknown) => log(`destroy ${d.name}: ${String(e)}`));
        // Transient domains vanish on destroy and this fails; persistent leftovers would block createXML.
        await d.undefine().catch(() => {});
      }
    }
    return found;
  } finally {
    await c.close().catch(() => {});
  }
}

const BOOT_ATTEMPTS = 3;
const BOOTED = /LAB-BOOT-OK|Kernel panic/;

/** Creates guest hv-bench-<i> and waits for LAB-BOOT-OK; a guest whose kernel panicked is started again. */
async function bootGuest(c: Connection, i: number, deadline: number): Promise<Domain> {
  const name = `${NAME_PREFIX}${i}`;
  const serial = serialPathFor(name);
  // no_timer_check: with 10 TCG guests booting on 2 cores, a starved vCPU can fail the
  // kernel's IO-APIC timer check ("Kernel panic - not syncing: IO-APIC + timer doesn't work!").
  const xml = guestDomainXml({ name, virtType: 'qemu', cmdline: ['lab.end=wait', 'no_timer_check'], serialPath: serial });
  for (let attempt = 1; ; attempt++) {
    await rm(serial, { force: true }); // no stale marker from an earlier run or attempt
    // AUTODESTROY: should this process die without its finally, libvirtd kills the guests when
    // the connection drops (the finally still destroys them, by name, in every other case).
    const d = await c.createXML(xml, enums.DomainCreateFlags.START_AUTODESTROY);
    const { line } = await waitForSerialMarker(serial, BOOTED, Math.max(1000, deadline - performance.now()));
    if (line.includes('LAB-BOOT-OK')) return d;
    // panic=-1 reboots and on_reboot is destroy, so it is usually gone already.
    await d.destroy().catch(() => {});
    if (attempt >= BOOT_ATTEMPTS) throw new Error(`${name}: guest kernel panicked at boot ${attempt} times: ${line.trim()}`);
    log(`${name}: guest kernel panicked at boot (${line.trim().slice(0, 100)}); starting it again`);
  }
}

async function startGuests(c: Connection): Promise<{ doms: Domain[]; bootMs: number }> {
  ensureRunDir();
  const t0 = performance.now();
  const deadline = t0 + BOOT_TIMEOUT_MS;
  // All at once: libvirtd starts them on its worker threads, which beats starting each QEMU
  // while the previous guests already boot on the same two cores.
  const settled = await Promise.allSettled(Array.from({ length: GUESTS }, (_, i) => bootGuest(c, i, deadline)));
  const doms: Domain[] = [];
  for (const r of settled) {
    if (r.status === 'rejected') throw r.reason;
    doms.push(r.value);
  }
  return { doms, bootMs: Math.round(performance.now() - t0) };
}

// ---------- measurement ----------

interface CellResult {
  calls: number; elapsedS: number; cps: number; p50Ms: number | null; p99Ms: number | null;
  errors: number; firstError?: string;
}

function pct(sorted: Float64Array, q: number): number | null {
  if (sorted.length === 0) return null;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return Math.round((sorted[k] ?? 0) * 10_000) / 10_000;
}

/**
 * A failed call is counted and the loop goes on: getAllDomainStats covers every domain on
 * the host, and one that another test destroys mid-call fails the whole call ("Unable to
 * read from monitor"). A cell where more than half the calls failed (libvirtd gone) aborts the run.
 */
function tooManyErrors(calls: number, errors: number): boolean {
  // Half: at 32 in flight, one foreign domain vanishing fails every overlapping call.
  return errors > Math.max(3, 0.5 * (calls + errors));
}

/** Keeps `inFlight` calls outstanding until `windowMs` passed or `maxCalls` started. */
async function runCell(fn: (i: number) => Promise<unknown>, inFlight: number, windowMs: number, maxCalls: number,
  keepLatency: boolean): Promise<CellResult> {
  const lat = new Float64Array(keepLatency ? maxCalls : 0);
  let started = 0;
  let done = 0;
  let errors = 0;
  let firstError: unknown;
  const t0 = performance.now();
  const deadline = t0 + windowMs;
  const worker = async (): Promise<void> => {
    while (!aborted && started < maxCalls) {
      const s = performance.now();
      if (s >= deadline) break;
      const i = started++;
      try {
        await fn(i);
      } catch (e) {
        errors++;
        firstError ??= e;
        continue;
      }
      if (keepLatency) lat[done] = performance.now() - s;
      done++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsedS = (performance.now() - t0) / 1000;
  if (aborted) throw new Error('aborted');
  const sorted = lat.subarray(0, done).sort();
  const r: CellResult = {
    calls: done,
    elapsedS: Math.round(elapsedS * 10_000) / 10_000,
    cps: Math.round((done / elapsedS) * 10) / 10,
    p50Ms: pct(sorted, 0.5),
    p99Ms: pct(sorted, 0.99),
    errors,
  };
  if (firstError !== undefined) r.firstError = String(firstError);
  return r;
}

function ourCalls(c: Connection, doms: Domain[]): Record<CallKind, (i: number) => Promise<unknown>> {
  const n = doms.length;
  const dom = (i: number): Domain => doms[i % n] as Domain;
  return {
    getInfo: (i) => dom(i).info(),
    getXMLDesc: (i) => dom(i).xml(),
    getAllDomainStats: () => c.getAllDomainStats(0, 0),
  };
}

async function ourCell(fn: (i: number) => Promise<unknown>, level: number): Promise<CellResult> {
  gc();
  if (WARMUP_MS > 0) await runCell(fn, level, WARMUP_MS, MAX_CALLS, false);
  return runCell(fn, level, WINDOW_MS, MAX_CALLS, true);
}

// ---------- python baseline ----------

interface PyCell { cell: string; calls: number; elapsed_s: number; cps: number; p50_ms?: number | null; p99_ms?: number | null; errors?: number; first_error?: string }
interface PySummary {
  ok: boolean; error?: string; python?: string; libvirt_python?: number; event_loop?: boolean;
  rss_start_kib?: number; rss_end_kib?: number; max_rss_kib?: number; cpu_user_s?: number; cpu_sys_s?: number;
}

/**
 * The python3-libvirt child (bench/libvirt_binding_baseline.py), driven one
 * cell at a time over stdin; it answers one JSON object per line on stdout.
 */
class PythonBaseline {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private exited = false;
  private stderr = '';
  private readonly killTimer: NodeJS.Timeout;

  constructor(names: string[]) {
    const script = join(repoRoot(), 'bench', 'libvirt_binding_baseline.py');
    const cfg = {
      uri: URI, names, window_ms: WINDOW_MS, warmup_ms: WARMUP_MS, max_calls: MAX_CALLS,
      hard_limit_s: PY_HARD_LIMIT_S, event_loop: PY_EVENT_LOOP,
    };
    this.child = spawn(PYTHON, [script, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    pyChild = this.child;
    this.killTimer = setTimeout(() => this.child.kill('SIGKILL'), (PY_HARD_LIMIT_S + 5) * 1000);
    let partial = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) if (l.trim() !== '') this.lines.push(l);
      this.wake();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (this.stderr.length < 100_000) this.stderr += d; });
    this.child.stdin!.on('error', () => {}); // EPIPE if the child died; reported by next()
    this.child.on('error', (e) => { this.stderr += String(e); this.exited = true; this.wake(); });
    this.child.on('close', () => { this.exited = true; clearTimeout(this.killTimer); pyChild = undefined; this.wake(); });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The next JSON line, within timeoutMs. */
  private async next<T>(what: string, timeoutMs: number): Promise<T> {
    const until = performance.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.exited) throw new Error(`python baseline exited (code ${this.child.exitCode}, signal ${this.child.signalCode}) before ${what}\n${this.stderr}`.trimEnd());
      if (aborted) throw new Error('aborted');
      const left = until - performance.now();
      if (left <= 0) throw new Error(`python baseline: no ${what} within ${timeoutMs} ms\n${this.stderr}`.trimEnd());
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiter = () => { clearTimeout(t); resolve(); };
      });
    }
    const line = this.lines.shift() as string;
    let obj: unknown;
    try { obj = JSON.parse(line); } catch { throw new Error(`python baseline printed non-JSON: ${line.slice(0, 200)}`); }
    const err = (obj as { ok?: boolean; error?: string }).error;
    if (err !== undefined) throw new Error(`python baseline failed: ${err}`);
    return obj as T;
  }

  async ready(): Promise<{ stats_domains: number }> {
    return this.next('ready', 15_000);
  }

  async cell(call: CallKind, threads: number): Promise<PyCell> {
    this.child.stdin!.write(`${JSON.stringify({ call, threads })}\n`);
    const r = await this.next<PyCell>(`result of ${call} x${threads}`, WARMUP_MS + WINDOW_MS + 15_000);
    return r;
  }

  async finish(): Promise<PySummary> {
    this.child.stdin!.end();
    const s = await this.next<PySummary>('summary', 15_000);
    if (this.stderr.trim() !== '') log(`python stderr: ${this.stderr.trim()}`);
    return s;
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

// ---------- report ----------

const ratio = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 100) / 100 : null);
const fmtMs = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toFixed(3));

function printTable(ours: Record<string, CellResult>, py: Record<string, PyCell>): void {
  const rows: string[][] = [['call', 'in flight', 'ours calls/s', 'python calls/s', 'ours/python', 'ours p50/p99 ms', 'python p50/p99 ms']];
  for (const call of CALLS) {
    for (const level of LEVELS) {
      const o = ours[`${call}_${level}`];
      const p = py[`${call}_${level}`];
      if (!o || !p) continue;
      rows.push([call, String(level), o.cps.toFixed(0), p.cps.toFixed(0), (ratio(o.cps, p.cps) ?? 0).toFixed(2),
        `${fmtMs(o.p50Ms)} / ${fmtMs(o.p99Ms)}`, `${fmtMs(p.p50_ms)} / ${fmtMs(p.p99_ms)}`]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(rows[0]!));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
}

// ---------- main ----------

async function main(): Promise<number> {
  const runStart = performance.now();
  const load1Start = loadavg()[0] ?? 0;
  gc();
  const rssStart = process.memoryUsage().rss;

  const leftovers = await destroyBenchGuests();
  if (leftovers > 0) log(`removed ${leftovers} leftover ${NAME_PREFIX}<N> domain(s)`);

  const ours: Record<string, CellResult> = {};
  const pyRes: Record<string, PyCell> = {};
  let pySum: PySummary;
  let bootMs: number;
  let statsDomains: number;
  let rssBefore: number;
  let rssAfter: number;
  let heapBefore: number;
  let heapAfter: number;
  let oursCpuUs = 0;
  let conn: Connection | undefined;
  let py: PythonBaseline | undefined;
  try {
    conn = await openWithRetry(15_000);
    const started = await startGuests(conn);
    bootMs = started.bootMs;
    log(`all ${GUESTS} guests printed LAB-BOOT-OK after ${bootMs} ms`);
    const doms = started.doms;
    statsDomains = (await conn.getAllDomainStats(0, 0)).length;
    if (statsDomains !== GUESTS) log(`note: getAllDomainStats sees ${statsDomains} domains (other guests run on this host)`);

    py = new PythonBaseline(doms.map((d) => d.name));
    await py.ready();
    const fns = ourCalls(conn, doms);
    gc();
    rssBefore = process.memoryUsage().rss;
    heapBefore = process.memoryUsage().heapUsed;
    // Cells interleaved, ours and python back to back, alternating who goes first,
    // so that drifting background load (other guests, other tests) hits both alike.
    let k = 0;
    for (const call of CALLS) {
      for (const level of LEVELS) {
        const key = `${call}_${level}`;
        const runOurs = async (): Promise<void> => {
          const cpu0 = process.cpuUsage();
          ours[key] = await ourCell(fns[call], level);
          const d = process.cpuUsage(cpu0);
          oursCpuUs += d.user + d.system;
        };
        const runPy = async (): Promise<void> => { pyRes[key] = await (py as PythonBaseline).cell(call, level); };
        if (k++ % 2 === 0) { await runOurs(); await runPy(); } else { await runPy(); await runOurs(); }
        const o = ours[key];
        const p = pyRes[key];
        if (o && o.errors > 0) log(`${key}: ours had ${o.errors} failed call(s), first: ${o.firstError ?? '?'}`);
        if (p?.errors) log(`${key}: python had ${p.errors} failed call(s), first: ${p.first_error ?? '?'}`);
        if ((o && tooManyErrors(o.calls, o.errors)) || (p && tooManyErrors(p.calls, p.errors ?? 0))) {
          throw new Error(`${key}: too many failed calls (libvirtd restarted? rerun)`);
        }
        log(`${key}: ours ${ours[key]?.cps} calls/s, python ${pyRes[key]?.cps} calls/s`);
      }
    }
    gc();
    rssAfter = process.memoryUsage().rss;
    heapAfter = process.memoryUsage().heapUsed;
    pySum = await py.finish();
  } finally {
    py?.kill();
    // Guests first on a fresh connection (works even if ours broke), then our own connection.
    try {
      const n = await destroyBenchGuests();
      log(`destroyed ${n} ${NAME_PREFIX}<N> guest(s)`);
    } catch (e) {
      log(`cleanup failed: ${String(e)} -- destroy ${NAME_PREFIX}<N> by hand (virsh destroy)`);
    }
    if (conn) await conn.close().catch(() => {});
  }

  const maxRss = process.resourceUsage().maxRSS * 1024; // KiB -> bytes
  printTable(ours, pyRes);
  const json: Record<string, unknown> = {};
  for (const call of CALLS) {
    for (const level of LEVELS) {
      const k2 = `${call}_${level}`;
      const o = ours[k2];
      const p = pyRes[k2];
      json[`${k2}_ours`] = o?.cps ?? null;
      json[`${k2}_python`] = p?.cps ?? null;
      json[`${k2}_ratio`] = o && p ? ratio(o.cps, p.cps) : null;
      json[`${k2}_ours_p50_ms`] = o?.p50Ms ?? null;
      json[`${k2}_ours_p99_ms`] = o?.p99Ms ?? null;
      json[`${k2}_python_p50_ms`] = p?.p50_ms ?? null;
      json[`${k2}_python_p99_ms`] = p?.p99_ms ?? null;
      json[`${k2}_ours_errors`] = o?.errors ?? null;
      json[`${k2}_python_errors`] = p?.errors ?? 0;
    }
  }
  Object.assign(json, {
    guests: GUESTS,
    stats_domains: statsDomains,
    window_ms: WINDOW_MS,
    warmup_ms: WARMUP_MS,
    boot_ms: bootMs,
    ours_rss_start_mib: mib(rssStart),
    ours_rss_before_mib: mib(rssBefore),
    ours_rss_after_mib: mib(rssAfter),
    ours_heap_before_mib: mib(heapBefore),
    ours_heap_after_mib: mib(heapAfter),
    ours_max_rss_mib: mib(maxRss),
    ours_cpu_s: Math.round(oursCpuUs / 1000) / 1000,
    python_rss_start_mib: mib((pySum.rss_start_kib ?? 0) * 1024),
    python_rss_end_mib: mib((pySum.rss_end_kib ?? 0) * 1024),
    python_max_rss_mib: mib((pySum.max_rss_kib ?? 0) * 1024),
    python_cpu_s: Math.round(((pySum.cpu_user_s ?? 0) + (pySum.cpu_sys_s ?? 0)) * 1000) / 1000,
    python_event_loop: pySum.event_loop ?? false,
    uv_threadpool_size: Number(process.env['UV_THREADPOOL_SIZE'] || 4),
    loadavg_1m_start: Math.round(load1Start * 100) / 100,
    loadavg_1m_end: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    libvirt_version: native.libVersion(),
    node: process.version,
    python: pySum.python ?? null,
    total_s: Math.round((performance.now() - runStart) / 100) / 10,
  });
  console.log(
    `memory: ours RSS ${mib(rssBefore)} MiB before / ${mib(rssAfter)} MiB after the calls (max ${mib(maxRss)} MiB, ` +
    `${mib(rssStart)} MiB at start); python max RSS ${json['python_max_rss_mib']} MiB ` +
    `(${json['python_rss_start_mib']} MiB after import libvirt)`,
  );
  console.log(`cpu in the measured cells: ours ${json['ours_cpu_s']} s, python ${json['python_cpu_s']} s (python incl. warm-ups/startup)`);
  console.log(`guests: ${GUESTS} (getAllDomainStats sees ${statsDomains}), window ${WINDOW_MS} ms after ${WARMUP_MS} ms warm-up, ` +
    `boot ${bootMs} ms, load ${json['loadavg_1m_start']} -> ${json['loadavg_1m_end']}, total ${json['total_s']} s`);
  console.log(JSON.stringify(json));
  return 0;
}

let signals = 0;
const onSignal = (sig: NodeJS.Signals): void => {
  signals++;
  aborted = true;
  pyChild?.kill('SIGKILL');
  log(`${sig}: stopping, cleaning up`);
  if (signals > 1) process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

main().then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    log(`FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 1;
  },
);
