// Benchmark: VM start latency through the agent against the bare binding, in the same run.
//
//   npx tsc -p tsconfig.json && npm run bench:vm-start
//   (= node --expose-gc dist/bench/vm-start.js; run as root, after test/lab/setup.sh)
//
// ours: VM.create sent over the API (mTLS WebSocket, JSON-RPC) to hostvisord
//       running as a child process (harness spawnAgent), until the client
//       receives |virt|VM_status|<vmId> with status Up.
// bare: our libvirt facade (agent/libvirt Connection) in this process:
//       createXML(xml, 0) until its own lifecycle STARTED event arrives.
// Like with like: both sides start the same domain XML, built by the agent's
// own specToDomainXml from the same tinyGuest spec (TCG, 128 MiB, 1 vCPU,
// direct kernel boot, serial to a file), only name/uuid/serial path differ.
//
// 1. destroys leftover hv-bench-* domains; starts the agent and one bare connection;
// 2. one warm-up start per side (not counted);
// 3. GUESTS runs per side, one guest at a time: each guest is destroyed (ours:
//    VM.destroy over the API; bare: destroy()) before the next starts, with a
//    short settle pause; the sides alternate (ours first on even runs) so
//    drifting background load hits both alike;
// 4. destroys the guests (finally), stops the agent, prints a table and ends
//    with ONE line of JSON (nothing is printed after it).
//
// Env knobs (all bounded): BENCH_GUESTS (10), BENCH_SETTLE_MS (500),
// BENCH_START_TIMEOUT_MS per start (30000). Only loopback and the local libvirt socket are used.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { type Connection, type DomainEvent, enums, native } from '../agent/libvirt/index.js';
import { specToDomainXml } from '../agent/vm/domain-xml.js';
import { emptyMetadata } from '../agent/vm/metadata.js';
import type { HostvisorClient } from '../api/client/client.js';
import { connectClient, StatusWatch, tinyGuest } from '../test/agent/harness.js';
import {
  NAME_PREFIX, type BenchAgent, dumpAgent, whenClosed, checkAborted, deadline, destroyBenchGuests, envInt, fmt, log,
  median, openWithRetry, otherDomains, pause, printTable, quantile, ratio, round, startAgentChild, stopAgentChild, summarize, runBench, destroyLeftGuests,
} from './bench-util.js';

const GUESTS = envInt('BENCH_GUESTS', 10, 1, 50);
const SETTLE_MS = envInt('BENCH_SETTLE_MS', 500, 0, 10_000);
const START_TIMEOUT_MS = envInt('BENCH_START_TIMEOUT_MS', 30_000, 5_000, 120_000);
const CMDLINE = ['lab.end=wait']; // the guest never powers itself off

interface OursRun { name: string; vmId: string; replyMs: number; poweringUpMs: number | null; upMs: number; agentCreateXmlMs: number | null }
interface BareRun { name: string; returnMs: number; startedMs: number }

/** The domain XML the agent builds for a tinyGuest spec (the same function VM.create uses). */
function bareXml(name: string): { uuid: string; xml: string; serial: string } {
  const g = tinyGuest(name, { cmdline: CMDLINE });
  const meta = emptyMetadata();
  meta.startTime = Date.now();
  meta.launchPaused = false;
  return { uuid: g.vmID, xml: specToDomainXml(g.vmID, g.spec, 'qemu', meta), serial: g.serial };
}

class Bare {
  private readonly started = new Map<string, number>();
  private readonly waiters = new Map<string, () => void>();

  constructor(readonly conn: Connection) {}

  async subscribe(): Promise<void> {
    await this.conn.subscribe('lifecycle', (ev: DomainEvent<'lifecycle'>) => {
      if (ev.event !== enums.DomainEventType.STARTED) return;
      const at = performance.now();
      if (!this.started.has(ev.domain.uuid)) this.started.set(ev.domain.uuid, at);
      this.waiters.get(ev.domain.uuid)?.();
    });
  }

  async run(name: string): Promise<BareRun> {
    const { uuid, xml, serial } = bareXml(name);
    await rm(serial, { force: true });
    const gotStarted = new Promise<void>((resolve) => this.waiters.set(uuid, resolve));
    const t0 = performance.now();
    const dom = await this.conn.createXML(xml, 0);
    const tReturn = performance.now();
    try {
      if (!this.started.has(uuid)) await deadline(gotStarted, START_TIMEOUT_MS, `${name}: STARTED event`);
      const tStarted = this.started.get(uuid) as number;
      return { name, returnMs: tReturn - t0, startedMs: tStarted - t0 };
    } finally {
      this.waiters.delete(uuid);
      this.started.delete(uuid);
      await dom.destroy().catch((e: unknown) => log(`destroy ${name}: ${String(e)}`));
    }
  }
}

class Ours {
  private readonly closed: Promise<never>;

  constructor(private readonly client: HostvisorClient, private readonly watch: StatusWatch, private readonly agentLogs: string[]) {
    this.closed = whenClosed(client);
  }

  /** The createXML phase the agent logged for this VM ("VM launched", phasesMs.createXML), if it did. */
  agentCreateXml(vmId: string): number | null {
    for (let i = this.agentLogs.length - 1; i >= 0; i--) {
      const l = this.agentLogs[i] ?? '';
      if (!l.includes(vmId) || !l.includes('"VM launched"')) continue;
      try {
        const v = (JSON.parse(l) as { phasesMs?: { createXML?: unknown } }).phasesMs?.createXML;
        return typeof v === 'number' ? v : null;
      } catch { return null; }
    }
    return null;
  }

  private eventAt(vmId: string, status: string, since: number): number | null {
    return this.watch.events.find((e) => e.vmId === vmId && e.body.status === status && e.at >= since)?.at ?? null;
  }

  async run(name: string): Promise<OursRun> {
    const g = tinyGuest(name, { cmdline: CMDLINE });
    await rm(g.serial, { force: true });
    const t0 = performance.now();
    let created = false;
    try {
      const r = await this.client.call('VM.create', { vmID: g.vmID, spec: g.spec });
      created = true;
      const tReply = performance.now();
      if (r.status !== 'WaitForLaunch') throw new Error(`${name}: VM.create answered ${JSON.stringify(r)}`);
      await Promise.race([this.watch.wait(g.vmID, 'Up', START_TIMEOUT_MS, t0), this.closed]);
      const up = this.eventAt(g.vmID, 'Up', t0) as number;
      const pu = this.eventAt(g.vmID, 'Powering up', t0);
      return { name, vmId: g.vmID, replyMs: tReply - t0, poweringUpMs: pu === null ? null : pu - t0, upMs: up - t0, agentCreateXmlMs: null };
    } finally {
      if (created) {
        await this.client.call('VM.destroy', { vmID: g.vmID }, { timeoutMs: 45_000 })
          .catch((e: unknown) => log(`VM.destroy ${name}: ${String(e)}`));
      }
    }
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
  const ours: OursRun[] = [];
  const bare: BareRun[] = [];
  let warmOurs: OursRun;
  let warmBare: BareRun;
  let others: number;
  let o: Ours | undefined;
  try {
    // Production stats intervals (15 s): no 1 s sampling of libvirtd in the background.
    agent = await startAgentChild({ 'stats.vmIntervalMs': 15_000, 'stats.hostIntervalMs': 15_000, 'virt.domainType': 'qemu' });
    log(`agent pid ${agent.pid} ready on port ${agent.config['rpc.port']}`);
    client = await connectClient(agent.config);
    const oo = new Ours(client, new StatusWatch(client), agent.logs);
    o = oo;
    conn = await openWithRetry(15_000);
    const b = new Bare(conn);
    await b.subscribe();
    others = await otherDomains(conn);
    if (others > 0) log(`note: ${others} other running domain(s) on this host`);

    warmOurs = await oo.run(`${NAME_PREFIX}start-ours-warm`);
    await pause(SETTLE_MS);
    warmBare = await b.run(`${NAME_PREFIX}start-bare-warm`);
    log(`warm-up: ours Up after ${round(warmOurs.upMs)} ms, bare STARTED after ${round(warmBare.startedMs)} ms`);
    for (let i = 0; i < GUESTS; i++) {
      const runOurs = async (): Promise<void> => { checkAborted(); await pause(SETTLE_MS); ours.push(await oo.run(`${NAME_PREFIX}start-ours-${i}`)); };
      const runBare = async (): Promise<void> => { checkAborted(); await pause(SETTLE_MS); bare.push(await b.run(`${NAME_PREFIX}start-bare-${i}`)); };
      if (i % 2 === 0) { await runOurs(); await runBare(); } else { await runBare(); await runOurs(); }
      log(`run ${i}: ours Up ${round(ours[i]?.upMs ?? NaN)} ms, bare STARTED ${round(bare[i]?.startedMs ?? NaN)} ms`);
    }
  } catch (e) {
    dumpAgent(agent);
    throw e;
  } finally {
    await destroyLeftGuests(destroyBenchGuests, `${NAME_PREFIX}*`);
    if (conn) await conn.close().catch(() => {});
    if (client) await deadline(client.close(), 5_000, 'client close').catch(() => {});
    if (agent) await stopAgentChild(agent);
  }

  // The agent's log lines of a run are complete once its VM.destroy answered (same VM queue, after the launch).
  for (const r of [warmOurs, ...ours]) r.agentCreateXmlMs = o?.agentCreateXml(r.vmId) ?? null;
  const oursUp = ours.map((r) => r.upMs);
  const bareStarted = bare.map((r) => r.startedMs);
  const so = summarize(oursUp);
  const sb = summarize(bareStarted);
  const rows: string[][] = [['run', 'ours VM.create reply ms', 'ours Powering up ms', "agent's createXML ms", 'ours Up ms', 'bare createXML return ms', 'bare STARTED ms', 'ours-bare ms']];
  const row = (label: string, x: OursRun | undefined, y: BareRun | undefined): string[] => [
    label, fmt(x?.replyMs), fmt(x?.poweringUpMs), fmt(x?.agentCreateXmlMs), fmt(x?.upMs), fmt(y?.returnMs), fmt(y?.startedMs),
    fmt(x && y ? x.upMs - y.startedMs : null),
  ];
  rows.push(row('warm-up', warmOurs, warmBare));
  for (let i = 0; i < GUESTS; i++) rows.push(row(String(i), ours[i], bare[i]));
  const med = (xs: number[]): string => fmt(median(xs));
  const p90 = (xs: number[]): string => fmt(quantile([...xs].sort((a, c) => a - c), 0.9));
  const agentCx = ours.flatMap((r) => (r.agentCreateXmlMs === null ? [] : [r.agentCreateXmlMs]));
  rows.push(['median', med(ours.map((r) => r.replyMs)), med(ours.flatMap((r) => (r.poweringUpMs === null ? [] : [r.poweringUpMs]))), med(agentCx), med(oursUp),
    med(bare.map((r) => r.returnMs)), med(bareStarted), fmt((so.median ?? NaN) - (sb.median ?? NaN))]);
  rows.push(['p90', p90(ours.map((r) => r.replyMs)), '', p90(agentCx), p90(oursUp), p90(bare.map((r) => r.returnMs)), p90(bareStarted), '']);
  printTable(rows);

  const json = {
    ours_median_ms: so.median,
    bare_median_ms: sb.median,
    ratio: ratio(so.median, sb.median),
    guests: GUESTS,
    ours_p90_ms: so.p90,
    bare_p90_ms: sb.p90,
    overhead_median_ms: so.median !== null && sb.median !== null ? round(so.median - sb.median) : null,
    ours_runs_ms: oursUp.map((v) => round(v)),
    bare_runs_ms: bareStarted.map((v) => round(v)),
    ours_min_ms: so.min, ours_max_ms: so.max, bare_min_ms: sb.min, bare_max_ms: sb.max,
    ours_create_reply_median_ms: summarize(ours.map((r) => r.replyMs), 2).median,
    bare_createxml_return_median_ms: summarize(bare.map((r) => r.returnMs)).median,
    ours_agent_createxml_median_ms: summarize(agentCx).median,
    ours_agent_createxml_runs: agentCx.length,
    warmup_ours_ms: round(warmOurs.upMs),
    warmup_bare_ms: round(warmBare.startedMs),
    mode: 'sequential: each guest destroyed before the next; sides alternate',
    agent: 'child process (spawnAgent), stats intervals 15000 ms',
    settle_ms: SETTLE_MS,
    other_domains: others,
    loadavg_1m_start: round(load1Start, 2),
    loadavg_1m_end: round(loadavg()[0] ?? 0, 2),
    libvirt_version: native.libVersion(),
    node: process.version,
    total_s: round((performance.now() - runStart) / 1000),
  };
  console.log(`ours: VM.create over the API -> Up event; bare: createXML -> STARTED event; ${GUESTS} guests per side, ` +
    `one at a time (destroyed before the next), 1 warm-up each not counted; load ${json.loadavg_1m_start} -> ${json.loadavg_1m_end}, total ${json.total_s} s`);
  console.log(JSON.stringify(json));
  return 0;
}

runBench(main);
