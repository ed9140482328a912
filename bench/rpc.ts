// Benchmark: the agent's JSON-RPC path, Host.ping2 over ONE mutual-TLS
// WebSocket connection, with 1 and 100 calls in flight, against a bare
// baseline server (bench/rpc-baseline-server.ts: same certificates, same
// TLS and `ws` settings, json-rpc-2.0's JSONRPCServer, no validation,
// logging, timeouts or flow control) in the same run.
//
//   npm run bench:rpc   (= setup + build, then node --expose-gc <hostvisord.service's node flags> dist/bench/rpc.js)
//
// 1. starts a real agent in this process with the test harness's code
//    (loopback port, development PKI, libvirtd on this host; stats intervals,
//    logging (info level, lines dropped) and node flags as in production) and the
//    baseline server on another loopback port with the same certificates;
// 2. for each cell (target x in-flight), a worker thread (its own event loop,
//    so the client's work does not share the servers' thread) opens one
//    connection with the same client code for both targets (a plain `ws`
//    client + json-rpc-2.0's JSONRPCClient, kept light so that the servers,
//    not the client, are what limits calls/s), warms up, then keeps N calls
//    in flight for a fixed wall-clock window, recording every call's latency;
// 3. prints a table, and ends with ONE line of JSON (nothing after it).
//
// Env knobs (all bounded): BENCH_WINDOW_MS (default 3000), BENCH_WARMUP_MS
// (500), BENCH_MAX_CALLS per window (2000000), BENCH_ROUNDS (3, at most 7:
// each cell reports its median round by calls/s, and rounds alternate which
// target goes first, so drift and noise from other work on the host hit both
// alike). Only loopback traffic.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadavg, cpus } from 'node:os';
import WebSocket from 'ws';
import { JSONRPCClient, type JSONRPCRequest, type JSONRPCResponse } from 'json-rpc-2.0';
import { pkiPaths } from '../agent/pki/dev-ca.js';
import { createLogger } from '../agent/log.js';
import { defaults } from '../agent/config/load.js';

const LEVELS = [1, 100] as const;
const TARGETS = ['ours', 'bare'] as const;
type Target = (typeof TARGETS)[number];

function envInt(name: string, dflt: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer in [${min}, ${max}], not '${raw}'`);
  return v;
}

interface CellSpec {
  url: string;
  pkiDir: string;
  level: number;
  warmupMs: number;
  windowMs: number;
  maxCalls: number;
}

interface CellResult {
  calls: number;
  errors: number;
  elapsedMs: number;
  cps: number;
  p50: number;
  p99: number;
  max: number;
}

const CALL_TIMEOUT_MS = 10_000;
const MAX_ERRORS = 100;

// ---------- the client (worker thread) ----------

/**
 * One connection, the same code for both targets: a plain `ws` client with
 * the agent's TLS and WebSocket settings, and json-rpc-2.0's JSONRPCClient.
 * No per-call timer (it would cost as much as what we measure): a watchdog
 * fails every pending call if nothing completes for CALL_TIMEOUT_MS.
 */
async function connect(spec: CellSpec): Promise<{ call: () => PromiseLike<unknown>; lastProgress: { at: number }; close: () => Promise<void> }> {
  const p = pkiPaths(spec.pkiDir);
  const ws = await new Promise<WebSocket>((resolve, reject) => {
    const s = new WebSocket(spec.url, {
      key: readFileSync(p.clientKey), cert: readFileSync(p.clientCert), ca: readFileSync(p.caCert),
      perMessageDeflate: false, handshakeTimeout: 10_000, maxPayload: 64 * 1024 * 1024,
    });
    s.once('open', () => resolve(s));
    s.once('error', reject);
  });
  const rpc = new JSONRPCClient((payload: JSONRPCRequest) => { ws.send(JSON.stringify(payload)); });
  const lastProgress = { at: performance.now() };
  ws.on('message', (data) => {
    lastProgress.at = performance.now();
    rpc.receive(JSON.parse(data.toString()) as JSONRPCResponse);
  });
  ws.on('error', () => {});
  ws.on('close', () => rpc.rejectAllPendingRequests('connection closed'));
  const watchdog = setInterval(() => {
    if (performance.now() - lastProgress.at > CALL_TIMEOUT_MS) {
      rpc.rejectAllPendingRequests(`no answer within ${CALL_TIMEOUT_MS} ms`);
      ws.terminate();
    }
  }, 500);
  return {
    call: () => rpc.request('Host.ping2', {}),
    lastProgress,
    close: () => new Promise<void>((resolve) => {
      clearInterval(watchdog);
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => { ws.terminate(); resolve(); }, 2_000);
      ws.once('close', () => { clearTimeout(t); resolve(); });
      ws.close(1000);
    }),
  };
}

async function runCell(spec: CellSpec): Promise<CellResult> {
  const client = await connect(spec);
  let errors = 0;
  const lat = new Float64Array(spec.maxCalls);

  /** Keeps `level` calls in flight until `ms` have passed or `max` calls were issued. */
  async function phase(ms: number, max: number, record: boolean): Promise<{ done: number; elapsedMs: number }> {
    let issued = 0;
    let done = 0;
    const t0 = performance.now();
    const end = t0 + ms;
    client.lastProgress.at = t0;
    const loop = async (): Promise<void> => {
      while (issued < max && errors < MAX_ERRORS && performance.now() < end) {
        issued++;
        const s = performance.now();
        try {
          await client.call();
        } catch (e) {
          errors++;
          if (errors === 1) process.stderr.write(`bench: call failed: ${String(e)}\n`);
          continue;
        }
        if (record) lat[done] = performance.now() - s;
        done++;
      }
    };
    await Promise.all(Array.from({ length: spec.level }, loop));
    return { done, elapsedMs: performance.now() - t0 };
  }

  await phase(spec.warmupMs, spec.maxCalls, false);
  errors = 0;
  const { done, elapsedMs } = await phase(spec.windowMs, spec.maxCalls, true);
  await client.close();
  const sorted = lat.subarray(0, done).sort();
  const q = (f: number): number => (done ? sorted[Math.min(done - 1, Math.floor(f * done))]! : NaN);
  return { calls: done, errors, elapsedMs, cps: (done / elapsedMs) * 1000, p50: q(0.5), p99: q(0.99), max: done ? sorted[done - 1]! : NaN };
}

if (!isMainThread) {
  runCell(workerData as CellSpec).then(
    (r) => parentPort!.postMessage({ ok: true, r }),
    (e: unknown) => parentPort!.postMessage({ ok: false, error: String(e) }),
  );
}

// ---------- the servers and the run (main thread) ----------

function inWorker(spec: CellSpec): Promise<CellResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: spec });
    const limit = spec.warmupMs + spec.windowMs + 30_000;
    const timer = setTimeout(() => { void w.terminate(); reject(new Error(`cell did not finish within ${limit} ms`)); }, limit);
    w.once('message', (m: { ok: boolean; r?: CellResult; error?: string }) => {
      clearTimeout(timer);
      void w.terminate();
      if (m.ok && m.r) resolve(m.r); else reject(new Error(m.error ?? 'worker failed'));
    });
    w.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) { g(); g(); }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};
const r2 = (x: number): number => Math.round(x * 100) / 100;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const WINDOW_MS = envInt('BENCH_WINDOW_MS', 3000, 200, 30_000);
  const WARMUP_MS = envInt('BENCH_WARMUP_MS', 500, 0, 10_000);
  const MAX_CALLS = envInt('BENCH_MAX_CALLS', 2_000_000, 1_000, 10_000_000);
  const ROUNDS = envInt('BENCH_ROUNDS', 3, 1, 7);
  const log = (m: string): void => { process.stderr.write(`bench: ${m}\n`); };
  const load0 = loadavg()[0]!;

  // The harness is imported here, not at the top: worker threads need none of it.
  const { startAgent } = await import('../test/agent/harness.js');
  const d = defaults();
  const agentLog = createLogger({ level: 'info', sink: () => {} });
  log('starting the agent (in process) and the baseline server');
  const { config, stop } = await startAgent({
    'stats.vmIntervalMs': d['stats.vmIntervalMs'], 'stats.hostIntervalMs': d['stats.hostIntervalMs'],
  }, agentLog);
  const { startBaselineServer } = await import('./rpc-baseline-server.js');
  const pkiDir = config['pki.dir'];
  const p = pkiPaths(pkiDir);
  const bare = await startBaselineServer({
    host: '127.0.0.1', port: 0, key: readFileSync(p.hostKey), cert: readFileSync(p.hostCert), ca: readFileSync(p.caCert),
    maxPayload: config['rpc.maxMessageBytes'],
  });
  const urls: Record<Target, string> = { ours: `wss://127.0.0.1:${config['rpc.port']}/`, bare: `wss://127.0.0.1:${bare.port}/` };

  const results = new Map<string, CellResult[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? TARGETS : [...TARGETS].reverse();
      for (const level of LEVELS) {
        for (const target of order) {
          gc();
          const r = await inWorker({ url: urls[target], pkiDir, level, warmupMs: WARMUP_MS, windowMs: WINDOW_MS, maxCalls: MAX_CALLS });
          if (r.errors) throw new Error(`${target} @${level}: ${r.errors} calls failed`);
          log(`round ${round + 1}/${ROUNDS} ${target} @${level}: ${Math.round(r.cps)} calls/s, p99 ${r3(r.p99)} ms (${r.calls} calls)`);
          const key = `${target}_${level}`;
          results.set(key, [...(results.get(key) ?? []), r]);
        }
      }
    }
  } finally {
    await bare.close();
    await stop();
  }

  // Each cell's median round (by calls/s).
  const cell = (target: Target, level: number): CellResult => {
    const rs = results.get(`${target}_${level}`)!;
    const m = median(rs.map((r) => r.cps));
    return rs.find((r) => r.cps === m)!;
  };

  const rows: string[][] = [['target', 'in flight', 'calls', 'calls/s', 'p50 ms', 'p99 ms', 'max ms']];
  for (const level of LEVELS) {
    for (const target of TARGETS) {
      const r = cell(target, level);
      rows.push([target === 'ours' ? 'hostvisord' : 'bare ws+json-rpc-2.0', String(level), String(r.calls), String(Math.round(r.cps)), r3(r.p50).toFixed(3), r3(r.p99).toFixed(3), r3(r.max).toFixed(1)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  const ratio = (level: number): number => r2(cell('ours', level).cps / cell('bare', level).cps);
  process.stdout.write([
    `Host.ping2 over one mTLS WebSocket, ${WINDOW_MS} ms window after ${WARMUP_MS} ms warm-up, ${ROUNDS} round(s), node ${process.version}`,
    lines[0]!, '-'.repeat(lines[0]!.length), ...lines.slice(1),
    `ours / bare calls/s: ${ratio(1).toFixed(2)} at 1 in flight, ${ratio(100).toFixed(2)} at 100 in flight`,
    `host: ${cpus().length} CPUs, 1-min load average ${load0.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end (other work on the host moves these numbers)`,
    '',
  ].join('\n'));

  // node_flags: the V8/Node flags of this process, which the agent and the bare server share (npm run bench:rpc
  // passes those of hostvisord.service).
  const out: Record<string, unknown> = { bench: 'rpc', window_ms: WINDOW_MS, warmup_ms: WARMUP_MS, rounds: ROUNDS, node: process.version, node_flags: process.execArgv.join(' ') };
  for (const level of LEVELS) {
    for (const target of TARGETS) {
      const r = cell(target, level);
      out[`${target}_${level}_cps`] = Math.round(r.cps);
      out[`${target}_${level}_p50_ms`] = r3(r.p50);
      out[`${target}_${level}_p99_ms`] = r3(r.p99);
      out[`${target}_${level}_calls`] = r.calls;
    }
  }
  out.cpus = cpus().length;
  out.loadavg_1m_start = r2(load0);
  out.loadavg_1m_end = r2(loadavg()[0]!);
  out.ratio_1 = ratio(1);
  out.ratio_100 = ratio(100);
  process.stdout.write(JSON.stringify(out) + '\n');
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (e: unknown) => { process.stderr.write(`bench: failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`); process.exit(1); },
  );
}
