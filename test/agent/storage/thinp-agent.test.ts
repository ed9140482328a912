// Thin provisioning through the agent's API on one host that is also the SPM:
// a block domain on a loop PV, a thin qcow2 volume that starts at 256 MiB,
// and a real guest writing 2 GiB at full speed. Every extension goes from the
// drive monitor through the mailbox on the master domain to the SPM side
// (lvextend), and back. The two-host version (SPM on another host) is
// listed as not done in the README.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { createLogger } from '../../../agent/log.js';
import { ensureSanlockDaemon, sanlockUnavailable } from './sanlock-daemon.js';
import { storageLab } from './storage-lab.js';
import { auditExtensions, describeUnmatched } from './extension-audit.js';

const MiB = 1024 * 1024;

const why = await sanlockUnavailable();

t.test('a thin block volume grows ahead of a guest writing 2 GiB: 0 pauses, every extension through the mailbox to the SPM', { skip: why ?? false }, async (t) => {
  const daemon = await ensureSanlockDaemon();
  t.teardown(async () => { try { await daemon.stop(); } catch (e) { process.stderr.write(`sanlock daemon stop: ${String(e)}\n`); } });
  const lab = await storageLab('thinp-agent');
  t.teardown(async () => { try { await lab.cleanup(); } catch (e) { process.stderr.write(`lab cleanup: ${String(e)}\n`); } });
  const pv = await lab.makePv(8);
  const s = lab.settings();
  lab.driver(); // so cleanup also detaches the loop devices the agent attached for its LVs
  const lines: string[] = [];
  const log = createLogger({ level: process.env.HV_TEST_LOG ? 'debug' : 'info', sink: (l) => { lines.push(l); if (process.env.HV_TEST_LOG) process.stderr.write(l + '\n'); } });
  const { config, stop } = await startAgent({
    'storage.activation': 'loop', 'storage.loopDataDir': s.loopDataDir, 'storage.loopLinkDir': s.loopLinkDir,
    'storage.extentSizeMiB': 4, 'storage.thinInitialSizeMiB': 256, 'storage.sanlockIoTimeoutSec': 1,
    // 1 GiB chunks at 25 %: an extension is asked with 768 MiB still free. The guest writes at up to
    // ~360 MiB/s on an idle machine; with 512 MiB chunks (384 MiB free, about 1 s) it paused once.
    'thinp.chunkMiB': 1024, 'thinp.percent': 25, 'thinp.pollMs': 1000, 'thinp.retryAfterMs': 2000,
  }, log);
  const client = await connectClient(config);
  const watch = new StatusWatch(client);
  const [sd, sp, img, vol] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  let destroyed = false;
  const g = tinyGuest('hv-it-thinp', { cmdline: ['lab.delay=1', 'lab.dd=2048', 'lab.end=wait'], disks: [{ name: 'vda', storage: { poolID: sp, domainID: sd, imageID: img, volumeID: vol }, type: 'block', format: 'qcow2' }] });
  t.teardown(async () => { try {
    const step = async (what: string, p: Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([p.then(() => 'ok', (e: unknown) => `failed: ${String(e)}`), new Promise((res) => { timer = setTimeout(() => res('timed out'), 30_000); })]);
      clearTimeout(timer);
      if (r !== 'ok') process.stderr.write(`teardown ${what}: ${String(r)}\n`);
    };
    if (watch.statuses(g.vmID).length && !destroyed) await step('VM.destroy', client.call('VM.destroy', { vmID: g.vmID }));
    await step('pool disconnect', client.call('StoragePool.disconnect', { storagepoolID: sp }));
    await step('client close', client.close());
    await step('agent stop', stop());
  } catch (e) { process.stderr.write(`teardown: ${String(e)}\n`); } });

  await client.call('StorageDomain.create', { storagedomainID: sd, spec: { type: 'block', devices: [pv] } });
  await client.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: sd, domains: { [sd]: { type: 'block', devices: [pv] } } });
  const { spmLver } = await client.call('StoragePool.spmStart', { storagepoolID: sp });
  t.ok(spmLver >= 1, `SPM with lver ${spmLver}`);
  t.equal((await client.call('StoragePool.getSpmStatus', { storagepoolID: sp })).spmStatus, 'SPM');
  const v = await client.runSpmTask('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol, size: 4096 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: 256 * MiB });
  t.equal(v.apparentsize, 256 * MiB, 'the thin volume starts at 256 MiB');
  t.equal(v.capacity, 4096 * MiB, 'with a 4 GiB virtual size');

  const t0 = performance.now();
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 60_000);
  const done = await waitForSerialMarker(g.serial, 'LAB-DD-DONE', 240_000);
  const secs = (performance.now() - t0) / 1000;
  t.match(done.line, /rc=0/, `the guest wrote 2 GiB (${done.line.match(/secs=\S+/)?.[0] ?? ''})`);
  const pauses = watch.statuses(g.vmID).filter((st) => st === 'Paused').length;
  t.comment(`pauses: ${pauses}; run ${secs.toFixed(1)} s`);
  t.equal(pauses, 0, 'the VM never paused');

  const after = await client.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol });
  t.ok(after.apparentsize >= 2048 * MiB, `the LV grew to ${after.apparentsize / MiB} MiB, covering the data`);
  const records = (msg: string): Array<Record<string, unknown>> =>
    lines.filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`)).map((l) => JSON.parse(l) as Record<string, unknown>);
  const extended = records('drive extended').filter((r) => r['volume'] === vol);
  const served = records('extend request served').filter((r) => r['volumeId'] === vol);
  t.ok(extended.length >= 3, `${extended.length} extensions`);
  // Each extension on its own: its request id names a request the SPM side served ok for this host, volume and size.
  const audit = auditExtensions(extended, served, 1);
  t.equal(audit.unmatched.length, 0, `every extension was served by the SPM through the mailbox: ${audit.matched.length} of ${extended.length} matched by request id${audit.unmatched.length ? `; unmatched: ${describeUnmatched(audit)}` : ''}`);
  t.comment(`extension phases: ${extended.slice(0, 3).map((r) => JSON.stringify(r['phasesMs'])).join(' ')}`);

  await client.call('VM.destroy', { vmID: g.vmID });
  destroyed = true;
  const prepared = await client.call('Image.prepare', { storagedomainID: sd, imageID: img, volumeID: vol });
  const check = execFileSync('qemu-img', ['check', prepared.path], { encoding: 'utf8', timeout: 120_000 });
  t.match(check, /No errors were found/, 'qemu-img check is clean');
  await client.call('Image.teardown', { storagedomainID: sd, imageID: img });
});
