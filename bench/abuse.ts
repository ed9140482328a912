// Benchmark: does the agent give its memory back after a burst of rejected
// messages? Its idle RSS before, and 30 s after, a burst of frames it
// refuses (8 MiB of nested arrays, of nested objects, batches of 180,000
// requests, batches of invalid VM.create: each answered with a JSON-RPC
// error), for our agent and, in the same run, a baseline: the same agent with
// memory release off (memory.releaseCheckMs = 0) and every frame parsed
// however deep (rpc.maxNestingDepth = 2^31), as the agent was before.
//
//   npm run bench:abuse        (= node --expose-gc dist/bench/abuse.js; after test/lab/setup.sh)
//
// For each side: start hostvisord as a child (harness spawnAgent, the unit's
// node flags, the memory probe), wait BENCH_IDLE_MS, read its RSS and what
// the memory is (bench/agent-memory.ts); send the burst over BENCH_CONNS
// connections, BENCH_FRAMES frames each, one at a time, each reply waited for
// (bounded); close them; read RSS every second for BENCH_AFTER_MS; stop the
// agent. Ends with ONE line of JSON: diff_mb (ours) must be at most 10.
//
// Env knobs (bounded): BENCH_IDLE_MS (10000), BENCH_AFTER_MS (30000),
// BENCH_CONNS (3), BENCH_FRAMES (8 per connection), BENCH_REPLY_TIMEOUT_MS (120000).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import WebSocket from 'ws';
import { pkiPaths } from '../agent/pki/dev-ca.js';
import { agentMemory, describeMemory, type AgentMemory } from './agent-memory.js';
import {
  type BenchAgent, deadline, dumpAgent, envInt, kibToMib, log, pause, procMemKiB, round, runBench, startAgentChild, stopAgentChild,
} from './bench-util.js';

const IDLE_MS = envInt('BENCH_IDLE_MS', 10_000, 1_000, 120_000);
const AFTER_MS = envInt('BENCH_AFTER_MS', 30_000, 1_000, 300_000);
const CONNS = envInt('BENCH_CONNS', 3, 1, 20);
const FRAMES = envInt('BENCH_FRAMES', 8, 1, 100);
const REPLY_TIMEOUT_MS = envInt('BENCH_REPLY_TIMEOUT_MS', 120_000, 1_000, 600_000);
const BOUND_MB = 10;

/**
 * Frames the agent refuses, each just under its default 8 MiB limit: nested
 * arrays and objects, a batch over the batch limit (these three are refused
 * before parsing by ours), and a batch of 100 VM.create calls whose specs
 * are invalid (parsed, validated, each answered -32602).
 */
function burstFrames(): { name: string; text: string }[] {
  const n = 4 * 1024 * 1024 - 8;
  const k = Math.floor((n * 2) / 6);
  const spec = { name: 'x'.repeat(80 * 1024), memoryMiB: -1 };
  return [
    { name: 'nested arrays', text: '['.repeat(n) + ']'.repeat(n) },
    { name: 'nested objects', text: '{"a":'.repeat(k) + '1' + '}'.repeat(k) },
    { name: 'oversized batch', text: `[${Array.from({ length: 180_000 }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"x"}`).join(',')}]` },
    { name: 'batch of invalid VM.create', text: JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'VM.create', params: { vmID: 'not-a-uuid', spec } }))) },
  ];
}

interface Side {
  idle_before_mb: number;
  after_mb: number;
  diff_mb: number;
  /** Peak RSS during the burst (VmHWM). */
  peak_mb: number;
  /** RSS each second after the burst. */
  after_series_mb: number[];
  burst_s: number;
  frames: number;
  burst_mb: number;
  rejected: number;
  mem_before: AgentMemory;
  mem_after: AgentMemory;
  releases: number;
}

function open(a: BenchAgent): Promise<WebSocket> {
  const p = pkiPaths(a.config['pki.dir']);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://localhost:${a.config['rpc.port']}/`, {
      key: readFileSync(p.clientKey), cert: readFileSync(p.clientCert), ca: readFileSync(p.caCert), perMessageDeflate: false, handshakeTimeout: 10_000,
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends one frame and waits (bounded) for its reply; true if it was a JSON-RPC error. */
async function rejected(ws: WebSocket, text: string): Promise<boolean> {
  const reply = new Promise<string>((resolve, reject) => {
    const onMessage = (d: Buffer): void => { ws.off('close', onClose); resolve(d.toString()); };
    const onClose = (code: number): void => { ws.off('message', onMessage); reject(new Error(`connection closed (${code}) before the reply`)); };
    ws.once('message', onMessage);
    ws.once('close', onClose);
  });
  ws.send(text);
  const r = JSON.parse(await deadline(reply, REPLY_TIMEOUT_MS, 'reply to a burst frame')) as unknown;
  const first = (Array.isArray(r) ? r[0] : r) as { error?: { code?: number } } | undefined;
  return typeof first?.error?.code === 'number';
}

async function runSide(name: string, overrides: Record<string, number>, frames: { name: string; text: string }[]): Promise<Side> {
  const a = await startAgentChild({ 'log.level': 'info', ...overrides }, { memoryProbe: true });
  try {
    await pause(IDLE_MS);
    const before = procMemKiB(a.pid);
    const memBefore = await agentMemory(a.pid, a.logs);
    log(`${name}: idle ${describeMemory(memBefore)}`);
    const t0 = performance.now();
    let sent = 0;
    let refused = 0;
    let bytes = 0;
    await Promise.all(Array.from({ length: CONNS }, async (_, c) => {
      const ws = await open(a);
      try {
        for (let i = 0; i < FRAMES; i++) {
          const f = frames[(i + c) % frames.length]!;
          if (await rejected(ws, f.text)) refused++;
          sent++;
          bytes += f.text.length;
        }
      } finally {
        ws.terminate();
      }
    }));
    const burstS = (performance.now() - t0) / 1000;
    const peak = procMemKiB(a.pid).hwmKiB;
    log(`${name}: burst of ${sent} frames (${round(bytes / 1048576)} MiB, ${refused} rejected) in ${round(burstS)} s; peak ${kibToMib(peak)} MiB`);
    const series: number[] = [];
    for (let s = 1; s * 1000 <= AFTER_MS; s++) {
      await pause(1000);
      series.push(kibToMib(procMemKiB(a.pid).rssKiB));
    }
    const memAfter = await agentMemory(a.pid, a.logs);
    const after = procMemKiB(a.pid);
    log(`${name}: ${AFTER_MS / 1000} s after: ${describeMemory(memAfter)}`);
    return {
      idle_before_mb: kibToMib(before.rssKiB), after_mb: kibToMib(after.rssKiB), diff_mb: round(kibToMib(after.rssKiB) - kibToMib(before.rssKiB)),
      peak_mb: kibToMib(peak), after_series_mb: series, burst_s: round(burstS), frames: sent, burst_mb: round(bytes / 1048576), rejected: refused,
      mem_before: memBefore, mem_after: memAfter, releases: a.logs.filter((l) => l.includes('"msg":"memory released"')).length,
    };
  } catch (e) {
    dumpAgent(a);
    throw e;
  } finally {
    await stopAgentChild(a);
  }
}

async function main(): Promise<number> {
  const load1Start = loadavg()[0] ?? 0;
  const frames = burstFrames();
  log(`burst: ${CONNS} connections x ${FRAMES} frames of ${frames.map((f) => `${f.name} (${round(f.text.length / 1048576)} MiB)`).join(', ')}`);
  // The agent as it was: no memory release, and every frame parsed however deep (the batch limit still applies before parsing).
  const baseline = await runSide('baseline (memory release and depth check off)', { 'memory.releaseCheckMs': 0, 'rpc.maxNestingDepth': 2 ** 31 }, frames);
  const ours = await runSide('ours', {}, frames);
  const ok = ours.diff_mb <= BOUND_MB;
  console.log(`idle RSS before -> ${AFTER_MS / 1000} s after the burst: ours ${ours.idle_before_mb} -> ${ours.after_mb} MiB (${ours.diff_mb >= 0 ? '+' : ''}${ours.diff_mb}), `
    + `baseline ${baseline.idle_before_mb} -> ${baseline.after_mb} MiB (${baseline.diff_mb >= 0 ? '+' : ''}${baseline.diff_mb}); bound ${BOUND_MB} MiB: ${ok ? 'met' : 'NOT met'}`);
  console.log(JSON.stringify({
    diff_mb: ours.diff_mb, within_bound: ok, bound_mb: BOUND_MB,
    idle_before_mb: ours.idle_before_mb, after_mb: ours.after_mb, peak_mb: ours.peak_mb,
    baseline_diff_mb: baseline.diff_mb, baseline_idle_before_mb: baseline.idle_before_mb, baseline_after_mb: baseline.after_mb, baseline_peak_mb: baseline.peak_mb,
    rss_unit: 'MiB (VmRSS / 1024)', after_ms: AFTER_MS, idle_ms: IDLE_MS, conns: CONNS, frames_per_conn: FRAMES,
    ours, baseline,
    loadavg_1m_start: round(load1Start, 2), loadavg_1m_end: round(loadavg()[0] ?? 0, 2), node: process.version,
  }));
  return ok ? 0 : 1;
}

runBench(main);
