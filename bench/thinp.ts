// bench:thinp — the guest's write rate on a thin block volume (starting at
// 256 MiB, grown by the SPM through the mailbox as the guest writes) against
// the same guest on a preallocated volume, in the same run, on one host that
// is also the SPM. Prints the extension and pause counts and p50/p99 of every
// phase of the extension round trip. Last line: one JSON object.
import { randomUUID } from 'node:crypto';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../test/agent/harness.js';
import { waitForSerialMarker } from '../test/lab/guest.js';
import { createLogger } from '../agent/log.js';
import { ensureSanlockDaemon } from '../test/agent/storage/sanlock-daemon.js';
import { storageLab } from '../test/agent/storage/storage-lab.js';
import { envInt, log, quantile, round, runBench } from './bench-util.js';

const MiB = 1024 * 1024;
const WRITE_MIB = envInt('BENCH_WRITE_MIB', 2048, 256, 8192);
const ROUNDS = envInt('BENCH_ROUNDS', 2, 1, 5);

interface Run { mibPerSec: number; pauses: number; extensions: number }

async function main(): Promise<number> {
  const daemon = await ensureSanlockDaemon();
  const lab = await storageLab('bench-thinp');
  const lines: string[] = [];
  const agentLog = createLogger({ level: 'info', sink: (l) => lines.push(l) });
  const s = lab.settings();
  lab.driver(); // so cleanup also detaches the loop devices the agent attached for its LVs
  let stopAgent: (() => Promise<void>) | undefined;
  try {
    const pv = await lab.makePv(16);
    const { config, stop } = await startAgent({
      'storage.activation': 'loop', 'storage.loopDataDir': s.loopDataDir, 'storage.loopLinkDir': s.loopLinkDir,
      'storage.extentSizeMiB': 4, 'storage.thinInitialSizeMiB': 256, 'storage.sanlockIoTimeoutSec': 1,
      'thinp.chunkMiB': 512, 'thinp.percent': 25, 'thinp.pollMs': 1000,
    }, agentLog);
    stopAgent = stop;
    const client = await connectClient(config);
    const watch = new StatusWatch(client);
    const [sd, sp] = [randomUUID(), randomUUID()];
    await client.call('StorageDomain.create', { storagedomainID: sd, spec: { type: 'block', devices: [pv] } });
    await client.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: sd, domains: { [sd]: { type: 'block', devices: [pv] } } });
    await client.call('StoragePool.spmStart', { storagepoolID: sp });

    const one = async (kind: 'thin' | 'prealloc', round: number): Promise<Run> => {
      const [img, vol] = [randomUUID(), randomUUID()];
      await client.call('Volume.create', {
        storagedomainID: sd, imageID: img, volumeID: vol, size: (WRITE_MIB + 1024) * MiB, volFormat: 'COW',
        preallocate: kind === 'thin' ? 'SPARSE' : 'PREALLOCATED', ...(kind === 'thin' ? { initialSize: 256 * MiB } : {}),
      });
      const g = tinyGuest(`hv-bench-thinp-${kind}-${round}`, {
        cmdline: ['lab.delay=1', `lab.dd=${WRITE_MIB}`, 'lab.end=wait'],
        disks: [{ name: 'vda', storage: { poolID: sp, domainID: sd, imageID: img, volumeID: vol }, type: 'block', format: 'qcow2' }],
      });
      const before = lines.filter((l) => l.includes('"msg":"drive extended"')).length;
      await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
      await watch.wait(g.vmID, 'Up', 60_000);
      const done = await waitForSerialMarker(g.serial, 'LAB-DD-DONE', 300_000);
      const secs = Number(done.line.match(/secs=([\d.]+)/)?.[1] ?? NaN);
      const pauses = watch.statuses(g.vmID).filter((x) => x === 'Paused').length;
      await client.call('VM.destroy', { vmID: g.vmID });
      await client.call('Image.delete', { storagedomainID: sd, imageID: img });
      const extensions = lines.filter((l) => l.includes('"msg":"drive extended"')).length - before;
      log(`${kind} round ${round}: ${WRITE_MIB} MiB in ${secs} s (${round ? '' : ''}${(WRITE_MIB / secs).toFixed(0)} MiB/s), ${extensions} extensions, ${pauses} pauses`);
      return { mibPerSec: WRITE_MIB / secs, pauses, extensions };
    };

    const thin: Run[] = [], pre: Run[] = [];
    for (let r = 0; r < ROUNDS; r++) { // interleaved, so background load hits both alike
      pre.push(await one('prealloc', r));
      thin.push(await one('thin', r));
    }
    await client.call('StoragePool.disconnect', { storagepoolID: sp });
    await client.close();

    const phases: Record<string, number[]> = {};
    const totals: number[] = [];
    for (const l of lines.filter((x) => x.includes('"msg":"drive extended"'))) {
      const rec = JSON.parse(l) as { phasesMs: Record<string, number>; totalMs: number };
      for (const [k, v] of Object.entries(rec.phasesMs)) (phases[k] ??= []).push(v);
      totals.push(rec.totalMs);
    }
    const q = (xs: number[], p: number) => { const s2 = [...xs].sort((a, b) => a - b); return quantile(s2, p) ?? 0; };
    const mean = (xs: Run[]) => xs.reduce((a, b) => a + b.mibPerSec, 0) / xs.length;
    console.log('phase        p50 ms   p99 ms');
    for (const [k, xs] of Object.entries(phases)) console.log(`${k.padEnd(12)} ${q(xs, 0.5).toFixed(1).padStart(7)} ${q(xs, 0.99).toFixed(1).padStart(8)}`);
    console.log(`roundtrip    ${q(totals, 0.5).toFixed(1).padStart(7)} ${q(totals, 0.99).toFixed(1).padStart(8)}`);
    console.log(`write rate: thin ${mean(thin).toFixed(0)} MiB/s, preallocated ${mean(pre).toFixed(0)} MiB/s (${ROUNDS} rounds each, ${WRITE_MIB} MiB per guest)`);
    const json = {
      pauses: thin.reduce((a, b) => a + b.pauses, 0),
      extensions: thin.reduce((a, b) => a + b.extensions, 0),
      roundtrip_p50_s: round(q(totals, 0.5) / 1000, 3),
      roundtrip_p99_s: round(q(totals, 0.99) / 1000, 3),
      thin_vs_prealloc_ratio: round(mean(thin) / mean(pre), 2),
      thin_mib_s: round(mean(thin), 0), prealloc_mib_s: round(mean(pre), 0),
      phases_p50_ms: Object.fromEntries(Object.entries(phases).map(([k, xs]) => [k, round(q(xs, 0.5), 1)])),
      phases_p99_ms: Object.fromEntries(Object.entries(phases).map(([k, xs]) => [k, round(q(xs, 0.99), 1)])),
      write_mib: WRITE_MIB, rounds: ROUNDS, hosts: 1,
    };
    console.log(JSON.stringify(json));
    return 0;
  } finally {
    await stopAgent?.().catch(() => {});
    await lab.cleanup().catch(() => {});
    await daemon.stop().catch(() => {});
  }
}

runBench(main);
