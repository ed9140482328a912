// Benchmark: Host.getAllVmStats over the API against one bare getAllDomainStats
// call, with 20 running VMs, plus the agent's RSS idle and with the 20 VMs.
//
//   npx tsc -p tsconfig.json && npm run bench:stats
//   (= node --expose-gc dist/bench/stats.js; run as root, after test/lab/setup.sh)
//
// ours: Host.getAllVmStats over the API (mTLS WebSocket, JSON-RPC) to
//       hostvisord running as a child process (harness spawnAgent,
//       'stats.vmIntervalMs' 1000). The agent answers from its last bulk sample
//       (one getAllDomainStats per interval), so a call costs RPC + formatting.
// bare: one getAllDomainStats(0, 0) call (all stats groups, all domains) on
//       our libvirt facade in this process, on the same 20 VMs.
//
// 1. destroys leftover hv-bench-* domains; starts the agent; ~2 s after it
//    logged ready (no VMs, no client yet) reads VmRSS from /proc/<pid>/status
//    (and again at ~10 s);
// 2. starts VMS guests via VM.create in parallel batches of BATCH, each batch
//    waited for (Up event, then LAB-BOOT-OK on the serial console);
// 3. waits STATS_SETTLE_MS (a few 1 s stats intervals), checks that
//    getAllVmStats reports all VMS with sampled stats, reads VmRSS again;
// 4. ROUNDS rounds, sides alternating: ours at 1 and 8 calls in flight, bare at 1
//    (plus bare with the agent's own groups/flags, for reference): warm-up,
//    then calls over a fixed window; latencies pooled over the rounds;
// 5. destroys the guests (VM.destroy, then any hv-bench-* left; finally), stops
//    the agent, prints a table and ends with ONE line of JSON (nothing after it).
//
// Env knobs (all bounded): BENCH_VMS (20), BENCH_BATCH (5), BENCH_WINDOW_MS (2000),
// BENCH_WARMUP_MS (300), BENCH_ROUNDS (3), BENCH_MAX_CALLS per cell (100000),
// BENCH_BOOT_TIMEOUT_MS per batch (90000), BENCH_IDLE_MS (2000), BENCH_IDLE_LATE_MS (10000: a second
// idle reading, after V8 has had time to collect its startup garbage), BENCH_STATS_SETTLE_MS (3500).
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { type Connection, native } from '../agent/libvirt/index.js';
import type { HostvisorClient } from '../api/client/client.js';
import { VM_STATS_FLAGS, VM_STATS_GROUPS } from '../agent/stats/vm-stats-sampler.js';
import { connectClient, StatusWatch, tinyGuest } from '../test/agent/harness.js';
import { waitForSerialMarker } from '../test/lab/guest.js';
import { agentMemory, describeMemory, type AgentMemory } from './agent-memory.js';
import {
  NAME_PREFIX, type BenchAgent, dumpAgent, whenClosed, aborted, checkAborted, destroyBenchGuests, deadline, envInt, fmt, gc, installSignalHandlers,
  kibToMib, log, openWithRetry, otherDomains, pause, printTable, procMemKiB, quantile, ratio, round, startAgentChild, stopAgentChild, runBench, destroyLeftGuests,
} from './bench-util.js';

const VMS = envInt('BENCH_VMS', 20, 1, 40);
const BATCH = envInt('BENCH_BATCH', 5, 1, 20);
const WINDOW_MS = envInt('BENCH_WINDOW_MS', 2000, 100, 10_000);
const WARMUP_MS = envInt('BENCH_WARMUP_MS', 300, 0, 5_000);
const ROUNDS = envInt('BENCH_ROUNDS', 3, 1, 10);
const MAX_CALLS = envInt('BENCH_MAX_CALLS', 100_000, 100, 1_000_000);
const BOOT_TIMEOUT_MS = envInt('BENCH_BOOT_TIMEOUT_MS', 90_000, 10_000, 300_000);
const IDLE_MS = envInt('BENCH_IDLE_MS', 2000, 0, 60_000);
const IDLE_LATE_MS = Math.max(IDLE_MS, envInt('BENCH_IDLE_LATE_MS', 10_000, 0, 120_000));
const STATS_INTERVAL_MS = 1000;
const STATS_SETTLE_MS = envInt('BENCH_STATS_SETTLE_MS', 3500, 2 * STATS_INTERVAL_MS, 60_000);

interface Cell { calls: number; errors: number; elapsedS: number; cps: number; lat: number[] }

/**
 * Keeps `inFlight` calls outstanding until windowMs passed or maxCalls started; latencies in ms.
 * With `tolerate`, a failed call is counted and skipped (a bare getAllDomainStats fails whenever
 * another test's guest goes away under it); the cell fails only if most calls did.
 */
async function runCell(fn: () => Promise<unknown>, inFlight: number, windowMs: number, tolerate: boolean): Promise<Cell> {
  const lat: number[] = [];
  let started = 0;
  let errors = 0;
  let failure: unknown;
  const t0 = performance.now();
  const end = t0 + windowMs;
  const worker = async (): Promise<void> => {
    while (failure === undefined && !aborted() && started < MAX_CALLS) {
      const s = performance.now();
      if (s >= end) break;
      started++;
      try {
        await fn();
      } catch (e) {
        errors++;
        if (!tolerate || errors > lat.length + 3) failure ??= e;
        continue;
      }
      lat.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsedS = (performance.now() - t0) / 1000;
  if (failure !== undefined) throw failure;
  checkAborted();
  return { calls: lat.length, errors, elapsedS, cps: lat.length / elapsedS, lat };
}

async function cell(fn: () => Promise<unknown>, inFlight: number, tolerate = false): Promise<Cell> {
  gc();
  if (WARMUP_MS > 0) await runCell(fn, inFlight, WARMUP_MS, tolerate);
  return runCell(fn, inFlight, WINDOW_MS, tolerate);
}

/** Cells of one kind pooled over the rounds. */
class Pooled {
  calls = 0;
  errors = 0;
  elapsedS = 0;
  lat: number[] = [];
  add(c: Cell): void { this.calls += c.calls; this.errors += c.errors; this.elapsedS += c.elapsedS; this.lat.push(...c.lat); }
  get cps(): number | null { return this.elapsedS > 0 ? round(this.calls / this.elapsedS) : null; }
  q(p: number): number | null {
    const v = quantile(this.lat.sort((a, b) => a - b), p);
    return v === null ? null : round(v, 3);
  }
}

async function startVms(client: HostvisorClient, watch: StatusWatch, closed: Promise<never>): Promise<{ ids: string[]; ms: number; batchMs: number[] }> {
  const ids: string[] = [];
  const batchMs: number[] = [];
  const t0 = performance.now();
  for (let b = 0; b < VMS; b += BATCH) {
    checkAborted();
    const tb = performance.now();
    // no_timer_check: TCG guests booting together on a busy 2-core host can starve a vCPU enough to
    // fail the kernel's IO-APIC timer check and panic (as bench/libvirt-binding.ts found).
    const guests = Array.from({ length: Math.min(BATCH, VMS - b) }, (_, k) => tinyGuest(`${NAME_PREFIX}stats-${b + k}`, { cmdline: ['lab.end=wait', 'no_timer_check'] }));
    await Promise.all(guests.map((g) => rm(g.serial, { force: true })));
    await Promise.all(guests.map(async (g) => {
      await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
      ids.push(g.vmID);
    }));
    await Promise.race([Promise.all(guests.map((g) => watch.wait(g.vmID, 'Up', BOOT_TIMEOUT_MS))), closed]);
    await deadline(Promise.all(guests.map((g) => waitForSerialMarker(g.serial, 'LAB-BOOT-OK', BOOT_TIMEOUT_MS))),
      BOOT_TIMEOUT_MS + 5_000, 'LAB-BOOT-OK');
    batchMs.push(Math.round(performance.now() - tb));
    log(`VMs ${b}..${b + guests.length - 1} Up and booted in ${batchMs[batchMs.length - 1]} ms`);
  }
  return { ids, ms: Math.round(performance.now() - t0), batchMs };
}

async function destroyVms(client: HostvisorClient, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += BATCH) {
    await Promise.all(ids.slice(i, i + BATCH).map((vmID) =>
      client.call('VM.destroy', { vmID }, { timeoutMs: 45_000 }).catch((e: unknown) => log(`VM.destroy ${vmID}: ${String(e)}`))));
  }
}

async function main(): Promise<number> {
  const runStart = performance.now();
  const load1Start = loadavg()[0] ?? 0;
  const leftovers = await destroyBenchGuests();
  if (leftovers > 0) log(`removed ${leftovers} leftover ${NAME_PREFIX}* domain(s)`);

  let agent: BenchAgent | undefined;
  let client: HostvisorClient | undefined;
  let conn: Connection | undefined;
  let ids: string[] = [];
  const oursLat1 = new Pooled();
  const oursLat8 = new Pooled();
  const bareAll = new Pooled();
  const bareAgent = new Pooled();
  let idle: { rssKiB: number; hwmKiB: number };
  let memIdle: AgentMemory;
  let memIdleLate: AgentMemory;
  let mem20: AgentMemory;
  let idleLate: { rssKiB: number; hwmKiB: number };
  let with20: { rssKiB: number; hwmKiB: number };
  let after: { rssKiB: number; hwmKiB: number };
  let boot: Awaited<ReturnType<typeof startVms>>;
  let statsEntries: number;
  const notOurs: Record<string, number> = {};
  let sampled: number;
  let responseBytes: number;
  let bareDomains: number;
  let others: number;
  try {
    agent = await startAgentChild({ 'stats.vmIntervalMs': STATS_INTERVAL_MS, 'stats.hostIntervalMs': STATS_INTERVAL_MS, 'virt.domainType': 'qemu' }, { memoryProbe: true });
    log(`agent pid ${agent.pid} ready on port ${agent.config['rpc.port']}; idle ${IDLE_MS} ms`);
    await pause(IDLE_MS);
    idle = procMemKiB(agent.pid);
    memIdle = await agentMemory(agent.pid, agent.logs);
    log(`agent idle: ${describeMemory(memIdle)}; again after ${IDLE_LATE_MS} ms`);
    await pause(IDLE_LATE_MS - IDLE_MS);
    idleLate = procMemKiB(agent.pid);
    memIdleLate = await agentMemory(agent.pid, agent.logs);
    log(`agent idle, later: ${describeMemory(memIdleLate)}`);

    client = await connectClient(agent.config);
    const watch = new StatusWatch(client);
    conn = await openWithRetry(15_000);
    others = await otherDomains(conn);
    if (others > 0) log(`note: ${others} other running domain(s) on this host (bare getAllDomainStats sees them too)`);

    try {
      boot = await startVms(client, watch, whenClosed(client));
    } finally {
      ids = watch.events.filter((e) => e.body.status === 'WaitForLaunch').map((e) => e.vmId);
    }
    log(`${VMS} VMs Up and booted in ${boot.ms} ms; waiting ${STATS_SETTLE_MS} ms for stats samples`);
    await pause(STATS_SETTLE_MS);
    checkAborted();

    const mine = new Set(ids);
    const first = await client.call('Host.getAllVmStats', {});
    responseBytes = Buffer.byteLength(JSON.stringify(first));
    const ourStats = first.statsList.filter((s) => mine.has(s.vmId));
    statsEntries = first.statsList.length;
    for (const e of first.statsList) if (!mine.has(e.vmId)) notOurs[e.status] = (notOurs[e.status] ?? 0) + 1;
    sampled = ourStats.filter((s) => s.status === 'Up' && s.sampleTime !== undefined && s.cpuTimeNs !== undefined).length;
    if (sampled !== VMS) throw new Error(`getAllVmStats: ${sampled} of our ${VMS} VMs have sampled stats (statsList has ${statsEntries} entries)`);
    bareDomains = (await conn.getAllDomainStats(0, 0)).length;
    with20 = procMemKiB(agent.pid);
    mem20 = await agentMemory(agent.pid, agent.logs);
    log(`agent with ${VMS} VMs: ${describeMemory(mem20)}; getAllVmStats ${statsEntries} entries, ${responseBytes} bytes`);

    const c = client;
    const cn = conn;
    const ours = (): Promise<unknown> => c.call('Host.getAllVmStats', {});
    const bareCall = (): Promise<unknown> => cn.getAllDomainStats(0, 0);
    const bareAgentCall = (): Promise<unknown> => cn.getAllDomainStats(VM_STATS_GROUPS, VM_STATS_FLAGS);
    for (let r = 0; r < ROUNDS; r++) {
      const steps: [string, Pooled, () => Promise<unknown>, number][] = [
        ['ours x1', oursLat1, ours, 1],
        ['bare x1', bareAll, bareCall, 1],
        ['ours x8', oursLat8, ours, 8],
        ['bare agent-groups x1', bareAgent, bareAgentCall, 1],
      ];
      if (r % 2 === 1) steps.reverse();
      const notes: string[] = [];
      for (const [name, pool, fn, level] of steps) {
        const c1 = await cell(fn, level, pool === bareAll || pool === bareAgent);
        pool.add(c1);
        notes.push(`${name} ${fmt(quantile(c1.lat.sort((a, b) => a - b), 0.5), 3)} ms p50, ${fmt(c1.cps)} calls/s${c1.errors ? `, ${c1.errors} failed` : ''}`);
      }
      log(`round ${r}: ${notes.join('; ')}`);
    }
    after = procMemKiB(agent.pid);
  } catch (e) {
    dumpAgent(agent);
    throw e;
  } finally {
    if (client && ids.length > 0) await deadline(destroyVms(client, ids), 120_000, 'VM.destroy').catch((e: unknown) => log(String(e)));
    await destroyLeftGuests(destroyBenchGuests, `${NAME_PREFIX}*`);
    if (conn) await conn.close().catch(() => {});
    if (client) await deadline(client.close(), 5_000, 'client close').catch(() => {});
    if (agent) await stopAgentChild(agent);
  }

  const rows: string[][] = [['call', 'in flight', 'calls', 'calls/s', 'p50 ms', 'p90 ms', 'p99 ms']];
  const row = (name: string, level: number, p: Pooled): string[] =>
    [name, String(level), String(p.calls), fmt(p.cps), fmt(p.q(0.5), 3), fmt(p.q(0.9), 3), fmt(p.q(0.99), 3)];
  rows.push(row('ours Host.getAllVmStats (API)', 1, oursLat1));
  rows.push(row('ours Host.getAllVmStats (API)', 8, oursLat8));
  rows.push(row('bare getAllDomainStats(all groups)', 1, bareAll));
  rows.push(row("bare getAllDomainStats(agent's groups)", 1, bareAgent));
  printTable(rows);

  const oursP50 = oursLat1.q(0.5);
  const bareP50 = bareAll.q(0.5);
  const json = {
    ours_p50_ms: oursP50,
    bare_p50_ms: bareP50,
    ratio: ratio(oursP50, bareP50),
    rss_idle_mb: kibToMib(idle.rssKiB),
    rss_20vms_mb: kibToMib(with20.rssKiB),
    vms: VMS,
    ratio_precise: oursP50 !== null && bareP50 !== null && bareP50 > 0 ? Number((oursP50 / bareP50).toPrecision(3)) : null,
    rss_idle_late_mb: kibToMib(idleLate.rssKiB),
    idle_ms: IDLE_MS,
    idle_late_ms: IDLE_LATE_MS,
    ours_p90_ms: oursLat1.q(0.9),
    ours_p99_ms: oursLat1.q(0.99),
    ours_cps: oursLat1.cps,
    ours_8_inflight_cps: oursLat8.cps,
    ours_8_inflight_p50_ms: oursLat8.q(0.5),
    bare_p90_ms: bareAll.q(0.9),
    bare_p99_ms: bareAll.q(0.99),
    bare_cps: bareAll.cps,
    bare_agent_groups_p50_ms: bareAgent.q(0.5),
    bare_agent_groups_cps: bareAgent.cps,
    bare_errors: bareAll.errors + bareAgent.errors,
    rss_after_calls_mb: kibToMib(after.rssKiB),
    rss_hwm_mb: kibToMib(after.hwmKiB),
    rss_unit: 'MiB (VmRSS / 1024)',
    // What the memory is, at each reading: resident pages by mapping (file-backed: node binary, libraries, addon;
    // anonymous: malloc's heap, stacks, the rest, which holds the V8 heap) and the V8 heap by space, in MiB.
    mem_idle: memIdle,
    mem_idle_late: memIdleLate,
    mem_vms: mem20,
    stats_entries: statsEntries,
    stats_sampled_ours: sampled,
    stats_entries_not_ours: notOurs,
    bare_domains: bareDomains,
    other_domains: others,
    response_bytes: responseBytes,
    vm_start_total_ms: boot.ms,
    vm_start_batch_ms: boot.batchMs,
    batch: BATCH,
    stats_interval_ms: STATS_INTERVAL_MS,
    window_ms: WINDOW_MS,
    warmup_ms: WARMUP_MS,
    rounds: ROUNDS,
    loadavg_1m_start: round(load1Start, 2),
    loadavg_1m_end: round(loadavg()[0] ?? 0, 2),
    libvirt_version: native.libVersion(),
    node: process.version,
    total_s: round((performance.now() - runStart) / 1000),
  };
  console.log(`agent RSS: ${json.rss_idle_mb} MiB idle (no VMs, ${IDLE_MS} ms after ready; ${json.rss_idle_late_mb} MiB at ${IDLE_LATE_MS} ms), ${json.rss_20vms_mb} MiB with ${VMS} VMs ` +
    `(${STATS_SETTLE_MS} ms of ${STATS_INTERVAL_MS} ms stats intervals), ${json.rss_after_calls_mb} MiB after the calls (peak ${json.rss_hwm_mb} MiB)`);
  const adopted = Object.entries(notOurs).map(([k, v]) => `${v} ${k}`).join(', ');
  console.log(`getAllVmStats: ${statsEntries} entries${adopted ? ` (not ours: ${adopted})` : ''}, ${responseBytes} bytes; bare getAllDomainStats sees ${bareDomains} domains ` +
    `(${others} not ours); ${VMS} VMs started in ${boot.ms} ms (batches of ${BATCH}: ${boot.batchMs.join(', ')} ms); ` +
    `${ROUNDS} rounds of ${WINDOW_MS} ms per cell; load ${json.loadavg_1m_start} -> ${json.loadavg_1m_end}, total ${json.total_s} s`);
  console.log(JSON.stringify(json));
  return 0;
}

runBench(main);
