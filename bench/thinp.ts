// bench:thinp — on the two-host lab (test/lab/multihost): host A's agent is the
// SPM, host B's agent runs the guest. The guest writes WRITE_MIB at full speed
// to a thin qcow2 volume that starts at 256 MiB and grows as it writes: every
// extension goes from B's drive monitor through the mailbox on the master
// domain to A (lvextend) and back. The same guest, the same sizes, on a
// preallocated volume, alternated with the thin runs in the same run. Prints
// the write rates, extension and pause counts and p50/p99 of every phase of
// the extension round trip. Last stdout line: one JSON object.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { StatusWatch, tinyGuest } from '../test/agent/harness.js';
import { waitForSerialMarker } from '../test/lab/guest.js';
import type { HostvisorClient } from '../api/client/client.js';
import type { LabAgent } from '../test/agent/storage/lab-agents.js';
import { sanlockUnavailable } from '../test/agent/storage/sanlock-daemon.js';
import { MiB, createVolume, deleteImage, logRecords, twoHostPool, type TwoHostPool } from '../test/agent/storage/two-host-pool.js';
import { auditExtensions, describeUnmatched } from '../test/agent/storage/extension-audit.js';
import { aborted, checkAborted, deadline, envInt, fmt, log, printTable, round, runBench } from './bench-util.js';
import { PHASE_ROWS, addRunSamples, summarizePhases, type PhaseSamples } from './thinp-phases.js';

const WRITE_MIB = envInt('BENCH_WRITE_MIB', 2048, 256, 8192);
const ROUNDS = envInt('BENCH_ROUNDS', 2, 1, 5);
const TIMEOUT_S = envInt('BENCH_TIMEOUT_S', 2400, 300, 7200);
const ECHO = process.env['BENCH_ECHO'] === '1';
/** If set, both agents' logs are written there at the end (agent-hvlab-h1.log: the SPM, -h2: the VM host). */
const LOG_DIR = process.env['BENCH_LOG_DIR'] || undefined;
const INITIAL_MIB = 256;
/** The setup: a 4 GiB virtual size (more when a bigger write is asked for). */
const CAPACITY_MIB = Math.max(4096, WRITE_MIB + 1024);
/** VDSM's best published figure: 50 GiB at ~1300 MiB/s, 20 extensions, no pause (shared/reference/peers.md, vdsm.md §3). */
const VDSM_ROUNDTRIP = { avg_s: 1.15, min_s: 0.77, max_s: 1.39 };

type Kind = 'thin' | 'prealloc';
interface Run {
  kind: Kind; round: number; guestSecs: number; hostSecs: number; mibPerSec: number; pauses: number;
  extensions: number; servedByA: number; servedByB: number; finalMiB: number;
  /** Extensions that no request A served ok for B (same request id, volume, at least the size) accounts for; 0 expected. */
  unmatched: number;
  /** Extensions to a size an earlier one of the run already reached (a second extension joined to the first's request). */
  repeated: number;
}

/** Rejects when the bench is aborted (SIGINT/SIGTERM), so long waits end at once. */
function abortable<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setInterval(() => { if (aborted()) reject(new Error('aborted')); }, 200);
  });
  return Promise.race([p, stop]).finally(() => clearInterval(timer));
}

interface Ctx { pool: TwoHostPool; agentA: LabAgent; agentB: LabAgent; cA: HostvisorClient; cB: HostvisorClient; watchB: StatusWatch; samples: PhaseSamples }

/** One guest on B writing WRITE_MIB to a new volume of this kind, created by A; the volume is deleted after. */
async function runOnce(c: Ctx, kind: Kind, r: number): Promise<Run> {
  checkAborted();
  const { pool, agentA, agentB, cA, cB, watchB } = c;
  const [img, vol] = [randomUUID(), randomUUID()];
  const info = await createVolume(cA, {
    storagedomainID: pool.sd, imageID: img, volumeID: vol, size: CAPACITY_MIB * MiB, volFormat: 'COW',
    preallocate: kind === 'thin' ? 'SPARSE' : 'PREALLOCATED', ...(kind === 'thin' ? { initialSize: INITIAL_MIB * MiB } : {}),
  });
  if (kind === 'thin' && info.apparentsize !== INITIAL_MIB * MiB) throw new Error(`the thin volume starts at ${info.apparentsize / MiB} MiB, not ${INITIAL_MIB}`);
  const g = tinyGuest(`hv-bench-thinp2h-${kind}-${r}`, {
    cmdline: ['lab.delay=1', `lab.dd=${WRITE_MIB}`, 'lab.end=wait'], disks: [pool.disk(img, vol)],
  });
  const rec = pool.trackVm(cB, g.vmID);
  const [aFrom, bFrom] = [agentA.logs.length, agentB.logs.length];
  try {
    await cB.call('VM.create', { vmID: g.vmID, spec: g.spec });
    await abortable(watchB.wait(g.vmID, 'Up', 60_000));
    await abortable(waitForSerialMarker(g.serial, 'LAB-DD-START', 120_000));
    const t0 = performance.now();
    const done = await abortable(waitForSerialMarker(g.serial, 'LAB-DD-DONE', 300_000));
    const hostSecs = (performance.now() - t0) / 1000;
    if (!/\brc=0\b/.test(done.line)) throw new Error(`the guest's write failed: ${done.line}`);
    const guestSecs = Number(done.line.match(/secs=([\d.]+)/)?.[1] ?? NaN);
    if (!(guestSecs > 0)) throw new Error(`no write time in: ${done.line}`);
    const pauses = watchB.statuses(g.vmID).filter((s) => s === 'Paused').length;
    await cB.call('VM.destroy', { vmID: g.vmID });
    rec.destroyed = true;
    const finalMiB = (await cA.call('Volume.getInfo', { storagedomainID: pool.sd, imageID: img, volumeID: vol })).apparentsize / MiB;

    const extended = logRecords(agentB.logs, 'drive extended', bFrom).filter((x) => x['vm'] === g.vmID);
    const ofVol = (x: Record<string, unknown>): boolean => x['volumeId'] === vol;
    const served = logRecords(agentA.logs, 'extend request served', aFrom).filter(ofVol);
    const servedOkForB = served.filter((x) => x['hostId'] === 2 && x['status'] === 'ok');
    const servedByB = logRecords(agentB.logs, 'extend request served', bFrom).filter(ofVol).length;
    // Each extension on its own: matched by its request id to a request A served ok for B (host id 2), this volume, at least its size.
    const audit = auditExtensions(extended, servedOkForB, 2);
    if (audit.unmatched.length) log(`${kind} round ${r}: ${audit.unmatched.length} extension(s) not accounted for by A's log: ${describeUnmatched(audit)}`);
    if (kind === 'thin') addRunSamples(c.samples, extended, logRecords(agentB.logs, 'extend request answered', bFrom).filter(ofVol), servedOkForB);
    const run: Run = {
      kind, round: r, guestSecs, hostSecs, mibPerSec: WRITE_MIB / guestSecs, pauses,
      extensions: extended.length, servedByA: servedOkForB.length, servedByB, finalMiB, unmatched: audit.unmatched.length,
      repeated: extended.length - new Set(extended.map((x) => x['toMiB'])).size,
    };
    log(`${kind} round ${r}: ${WRITE_MIB} MiB in ${guestSecs} s in the guest (${run.mibPerSec.toFixed(0)} MiB/s; ${hostSecs.toFixed(1)} s seen from the host), `
      + `${run.extensions} extensions (${run.repeated} to a size already reached), ${run.servedByA} served by A for host id 2, ${servedByB} by B, ${pauses} pauses, LV ${finalMiB} MiB`);
    return run;
  } finally {
    if (!rec.destroyed) await cB.call('VM.destroy', { vmID: g.vmID }).then(() => { rec.destroyed = true; }, () => {});
    await deleteImage(cA, pool.sd, img).catch((e: unknown) => log(`Image.delete ${img}: ${String(e)}`));
  }
}

async function measure(pool: TwoHostPool, loadStart: number): Promise<number> {
  const [agentA, agentB] = pool.agents as [LabAgent, LabAgent];
  const [cA, cB] = pool.clients as [HostvisorClient, HostvisorClient];
  const lver = (await cA.call('StoragePool.spmStart', { storagepoolID: pool.sp })).spmLver;
  const bStatus = (await cB.call('StoragePool.getSpmStatus', { storagepoolID: pool.sp })).spmStatus;
  if (bStatus === 'SPM') throw new Error('host B reports SPM too');
  log(`SPM: ${agentA.host.name} (host id 1, lver ${lver}); VM host: ${agentB.host.name} (host id 2, ${bStatus})`);
  const c: Ctx = { pool, agentA, agentB, cA, cB, watchB: new StatusWatch(cB), samples: {} };

  const runs: Run[] = [];
  for (let r = 0; r < ROUNDS; r++) { // alternated, so drifting background load hits both kinds alike
    const order: Kind[] = r % 2 === 0 ? ['prealloc', 'thin'] : ['thin', 'prealloc'];
    for (const kind of order) runs.push(await runOnce(c, kind, r));
  }
  const thin = runs.filter((x) => x.kind === 'thin');
  const pre = runs.filter((x) => x.kind === 'prealloc');
  const meanRate = (xs: Run[]): number => xs.reduce((a, b) => a + b.mibPerSec, 0) / xs.length;
  const sum = (xs: Run[], f: (x: Run) => number): number => xs.reduce((a, b) => a + f(b), 0);
  const ph = summarizePhases(c.samples);

  printTable([
    ['run', 'kind', 'guest s', 'MiB/s', 'host s', 'extensions', 'served by A', 'pauses', 'final LV MiB'],
    ...runs.map((x) => [String(x.round), x.kind, fmt(x.guestSecs, 2), fmt(x.mibPerSec, 0), fmt(x.hostSecs, 1), String(x.extensions), String(x.servedByA), String(x.pauses), String(x.finalMiB)]),
  ]);
  console.log('');
  printTable([
    [`${'phase'.padEnd(10)} ${'host'.padEnd(4)} what`, 'n', 'p50 ms', 'p99 ms', 'mean ms'],
    ...PHASE_ROWS.map(([k, where, what]) => [`${k.padEnd(10)} ${where.padEnd(4)} ${what}`, String(ph[k]!.n), fmt(ph[k]!.p50), fmt(ph[k]!.p99), fmt(ph[k]!.mean)]),
  ]);
  const rt = ph['roundtrip']!;
  const ratio = meanRate(thin) / meanRate(pre);
  const json = {
    pauses: sum(thin, (x) => x.pauses),
    extensions: sum(thin, (x) => x.extensions),
    roundtrip_p50_s: rt.p50 === null ? null : round(rt.p50 / 1000, 3),
    roundtrip_p99_s: rt.p99 === null ? null : round(rt.p99 / 1000, 3),
    thin_vs_prealloc_ratio: round(ratio, 2),
    thin_mib_s: round(meanRate(thin), 0),
    prealloc_mib_s: round(meanRate(pre), 0),
    thin_runs_mib_s: thin.map((x) => round(x.mibPerSec, 0)),
    prealloc_runs_mib_s: pre.map((x) => round(x.mibPerSec, 0)),
    prealloc_pauses: sum(pre, (x) => x.pauses),
    prealloc_extensions: sum(pre, (x) => x.extensions),
    thin_final_lv_mib_min: Math.min(...thin.map((x) => x.finalMiB)),
    roundtrip_mean_s: rt.mean === null ? null : round(rt.mean / 1000, 3),
    roundtrip_max_s: rt.max === null ? null : round(rt.max / 1000, 3),
    phases_p50_ms: Object.fromEntries(PHASE_ROWS.map(([k]) => [k, ph[k]!.p50])),
    phases_p99_ms: Object.fromEntries(PHASE_ROWS.map(([k]) => [k, ph[k]!.p99])),
    served_by_spm: sum(thin, (x) => x.servedByA),
    repeated_extensions: sum(thin, (x) => x.repeated),
    served_by_vm_host: sum(runs, (x) => x.servedByB),
    unmatched_extensions: sum(runs, (x) => x.unmatched),
    all_via_mailbox_to_spm: runs.every((x) => x.unmatched === 0 && x.servedByB === 0),
    vdsm_roundtrip_avg_s: VDSM_ROUNDTRIP.avg_s, vdsm_roundtrip_min_s: VDSM_ROUNDTRIP.min_s, vdsm_roundtrip_max_s: VDSM_ROUNDTRIP.max_s,
    write_mib: WRITE_MIB, initial_mib: INITIAL_MIB, capacity_mib: CAPACITY_MIB, rounds: ROUNDS, hosts: 2,
    spm_host: agentA.host.name, vm_host: agentB.host.name,
  };
  console.log('');
  console.log(`write rate (guest's dd): thin ${json.thin_mib_s} MiB/s, preallocated ${json.prealloc_mib_s} MiB/s, ratio ${json.thin_vs_prealloc_ratio} (goal >= 0.9); ${ROUNDS} rounds each, ${WRITE_MIB} MiB per guest`);
  console.log(`extensions ${json.extensions} (every one served by the SPM on A through the mailbox: ${json.all_via_mailbox_to_spm}), pauses ${json.pauses} (goal 0); `
    + `round trip p50 ${fmt(json.roundtrip_p50_s, 3)} s (goal <= 0.3), p99 ${fmt(json.roundtrip_p99_s, 3)} s (goal <= 1; with n=${rt.n} it is the maximum), mean ${fmt(json.roundtrip_mean_s, 3)} s against VDSM's ${VDSM_ROUNDTRIP.avg_s} s average`);
  console.log(JSON.stringify({ ...json, loadavg_1m_start: loadStart, loadavg_1m_end: round(loadavg()[0] ?? 0, 2), total_s: round((performance.now() - T0) / 1000, 0) }));
  return 0;
}

const T0 = performance.now();

async function main(): Promise<number> {
  const why = await sanlockUnavailable();
  if (why) throw new Error(`bench:thinp needs sanlock: ${why}`);
  const loadStart = round(loadavg()[0] ?? 0, 2);
  log(`two-host lab: ${ROUNDS} rounds, thin and preallocated alternated, ${WRITE_MIB} MiB per guest; load ${loadStart}`);
  // Setup is bounded step by step (lab lock wait, lab.sh, agents' start, calls) and undoes itself on failure.
  const pool = await twoHostPool({ name: 'bench-thinp', pvGiB: 16, echo: ECHO });
  log(`lab, agents and pool up in ${((performance.now() - T0) / 1000).toFixed(1)} s`);
  const measured = measure(pool, loadStart);
  try {
    return await deadline(abortable(measured), TIMEOUT_S * 1000, 'bench:thinp');
  } finally {
    // After an abort or timeout, let the current run's own cleanup (VM, image) finish first.
    await deadline(measured, 60_000, 'the interrupted run').catch(() => {});
    if (LOG_DIR) {
      for (const a of pool.agents) writeFileSync(join(LOG_DIR, `agent-${a.host.name}.log`), a.logs.join('\n') + '\n');
      log(`agents' logs in ${LOG_DIR}`);
    }
    const tc = performance.now();
    await pool.close();
    log(`cleanup (VMs, pool, agents, loops, lab) in ${((performance.now() - tc) / 1000).toFixed(1)} s; total ${((performance.now() - T0) / 1000).toFixed(0)} s`);
  }
}

runBench(main);
