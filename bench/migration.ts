// Benchmark: live migration between two lab hosts through the agents against a bare
// `virsh migrate --live --p2p`, alternated in one run.
//
//   npm run bench:migration   (= node --expose-gc dist/bench/migration.js; root, after test/lab/setup.sh)
//
// The multi-host lab (test/lab/multihost, labUp(2)) runs one hostvisord in each host. Two
// guests of the same shape (the tiny guest, TCG, 128 MiB, 1 vCPU, test/lab/workloads.ts
// dirtyTickerScript: a counter every 100 ms and BENCH_DIRTY_MIBS MiB/s of memory rewritten
// with random bytes) run for the whole bench:
//   ours: created through the agent on A, migrated with VM.migrate over the API; timed from
//         the call to the later of VM_status Up from the destination agent and Down
//         ("migration succeeded") from the source agent; downtime from VM.getMigrationStatus
//         (libvirt's JOB_COMPLETED figure). The source agent is then told VM.destroy (the
//         engine's part: it forgets the Down VM), untimed.
//   bare: a domain defined with virsh on A from the XML the agent builds for the same spec
//         (specToDomainXml, without our metadata, so the agents treat it as external and
//         never touch it); migrated by `virsh -c qemu:///system migrate --live --p2p
//         --persistent --bandwidth <BW> <dom> qemu+<transport>://<dst>/system` run inside the
//         source host, timed from spawn to exit; downtime from `virsh domjobinfo --completed`
//         on the source ("Total downtime").
// Why the comparison is fair: a separate domain rather than the agent's own (migrating the
// agent's domain behind its back would be a fault, not a baseline); the same domain XML
// but for name/uuid/serial path, the same workload and rate, the same libvirt flags (the
// agent's LIVE | PEER2PEER | PERSIST_DEST = --live --p2p --persistent), the same bandwidth
// (the agent's default 52 MiB/s, given to both explicitly) and the same transport (qemu+tcp
// in the lab, BENCH_TRANSPORT). Both guests run throughout, so each method migrates with the
// other guest as background load; the lab hosts share this machine's cores, so where that
// guest sits does not matter. Each round migrates both guests in the same direction (away
// from the host each is on: A->B, B->A, ...), ours then bare: the methods strictly
// alternate, so every migration follows one of the other method's by BENCH_SETTLE_MS and
// each guest rests as long between its own. (Swapping the order every other round, as
// bench:vm-start does, makes each guest migrate twice back to back, and in a first run
// the second of such a pair was the slower one, ~10 %, whichever method it was.)
// After the first round trip both guests are in the same libvirt state (persistent on the
// host they run on, an inactive definition on the other).
//
// Env knobs (bounded): BENCH_ROUNDS (5), BENCH_WARMUP_ROUNDS (1, not counted),
// BENCH_DIRTY_MIBS (10), BENCH_BANDWIDTH_MIBS (52), BENCH_TRANSPORT (tcp|tls; tcp is what the
// lab's libvirtd listens on), BENCH_MIGRATION_TIMEOUT_S (120 per migration; past it the
// migration is aborted and counts as not converged), BENCH_SETTLE_MS (2000 between migrations).
// Traffic: loopback and the lab's namespaces only. The lab is always taken down at the end.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { specToDomainXml } from '../agent/vm/domain-xml.js';
import { emptyMetadata } from '../agent/vm/metadata.js';
import type { HostvisorClient } from '../api/client/client.js';
import { bounded, StatusWatch, testConfig, type VmSpecParam } from '../test/agent/harness.js';
import { connectLabClient, spawnLabAgent, type LabAgent } from '../test/agent/storage/lab-agents.js';
import { GUEST_DIR, waitForSerialMarker } from '../test/lab/guest.js';
import { labDown, labUp, type LabHost } from '../test/lab/multihost/lab.js';
import { dirtyRateIn, dirtyTickerScript, labShWord } from '../test/lab/workloads.js';
import { checkAborted, envInt, fmt, log, median, pause, printTable, round, runBench, runFacts } from './bench-util.js';
import { type Method, type Migration, type Side, bareDefineAndStart, bareMigrate, bareVirshStartupMs, removeDomains, until } from './migration-bare.js';

const ROUNDS = envInt('BENCH_ROUNDS', 5, 1, 20);
const WARMUP_ROUNDS = envInt('BENCH_WARMUP_ROUNDS', 1, 0, 3);
const DIRTY_MIBS = envInt('BENCH_DIRTY_MIBS', 10, 0, 40);
const BANDWIDTH_MIBS = envInt('BENCH_BANDWIDTH_MIBS', 52, 1, 10_000);
const TIMEOUT_S = envInt('BENCH_MIGRATION_TIMEOUT_S', 120, 10, 600);
const SETTLE_MS = envInt('BENCH_SETTLE_MS', 2_000, 0, 30_000);
const TRANSPORT = process.env['BENCH_TRANSPORT'] || 'tcp';
if (TRANSPORT !== 'tcp' && TRANSPORT !== 'tls') throw new Error(`BENCH_TRANSPORT must be tcp or tls, not '${TRANSPORT}'`);
const RPC_PORT = 54321;
const SERIAL_DIR = '/var/log/libvirt/qemu';
const BOOT_TIMEOUT_MS = 180_000;
const NAMES: Record<Method, string> = { ours: 'hv-bench-mig-ours', bare: 'hv-bench-mig-bare' };

/** The guest's spec: the same for both methods but for its name (and so its serial path). */
function guestSpec(name: string): VmSpecParam {
  return {
    name, memoryMiB: 128, vcpus: 1, domainType: 'qemu',
    kernel: join(GUEST_DIR, 'vmlinux'), initrd: join(GUEST_DIR, 'initrd.img'),
    cmdline: ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', labShWord(dirtyTickerScript({ dirtyMiBs: DIRTY_MIBS }))].join(' '),
    serialLog: join(SERIAL_DIR, `${name}.serial`),
  } as VmSpecParam;
}

/** The guest's serial log on host h (its private /var/log/libvirt), read from this namespace. */
const serialFile = (h: LabHost, name: string): string => join(h.dir, 'log', 'libvirt', 'qemu', `${name}.serial`);

/** The dirty rate the guest reached over the whole bench: its LAB-DIRTY marks from both hosts' logs, in guest-uptime order. */
function dirtyRate(hosts: LabHost[], name: string): number | null {
  const marks = hosts.flatMap((h) => (existsSync(serialFile(h, name)) ? readFileSync(serialFile(h, name), 'latin1').split('\n') : []))
    .filter((l) => l.startsWith('LAB-DIRTY mib='))
    .sort((a, b) => Number(/uptime=([\d.]+)/.exec(a)?.[1]) - Number(/uptime=([\d.]+)/.exec(b)?.[1]));
  const r = dirtyRateIn(marks.join('\n'));
  return r === undefined ? null : round(r, 2);
}

const PHASES = ['slot', 'hooks', 'connect', 'migrationCreate', 'migrateToURI3'] as const;

/**
 * The source agent's phases of the migration (its "migration succeeded" log line: marks
 * from VM.migrate, made into durations), so the difference to bare can be read.
 */
async function agentPhases(agent: LabAgent | undefined, vmId: string, fromLine: number): Promise<Record<string, number> | null> {
  if (!agent) return null;
  const line = await until('the agent\'s "migration succeeded" log line', 5_000, () =>
    agent.logs.slice(fromLine).find((l) => l.includes('"msg":"migration succeeded"') && l.includes(vmId))).catch(() => undefined);
  if (!line) return null;
  const marks = (JSON.parse(line) as { phasesMs?: Record<string, number> }).phasesMs ?? {};
  const out: Record<string, number> = {};
  let prev = 0;
  for (const p of PHASES) {
    if (typeof marks[p] !== 'number') continue;
    out[p] = marks[p] - prev;
    prev = marks[p];
  }
  return out;
}

/** One migration through the agents, from the source's side to the destination's. */
async function oursMigrate(src: Side, dst: Side, vmId: string): Promise<Migration> {
  const c = src.client!;
  const fromLine = src.agent?.logs.length ?? 0;
  const t0 = performance.now();
  await c.call('VM.migrate', { vmID: vmId, params: { dst: `${dst.host.address}:${RPC_PORT}`, maxBandwidth: BANDWIDTH_MIBS, timeout: TIMEOUT_S } });
  const at = (w: StatusWatch, status: string): number | undefined => w.events.find((e) => e.vmId === vmId && e.body.status === status && e.at >= t0)?.at;
  // Done: Up on the destination and Down on the source; failed: Up again on the source.
  const ended = await until(`migration of ${vmId}`, TIMEOUT_S * 1000 + 30_000, () => {
    const up = at(dst.watch!, 'Up');
    const down = at(src.watch!, 'Down');
    if (up !== undefined && down !== undefined) return { ok: true, end: Math.max(up, down) };
    if (at(src.watch!, 'Up') !== undefined) return { ok: false, end: performance.now() };
    return undefined;
  });
  // The figures come once the source's migration ended (it waits up to 2 s for libvirt's JOB_COMPLETED).
  const st = await until('VM.getMigrationStatus', 15_000, async () => {
    const s = await c.call('VM.getMigrationStatus', { vmID: vmId });
    return s.status === 'in_progress' ? undefined : s;
  }, 100);
  const converged = ended.ok && st.status === 'done';
  const doneAt = converged
    ? await until('VM_migration_status done', 5_000, () => src.migrationEnds?.find((e) => e.vmId === vmId && e.status === 'done' && e.at >= t0)?.at).catch(() => null)
    : null;
  if (converged) await c.call('VM.destroy', { vmID: vmId }, { timeoutMs: 30_000 }); // the engine's part: forget the Down VM
  return {
    converged, totalMs: converged ? ended.end - t0 : null, downtimeMs: st.downtime ?? null, agentTotalMs: st.totalMs ?? null,
    doneEventMs: doneAt === null ? null : doneAt - t0,
    agentPhasesMs: converged ? await agentPhases(src.agent, vmId, fromLine) : null,
    error: converged ? null : `${st.error?.step ?? '?'}: ${st.error?.message ?? 'the VM is Up on the source again'}`,
  };
}

async function startOurs(side: Side, vmId: string, spec: VmSpecParam): Promise<void> {
  await side.client!.call('VM.create', { vmID: vmId, spec });
  await side.watch!.wait(vmId, 'Up', 60_000);
}

async function startAgent(h: LabHost): Promise<LabAgent> {
  await h.exec(['mkdir', '-p', SERIAL_DIR]);
  const config = await testConfig({
    'rpc.host': '0.0.0.0', 'rpc.port': RPC_PORT, 'virt.domainType': 'qemu',
    'migration.libvirtTransport': TRANSPORT, 'migration.peerTlsServername': 'localhost',
    // Production intervals otherwise: no 1 s sampling (the test default) competing with the migration.
    'stats.vmIntervalMs': 15_000, 'stats.hostIntervalMs': 15_000,
  });
  return spawnLabAgent(h, config);
}

/** The API client to a lab agent; a loaded machine can take its first TLS handshake past the client's 10 s, so up to 3 tries. */
async function connectAgent(a: LabAgent): Promise<HostvisorClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectLabClient(a);
    } catch (e) {
      if (attempt >= 3) throw e;
      log(`connecting to the agent on ${a.host.name} failed (${String(e)}); retrying`);
    }
  }
}

interface RoundRow { round: number; method: Method; from: string; to: string; m: Migration }

async function main(): Promise<number> {
  const runStart = performance.now();
  const load1Start = loadavg()[0] ?? 0;
  const agents: LabAgent[] = [];
  const clients: HostvisorClient[] = [];
  const ourId = randomUUID();
  const rows: RoundRow[] = [];
  let sides: Side[] = [];
  let virshStartupMs: number | null = null;
  let hosts: LabHost[] = [];
  const dirty: Record<Method, number | null> = { ours: null, bare: null };
  try {
    log('lab: up 2 hosts (waits while another process owns the lab)');
    hosts = await labUp(2);
    for (const h of hosts) await removeDomains(h, Object.values(NAMES)); // leftovers of an earlier run
    const started = await Promise.all(hosts.map(startAgent));
    agents.push(...started);
    sides = await Promise.all(started.map(async (a) => {
      const client = await connectAgent(a);
      clients.push(client);
      const migrationEnds: NonNullable<Side['migrationEnds']> = [];
      client.on('VM_migration_status', (vmId, body) => { if (body.status !== 'in_progress') migrationEnds.push({ vmId, status: body.status, at: performance.now() }); });
      return { host: a.host, agent: a, client, watch: new StatusWatch(client), migrationEnds };
    }));
    const [sA] = sides as [Side, Side];
    log(`agents up on ${hosts.map((h) => h.address).join(', ')}; starting both guests on ${sA.host.name}`);
    const oursSpec = guestSpec(NAMES.ours);
    const bareSpec = guestSpec(NAMES.bare);
    const bareXml = specToDomainXml(randomUUID(), bareSpec, 'qemu', emptyMetadata()).replace(/<metadata>[\s\S]*?<\/metadata>/, '');
    await Promise.all([startOurs(sA, ourId, oursSpec), bareDefineAndStart(sA.host, NAMES.bare, bareXml)]);
    await Promise.all(Object.values(NAMES).map((n) => waitForSerialMarker(serialFile(sA.host, n), /^LAB-DIRTY mib=/, BOOT_TIMEOUT_MS)));
    virshStartupMs = await bareVirshStartupMs(sA.host);
    log(`guests dirtying ${DIRTY_MIBS} MiB/s; virsh startup in a lab host ~${fmt(virshStartupMs)} ms`);

    const where: Record<Method, number> = { ours: 0, bare: 0 };
    const migrate = async (round: number, method: Method): Promise<void> => {
      checkAborted();
      await pause(SETTLE_MS);
      const src = sides[where[method]]!;
      const dst = sides[1 - where[method]]!;
      const m = method === 'ours'
        ? await oursMigrate(src, dst, ourId)
        : await bareMigrate(src, dst, NAMES.bare, { bandwidthMiBs: BANDWIDTH_MIBS, transport: TRANSPORT, timeoutS: TIMEOUT_S });
      if (m.converged) where[method] = 1 - where[method];
      rows.push({ round, method, from: src.host.name, to: dst.host.name, m });
      log(`round ${round < 0 ? 'warm-up' : round} ${method} ${src.host.name} -> ${dst.host.name}: ` +
        (m.converged ? `${fmt(m.totalMs)} ms, downtime ${fmt(m.downtimeMs, 0)} ms` : `NOT converged (${m.error})`));
    };
    for (let r = -WARMUP_ROUNDS; r < ROUNDS; r++) {
      await migrate(r, 'ours');
      await migrate(r, 'bare');
    }
    for (const method of ['ours', 'bare'] as Method[]) dirty[method] = dirtyRate(hosts, NAMES[method]);
  } finally {
    for (const s of sides) await bounded('VM.destroy', s.client!.call('VM.destroy', { vmID: ourId }, { timeoutMs: 30_000 }).catch(() => {}), 35_000);
    for (const h of hosts) await bounded('virsh cleanup', removeDomains(h, Object.values(NAMES)), 60_000);
    for (const c of clients) await bounded('client close', c.close(), 10_000);
    for (const a of agents) await bounded('agent stop', a.stop(), 30_000);
    log('lab: down');
    await bounded('labDown', labDown(), 180_000);
  }
  return report(rows, dirty, virshStartupMs, load1Start, runStart);
}

function report(rows: RoundRow[], dirty: Record<Method, number | null>, virshStartupMs: number | null, load1Start: number, runStart: number): number {
  const counted = rows.filter((r) => r.round >= 0);
  const of = (method: Method): Migration[] => counted.filter((r) => r.method === method).map((r) => r.m);
  const nums = (xs: Array<number | null>): number[] => xs.filter((x): x is number => x !== null);
  const p50 = (xs: Array<number | null>): number | null => { const m = median(nums(xs)); return m === null ? null : round(m); };
  // Paired by round: both methods migrate the same direction back to back, so the per-round ratio cancels drifting load.
  const pairRatios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const o = counted.find((x) => x.round === r && x.method === 'ours')?.m.totalMs ?? null;
    const b = counted.find((x) => x.round === r && x.method === 'bare')?.m.totalMs ?? null;
    if (o !== null && b !== null && b > 0) pairRatios.push(o / b);
  }
  const table: string[][] = [['round', 'method', 'from -> to', 'total ms', 'downtime ms', 'done event ms', "agent's totalMs", 'converged']];
  for (const r of rows) {
    table.push([r.round < 0 ? 'warm-up' : String(r.round), r.method, `${r.from} -> ${r.to}`, fmt(r.m.totalMs), fmt(r.m.downtimeMs, 0),
      fmt(r.m.doneEventMs ?? null), fmt(r.m.agentTotalMs ?? null, 0), r.m.converged ? 'yes' : `no: ${r.m.error}`]);
  }
  printTable(table);
  const ours = of('ours');
  const bare = of('bare');
  const share = (ms: Migration[]): number | null => (ms.length ? round(ms.filter((m) => m.converged).length / ms.length, 2) : null);
  const totalRatio = median(pairRatios);
  const json = {
    bench: 'migration',
    total_ratio: totalRatio === null ? null : round(totalRatio, 2),
    goal_total_ratio_max: 1.1,
    downtime_ms_p50: { ours: p50(ours.map((m) => m.downtimeMs)), bare: p50(bare.map((m) => m.downtimeMs)) },
    converged: { ours: share(ours), bare: share(bare) },
    dirty_mib_s: { target: DIRTY_MIBS, ours: dirty.ours, bare: dirty.bare },
    total_ms_p50: { ours: p50(ours.map((m) => m.totalMs)), bare: p50(bare.map((m) => m.totalMs)), ours_to_done_event: p50(ours.map((m) => m.doneEventMs ?? null)) },
    total_ratio_of_medians: (() => { const o = median(nums(ours.map((m) => m.totalMs))); const b = median(nums(bare.map((m) => m.totalMs))); return o !== null && b ? round(o / b, 2) : null; })(),
    round_ratios: pairRatios.map((x) => round(x, 2)),
    total_ms: { ours: ours.map((m) => (m.totalMs === null ? null : round(m.totalMs))), bare: bare.map((m) => (m.totalMs === null ? null : round(m.totalMs))) },
    downtime_ms: { ours: ours.map((m) => m.downtimeMs), bare: bare.map((m) => m.downtimeMs) },
    agent_total_ms_p50: p50(ours.map((m) => m.agentTotalMs ?? null)),
    agent_phases_ms_p50: Object.fromEntries(PHASES.map((p) => [p, p50(ours.map((m) => m.agentPhasesMs?.[p] ?? null))])),
    errors: counted.filter((r) => !r.m.converged).map((r) => `round ${r.round} ${r.method}: ${r.m.error}`),
    rounds: ROUNDS,
    warmup_rounds: WARMUP_ROUNDS,
    transport: TRANSPORT,
    bandwidth_mib_s: BANDWIDTH_MIBS,
    flags: 'LIVE|PEER2PEER|PERSIST_DEST',
    guest: '128 MiB, 1 vCPU, TCG; 32 MiB region rewritten with random bytes',
    virsh_startup_ms: virshStartupMs === null ? null : round(virshStartupMs),
    timeout_s: TIMEOUT_S,
    ...runFacts(load1Start, runStart),
  };
  console.log(`ours: VM.migrate over the API -> Up on the destination and Down on the source; bare: virsh migrate --live --p2p --persistent in the source host, spawn -> exit; ` +
    `${ROUNDS} rounds (+${WARMUP_ROUNDS} warm-up), ${BANDWIDTH_MIBS} MiB/s, qemu+${TRANSPORT}; load ${json.loadavg_1m_start} -> ${json.loadavg_1m_end}, total ${json.total_s} s`);
  console.log(JSON.stringify(json));
  return ours.length === ROUNDS && bare.length === ROUNDS ? 0 : 1;
}

runBench(main);
