// Benchmark: live snapshot + live merge through the agent, while the guest writes at full rate,
// against the same two steps done with bare libvirt calls in the same run.
//
//   npm run bench:snapshot   (= node --expose-gc dist/bench/snapshot.js; as root, after test/lab/setup.sh)
//
// One agent (child process) on this host, the SPM of a block domain on one loop PV (the
// snapshot tests' lab: sanlock daemon, loop activation). The tiny guest writes a 16 MiB
// buffer over and over (O_DIRECT) across the first REGION_MIB of its thin qcow2 disk.
// ours: the base holds REGION_MIB of data written on the host beforehand (a disk with data, as
//   in vdsm#134), and the guest starts writing only once the first snapshot is taken (a GO in a
//   small mailbox disk), so the base's size comes from the merges, not from the thin monitor's
//   sizing of it as a leaf. ROUNDS times: Volume.create of a new leaf (srcVolUUID = the base),
//   VM.snapshot onto it, WRITE_SEC of writes into the leaf, VM.merge of the leaf (active layer)
//   into the base until VM.getJobs says done, Volume.delete of the removed leaf.
// bare (the baseline), ROUNDS times, on a second guest libvirt runs without the agent (same
//   domain XML builder, same workload, same LVs: volumes made and prepared by the agent, big
//   enough that no extension is needed): snapshotCreateXML with the agent's flags
//   (DISK_ONLY|REUSE_EXT|NO_METADATA|ATOMIC, no freeze), the same writes, blockCommit ACTIVE
//   polled until caught up, then blockJobAbort PIVOT.
// Pauses: the agent's VM_status Paused events, and libvirt SUSPENDED lifecycle events seen by
// a connection of this process, over the whole run. Ends with ONE line of JSON.
//
// Env knobs: BENCH_ROUNDS (5), BENCH_WRITE_SEC (4), BENCH_CHUNK_MIB (256).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadavg } from 'node:os';
import { type Connection, type Domain, blockJobAbort, blockJobInfo, enums, native, toNumber } from '../agent/libvirt/index.js';
import { specToDomainXml } from '../agent/vm/domain-xml.js';
import { emptyMetadata } from '../agent/vm/metadata.js';
import { DISK_ONLY_FLAGS } from '../agent/vm/verbs/snapshot.js';
import type { HostvisorClient } from '../api/client/client.js';
import { connectClient, StatusWatch, tinyGuest } from '../test/agent/harness.js';
import { LAB_DIR, waitForSerialMarker } from '../test/lab/guest.js';
import { labShWord } from '../test/lab/workloads.js';
import { ensureSanlockDaemon, sanlockUnavailable } from '../test/agent/storage/sanlock-daemon.js';
import { storageLab } from '../test/agent/storage/storage-lab.js';
import {
  NAME_PREFIX, type BenchAgent, deadline, destroyBenchGuests, destroyLeftGuests, dumpAgent, envInt, fmt, log, median, openWithRetry,
  pause, printTable, round, runBench, runFacts, startAgentChild, stopAgentChild,
} from './bench-util.js';

const ROUNDS = envInt('BENCH_ROUNDS', 5, 1, 20);
const WRITE_SEC = envInt('BENCH_WRITE_SEC', 4, 1, 60);
const CHUNK_MIB = envInt('BENCH_CHUNK_MIB', 256, 64, 2048);
const REGION_MIB = 192;
const MiB = 1024 * 1024;
const execFileP = promisify(execFile);
const TOTAL_TIMEOUT_MS = 9 * 60_000;
/** Only this bench's guests are cleaned up: other benches may run meanwhile. */
const GUEST_PREFIX = `${NAME_PREFIX}snap-`;

/** Full-rate writer: one 16 MiB random buffer written O_DIRECT, round and round over REGION_MIB; a line per write. */
const writer = (waitForGo: boolean): string => `head -c ${16 * MiB} /dev/urandom > /tmp/w
${waitForGo ? `echo LAB-WRITER-READY
until [ "$(dd if=/dev/vdb bs=512 count=1 iflag=direct 2>/dev/null | head -c 2)" = GO ]; do sleep 0.2; done` : ''}
echo LAB-WRITER-START
n=0
while [ $n -lt 1000000 ]; do
  dd if=/tmp/w of=/dev/vda bs=1M count=16 seek=$(( (n % ${REGION_MIB / 16}) * 16 )) oflag=direct conv=notrunc 2>/dev/null || echo LAB-W-FAIL
  n=$((n+1)); echo "LAB-W $n"
done`;
const CMDLINE = ['lab.end=wait', labShWord(writer(false))];
const CMDLINE_GO = ['lab.end=wait', labShWord(writer(true))];

interface Round { snapshotMs: number; freezeMs: number; callMs: number; frozen: boolean; mergeS: number; overMeasureMiB: number | null; baseBeforeMiB: number; baseAfterMiB: number }

/** Highest LAB-W count in the serial log so far (the writes done). */
async function writes(serial: string): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const txt = await readFile(serial, 'latin1').catch(() => '');
  let n = 0;
  for (const m of txt.matchAll(/LAB-W (\d+)/g)) n = Math.max(n, Number(m[1]));
  return n;
}

/** Writes per second during `sec`, in MiB/s. */
async function writeRate(serial: string, sec: number): Promise<number> {
  const a = await writes(serial);
  await pause(sec * 1000);
  return ((await writes(serial)) - a) * 16 / sec;
}

interface Ctx { client: HostvisorClient; sd: string; sp: string }

async function newVolume(c: Ctx, img: string, o: { parent?: string; initialMiB: number }): Promise<string> {
  const id = randomUUID();
  await c.client.runSpmTask('Volume.create', {
    storagedomainID: c.sd, imageID: img, volumeID: id, size: 4096 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: o.initialMiB * MiB,
    ...(o.parent ? { srcVolUUID: o.parent } : {}),
  });
  return id;
}

/** REGION_MIB of a byte pattern written into a volume on the host (qemu-io, flushed), so it holds data before any guest runs. */
async function hostFill(c: Ctx, img: string, vol: string): Promise<void> {
  const { path } = await c.client.call('Image.prepare', { storagedomainID: c.sd, imageID: img, volumeID: vol });
  await execFileP('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a 0 ${REGION_MIB}M`, path], { timeout: 120_000 });
}

async function oursRounds(c: Ctx, vmID: string, img: string, base: string, serial: string, rates: number[], afterFirstSnapshot: () => Promise<void>): Promise<Round[]> {
  const out: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const leaf = await newVolume(c, img, { parent: base, initialMiB: 256 });
    const t0 = performance.now();
    const s = await c.client.call('VM.snapshot', { vmID, snapDrives: [{ domainID: c.sd, imageID: img, volumeID: leaf, baseVolumeID: base }] });
    const callMs = performance.now() - t0;
    if (r === 0) await afterFirstSnapshot();
    rates.push(await writeRate(serial, WRITE_SEC));
    const jobUUID = randomUUID();
    // The base's size before the merge: what the thin monitor made it while it was the leaf (the merge only adds to it).
    const baseBefore = (await c.client.call('Volume.getInfo', { storagedomainID: c.sd, imageID: img, volumeID: base })).apparentsize;
    const t1 = performance.now();
    await c.client.call('VM.merge', { vmID, drive: { domainID: c.sd, imageID: img, volumeID: leaf }, baseVolUUID: base, topVolUUID: leaf, jobUUID });
    let job: Awaited<ReturnType<typeof getJob>>;
    for (;;) {
      job = await getJob(c.client, vmID, jobUUID);
      if (job && (job.state === 'done' || job.state === 'failed')) break;
      if (performance.now() - t1 > 180_000) throw new Error(`merge ${jobUUID} not done in 180 s (state ${job?.state})`);
      await pause(100);
    }
    const mergeS = (performance.now() - t1) / 1000;
    if (job.state !== 'done') throw new Error(`merge failed: ${JSON.stringify(job.error)}`);
    const baseSize = (await c.client.call('Volume.getInfo', { storagedomainID: c.sd, imageID: img, volumeID: base })).apparentsize;
    const overMeasureMiB = job.measuredBytes === undefined ? null : (baseSize - job.measuredBytes) / MiB;
    await c.client.runSpmTask('Volume.delete', { storagedomainID: c.sd, imageID: img, volumeID: leaf });
    const x: Round = { snapshotMs: s.snapshotMs, freezeMs: s.freezeMs, callMs, frozen: s.frozen, mergeS, overMeasureMiB, baseBeforeMiB: baseBefore / MiB, baseAfterMiB: baseSize / MiB };
    log(`ours round ${r}: snapshot ${round(s.snapshotMs)} ms (freeze ${round(s.freezeMs)} ms, frozen ${s.frozen}, call ${round(callMs)} ms), `
      + `merge ${round(mergeS, 2)} s, base ${baseBefore / MiB} -> ${baseSize / MiB} MiB, measure ${fmt((job.measuredBytes ?? NaN) / MiB)} MiB, extended to ${job.extendedToMiB} MiB`);
    out.push(x);
  }
  return out;
}

async function getJob(client: HostvisorClient, vmID: string, id: string) {
  return (await client.call('VM.getJobs', { vmID })).jobs.find((j) => j.id === id);
}

/** Active commit of vda with bare libvirt: started, polled until caught up (cur == end), pivoted. */
async function bareMerge(dom: Domain): Promise<void> {
  await dom.conn.run('domainBlockCommit', () => native.domainBlockCommit(dom.h(), 'vda', null, null, 0, enums.DomainBlockCommitFlags.ACTIVE));
  const t0 = performance.now();
  for (;;) {
    const j = await blockJobInfo(dom, 'vda');
    if (j && toNumber(j.end) > 0 && toNumber(j.cur) === toNumber(j.end)) break;
    if (performance.now() - t0 > 180_000) throw new Error('bare commit did not catch up in 180 s');
    await pause(100);
  }
  await blockJobAbort(dom, 'vda', { pivot: true, timeoutMs: 60_000 });
}

async function bareRounds(c: Ctx, conn: Connection, rates: number[]): Promise<Array<{ snapshotMs: number; mergeS: number }>> {
  const img = randomUUID();
  const base = await newVolume(c, img, { initialMiB: 1024 });
  const basePath = (await c.client.call('Image.prepare', { storagedomainID: c.sd, imageID: img, volumeID: base })).path;
  const g = tinyGuest(`${GUEST_PREFIX}bare`, { cmdline: CMDLINE, disks: [{ name: 'vda', path: basePath, type: 'block', format: 'qcow2' }] });
  const meta = emptyMetadata();
  meta.startTime = Date.now();
  meta.launchPaused = false;
  const dom = await conn.createXML(specToDomainXml(g.vmID, g.spec, 'qemu', meta), 0);
  const out: Array<{ snapshotMs: number; mergeS: number }> = [];
  try {
    await waitForSerialMarker(g.serial, 'LAB-WRITER-START', 120_000);
    await pause(WRITE_SEC * 1000);
    for (let r = 0; r < ROUNDS; r++) {
      const leaf = await newVolume(c, img, { parent: base, initialMiB: 1024 });
      const leafPath = (await c.client.call('Image.prepare', { storagedomainID: c.sd, imageID: img, volumeID: leaf })).path;
      const xml = `<domainsnapshot><name>bench-${r}</name><memory snapshot='no'/><disks><disk name='vda' snapshot='external' type='block'>`
        + `<source dev='${leafPath}'/><driver type='qcow2'/></disk></disks></domainsnapshot>`;
      const t0 = performance.now();
      await dom.snapshotCreateXML(xml, { flags: DISK_ONLY_FLAGS, timeoutMs: 60_000 });
      const snapshotMs = performance.now() - t0;
      rates.push(await writeRate(g.serial, WRITE_SEC));
      const t1 = performance.now();
      await bareMerge(dom);
      const mergeS = (performance.now() - t1) / 1000;
      await c.client.runSpmTask('Volume.delete', { storagedomainID: c.sd, imageID: img, volumeID: leaf })
        .catch((e: unknown) => log(`bare round ${r}: Volume.delete of the leaf: ${String(e)} (left to the lab cleanup)`));
      log(`bare round ${r}: snapshotCreateXML ${round(snapshotMs)} ms, commit+pivot ${round(mergeS, 2)} s`);
      out.push({ snapshotMs, mergeS });
    }
  } finally {
    await dom.destroy().catch((e: unknown) => log(`destroy bare guest: ${String(e)}`));
  }
  return out;
}

/** The agent's JSON log records with this message. */
function records(logs: readonly string[], msg: string): Array<Record<string, unknown>> {
  const key = `"msg":${JSON.stringify(msg)}`;
  return logs.filter((l) => l.includes(key)).map((l) => JSON.parse(l) as Record<string, unknown>);
}
const SNAPSHOT_PHASES = ['prepare', 'metadata', 'freeze', 'snapshot', 'thaw', 'settle'] as const;
const MERGE_PHASES = ['extend', 'commit', 'pivot', 'cleanup'] as const;

/** From the agent's log: p50 of each phase of VM.snapshot ("snapshot taken"), the merge's measure and headroom ("merge base extended to its measure"), and the base's extensions while commits ran. */
function agentFigures(logs: readonly string[]): Record<string, number | null> {
  const taken = records(logs, 'snapshot taken').map((r) => (r['phasesMs'] ?? {}) as Record<string, number>);
  const measured = records(logs, 'merge base extended to its measure');
  const mergePhases = records(logs, 'merge phases').map((r) => (r['phasesMs'] ?? {}) as Record<string, number>);
  const col = (xs: Array<Record<string, unknown>>, k: string, scale = 1): number[] => xs.flatMap((x) => (typeof x[k] === 'number' ? [(x[k] as number) / scale] : []));
  return {
    ...Object.fromEntries(SNAPSHOT_PHASES.map((k) => [`agent_snapshot_${k}_ms_p50`, p50(col(taken, k))])),
    measure_qemu_img_mib_p50: p50(col(measured, 'measuredBytes', MiB)),
    measure_headroom_mib_p50: p50(col(measured, 'headroomBytes', MiB)),
    base_extensions_during_commit: records(logs, 'merge base extended during the commit').length,
    ...Object.fromEntries(MERGE_PHASES.map((k) => [`agent_merge_${k}_ms_p50`, p50(col(mergePhases, k))])),
  };
}

const p50 = (xs: number[], digits = 1): number | null => { const m = median(xs); return m === null ? null : round(m, digits); };

async function main(): Promise<number> {
  const runStart = performance.now();
  const load1 = loadavg()[0] ?? 0;
  const why = await sanlockUnavailable();
  if (why) throw new Error(`bench:snapshot needs sanlock: ${why}`);
  await destroyBenchGuests(GUEST_PREFIX);
  const daemon = await ensureSanlockDaemon();
  const lab = await storageLab('bench-snapshot');
  let agent: BenchAgent | undefined;
  let client: HostvisorClient | undefined;
  let conn: Connection | undefined;
  const c: Partial<Ctx> = {};
  try {
    const pv = await lab.makePv(8);
    lab.driver();
    const { loopDataDir, loopLinkDir } = lab.settings();
    agent = await startAgentChild({
      'virt.domainType': 'qemu', 'stats.vmIntervalMs': 15_000, 'stats.hostIntervalMs': 15_000,
      'storage.activation': 'loop', 'storage.loopDataDir': loopDataDir, 'storage.loopLinkDir': loopLinkDir,
      'storage.extentSizeMiB': 4, 'storage.thinInitialSizeMiB': 256, 'storage.sanlockIoTimeoutSec': 1, 'thinp.pollMs': 1000,
      'thinp.chunkMiB': CHUNK_MIB, 'thinp.percent': 25, 'merge.pollMs': 250, 'vm.snapshotFreezeTimeoutMs': 5000,
    });
    client = await connectClient(agent.config);
    const watch = new StatusWatch(client);
    conn = await openWithRetry(15_000);
    const suspended = new Map<string, number>();
    await conn.subscribe('lifecycle', (ev) => {
      if (ev.event === enums.DomainEventType.SUSPENDED) suspended.set(ev.domain.uuid, (suspended.get(ev.domain.uuid) ?? 0) + 1);
    });
    const ctx: Ctx = { client, sd: randomUUID(), sp: randomUUID() };
    Object.assign(c, ctx);
    await client.call('StorageDomain.create', { storagedomainID: ctx.sd, spec: { type: 'block', devices: [pv] } });
    await client.call('StoragePool.connect', { storagepoolID: ctx.sp, hostID: 1, masterSdUUID: ctx.sd, domains: { [ctx.sd]: { type: 'block', devices: [pv] } } });
    await client.call('StoragePool.spmStart', { storagepoolID: ctx.sp });
    log(`lab, agent and pool up in ${round((performance.now() - runStart) / 1000)} s`);

    // --- ours ---
    const img = randomUUID();
    const base = await newVolume(ctx, img, { initialMiB: 256 });
    await hostFill(ctx, img, base);
    const mbox = join(LAB_DIR, 'run', `${GUEST_PREFIX}ours.mbox`);
    writeFileSync(mbox, Buffer.alloc(MiB));
    chmodSync(mbox, 0o666);
    const g = tinyGuest(`${GUEST_PREFIX}ours`, {
      cmdline: CMDLINE_GO,
      disks: [{ name: 'vda', storage: { poolID: ctx.sp, domainID: ctx.sd, imageID: img, volumeID: base }, type: 'block', format: 'qcow2' }, { name: 'vdb', path: mbox, type: 'file', format: 'raw' }],
    });
    await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
    await watch.wait(g.vmID, 'Up', 90_000);
    await waitForSerialMarker(g.serial, 'LAB-WRITER-READY', 120_000);
    const oursRates: number[] = [];
    const go = async (): Promise<void> => {
      writeFileSync(mbox, Buffer.concat([Buffer.from('GO'), Buffer.alloc(MiB - 2)]));
      await waitForSerialMarker(g.serial, 'LAB-WRITER-START', 60_000);
    };
    const ours = await oursRounds(ctx, g.vmID, img, base, g.serial, oursRates, go);
    const oursPaused = watch.statuses(g.vmID).filter((s) => s === 'Paused').length;
    const oursSuspended = suspended.get(g.vmID) ?? 0;
    await client.call('VM.destroy', { vmID: g.vmID });

    // --- bare ---
    const bareRates: number[] = [];
    const bare = await bareRounds(ctx, conn, bareRates);
    const bareSuspended = [...suspended.entries()].filter(([id]) => id !== g.vmID).reduce((a, [, n]) => a + n, 0);

    printTable([
      ['round', 'ours snapshot ms', 'freeze ms', 'VM.snapshot call ms', 'ours merge s', 'base - measure MiB', 'bare snapshot ms', 'bare merge s'],
      ...ours.map((x, i) => [String(i), fmt(x.snapshotMs), fmt(x.freezeMs), fmt(x.callMs), fmt(x.mergeS, 2), fmt(x.overMeasureMiB), fmt(bare[i]?.snapshotMs), fmt(bare[i]?.mergeS, 2)]),
    ]);
    const over = ours.flatMap((x) => (x.overMeasureMiB === null ? [] : [x.overMeasureMiB]));
    const json = {
      snapshot_ms_p50: p50(ours.map((x) => x.snapshotMs)),
      freeze_ms_p50: p50(ours.map((x) => x.freezeMs)),
      snapshot_call_ms_p50: p50(ours.map((x) => x.callMs)),
      merge_s_p50: p50(ours.map((x) => x.mergeS), 2),
      pauses: Math.max(oursPaused, oursSuspended),
      base_over_measure_mib: over.length ? round(Math.max(...over)) : null,
      base_over_measure_mib_runs: over.map((v) => round(v)),
      base_before_merge_mib_runs: ours.map((x) => x.baseBeforeMiB),
      merge_grew_base_mib_max: Math.max(...ours.map((x) => x.baseAfterMiB - x.baseBeforeMiB)),
      chunk_mib: CHUNK_MIB,
      frozen_rounds: ours.filter((x) => x.frozen).length,
      bare_snapshot_ms_p50: p50(bare.map((x) => x.snapshotMs)),
      bare_merge_s_p50: p50(bare.map((x) => x.mergeS), 2),
      bare_pauses: bareSuspended,
      pauses_agent_events: oursPaused,
      pauses_libvirt_events: oursSuspended,
      snapshot_ms_runs: ours.map((x) => round(x.snapshotMs)),
      merge_s_runs: ours.map((x) => round(x.mergeS, 2)),
      bare_snapshot_ms_runs: bare.map((x) => round(x.snapshotMs)),
      bare_merge_s_runs: bare.map((x) => round(x.mergeS, 2)),
      guest_write_mib_s_ours: p50(oursRates, 0),
      guest_write_mib_s_bare: p50(bareRates, 0),
      ...agentFigures(agent.logs),
      rounds: ROUNDS, write_sec: WRITE_SEC, region_mib: REGION_MIB,
      baseline: 'bare libvirt on a second guest (same XML builder, workload, LV storage): snapshotCreateXML same flags, no freeze; blockCommit ACTIVE polled to cur==end, then pivot',
      ...runFacts(load1, runStart),
    };
    console.log(`ours: VM.snapshot (snapshot_ms = agent's libvirt switch, freeze separate) then VM.merge to done; bare: the same libvirt calls without the agent; ${ROUNDS} rounds, guest writing at full rate`);
    console.log(JSON.stringify(json));
    return 0;
  } catch (e) {
    dumpAgent(agent);
    throw e;
  } finally {
    await destroyLeftGuests(() => destroyBenchGuests(GUEST_PREFIX), `${GUEST_PREFIX}*`);
    if (client && c.sp) await deadline(client.call('StoragePool.disconnect', { storagepoolID: c.sp }), 60_000, 'pool disconnect').catch((e: unknown) => log(String(e)));
    if (conn) await conn.close().catch(() => {});
    if (client) await deadline(client.close(), 5_000, 'client close').catch(() => {});
    if (agent) await stopAgentChild(agent);
    await lab.cleanup().catch((e: unknown) => log(`lab cleanup: ${String(e)}`));
    await daemon.stop().catch((e: unknown) => log(`sanlock stop: ${String(e)}`));
  }
}

runBench(() => deadline(main(), TOTAL_TIMEOUT_MS, 'bench:snapshot'));
