// A thin block volume extended while a live migration copies memory (issue
// 12, must-show 5), on two lab hosts with a shared block storage domain: B is
// the SPM, the VM starts on A and writes steadily into a thin qcow2 volume
// (256 MiB to start, 2 GiB written). The migration runs at 1 MiB/s with
// memory kept dirty, so A's drive monitor extends the volume (mailbox to B,
// lvextend there) during the copy; each extension counts only once B, the
// destination, has refreshed the volume and sees the new size
// (VM.refresh_disk). Then the bandwidth is raised, the VM arrives on B with
// the extended volume, 0 pauses, and keeps writing there under B's drive
// monitor.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { StatusWatch } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { sanlockUnavailable } from '../storage/sanlock-daemon.js';
import type { LabAgent } from '../storage/lab-agents.js';
import { MiB, createVolume, logRecords, twoHostPool, waitLog } from '../storage/two-host-pool.js';
import { auditExtensions, describeUnmatched } from '../storage/extension-audit.js';
import { agentStatus, countingGuest, domStateOn, LAB_LIBVIRT_PKI, serialLogOn, until } from './migration-lab.js';

const echo = !!process.env['HV_TEST_LOG'];
const secs = (ms: number): string => (ms / 1000).toFixed(1);
const why = await sanlockUnavailable();

t.test('a thin block volume extended during a live migration is refreshed on the destination first', { skip: why ?? false }, async (t) => {
  const tUp = performance.now();
  const pool = await twoHostPool({
    name: 'thinp-mig', pvGiB: 8, echo,
    settings: {
      'migration.libvirtTransport': 'tls', 'migration.libvirtPkiPath': LAB_LIBVIRT_PKI, 'migration.peerTlsServername': 'localhost',
      'migration.monitorIntervalMs': 250, 'migration.retryIntervalMs': 1_000,
    },
  });
  t.teardown(() => pool.close());
  const { sd, sp } = pool;
  const [hA, hB] = pool.hosts as [typeof pool.hosts[0], typeof pool.hosts[0]];
  const [agentA, agentB] = pool.agents as [LabAgent, LabAgent];
  const [cA, cB] = pool.clients as [HostvisorClient, HostvisorClient];
  await cB.call('StoragePool.spmStart', { storagepoolID: sp });
  t.comment(`lab, agents, pool and SPM (B) up in ${secs(performance.now() - tUp)} s`);

  const [img, vol] = [randomUUID(), randomUUID()];
  await createVolume(cB, { storagedomainID: sd, imageID: img, volumeID: vol, size: 4096 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: 256 * MiB });
  const g = countingGuest('hv-it-mig-thin', { dirtyMiB: 8, writeMiB: 2048, disks: [pool.disk(img, vol)] });
  const recs = [pool.trackVm(cA, g.vmID), pool.trackVm(cB, g.vmID)];
  const [watchA, watchB] = [new StatusWatch(cA), new StatusWatch(cB)];
  const [aLog0, bLog0] = [agentA.logs.length, agentB.logs.length];
  await cA.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watchA.wait(g.vmID, 'Up', 60_000);
  await waitForSerialMarker(serialLogOn(hA, g.spec.name), 'LAB-WRITE-STEP 0', 120_000);

  const extendedOn = (logs: string[], from: number): Array<Record<string, unknown>> => logRecords(logs, 'drive extended', from).filter((r) => r['volume'] === vol);
  const servedBy = (logs: string[]): Array<Record<string, unknown>> => logRecords(logs, 'extend request served').filter((r) => r['volumeId'] === vol);

  const tMig = performance.now();
  await cA.call('VM.migrate', { vmID: g.vmID, params: { dst: `${hB.address}:54321`, maxBandwidth: 1 } });
  t.ok(await until(async () => (await agentStatus(cB, g.vmID)) === 'Migration Destination', 60_000), 'B prepared the VM (Migration Destination)');
  const aMig0 = agentA.logs.length;
  // Two extensions while libvirt copies memory: each logged by A with the size B saw after its refresh.
  await waitLog(agentA.logs, () => extendedOn(agentA.logs, aMig0).filter((r) => r['destinationBytes'] !== undefined).length >= 2, 300_000,
    'A extended the volume twice during the migration', aMig0);
  const during = extendedOn(agentA.logs, aMig0);
  const st = await cA.call('VM.getMigrationStatus', { vmID: g.vmID });
  t.equal(st.status, 'in_progress', `the migration is still copying (progress ${st.progress}, ${st.dataRemaining} bytes remaining, ${secs(performance.now() - tMig)} s in)`);
  t.equal(await agentStatus(cA, g.vmID), 'Migration Source', 'A: Migration Source');
  t.ok(during.length >= 2 && during.every((r) => Number(r['destinationBytes']) >= Number(r['toMiB']) * MiB),
    `each of the ${during.length} extensions during the copy waited for B to see its size: ${during.map((r) => `${String(r['toMiB'])} MiB (B saw ${Math.round(Number(r['destinationBytes']) / MiB)} MiB)`).join(', ')}`);
  const refreshedOnB = logRecords(agentB.logs, 'disk refreshed for the source of a migration', bLog0).filter((r) => r['volume'] === vol);
  t.ok(refreshedOnB.length >= during.length, `B refreshed the volume ${refreshedOnB.length} times for the source (VM.refresh_disk), each while ${[...new Set(refreshedOnB.map((r) => r['status']))].join('/')}`);
  t.comment(`extension phases on A during the migration: ${during.map((r) => JSON.stringify(r['phasesMs'])).join(' ')}`);

  const tRaise = performance.now();
  await cA.call('VM.migrateChangeParams', { vmID: g.vmID, params: { maxBandwidth: 1000 } });
  const down = await watchA.wait(g.vmID, 'Down', 120_000);
  t.equal(down['exitMessage'], 'migration succeeded', `A: Down "migration succeeded" ${secs(performance.now() - tRaise)} s after the bandwidth was raised (${secs(performance.now() - tMig)} s in all)`);
  await watchB.wait(g.vmID, 'Up', 60_000);
  t.pass('B: Up');
  const lastToMiB = Math.max(...extendedOn(agentA.logs, aLog0).map((r) => Number(r['toMiB'])));
  const infoB = await cB.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol });
  t.ok(infoB.apparentsize >= lastToMiB * MiB, `the volume on B has the extended size: ${infoB.apparentsize / MiB} MiB >= ${lastToMiB} MiB, A's last extension`);
  const blk = await hB.exec(['virsh', '-c', 'qemu:///system', 'domblkinfo', g.spec.name, 'vda', '--human']);
  t.comment(`QEMU's view of vda on B: ${blk.stdout.replace(/\s+/g, ' ').trim()}`);

  // The guest keeps writing on B, where B's own drive monitor extends the volume.
  const bArrived = agentB.logs.length;
  const done = await waitForSerialMarker(serialLogOn(hB, g.spec.name), 'LAB-WRITE-DONE', 300_000);
  t.match(done.line, /rc=0/, `the guest finished its 2 GiB write on B (${done.line.trim()})`);
  const onB = extendedOn(agentB.logs, bArrived);
  t.ok(onB.length >= 1, `B's drive monitor extended the volume ${onB.length} time(s) after the arrival (${onB.map((r) => `${String(r['toMiB'])} MiB`).join(', ')})`);

  const pauses = [...watchA.statuses(g.vmID), ...watchB.statuses(g.vmID)].filter((s) => s === 'Paused').length;
  t.equal(pauses, 0, `0 pauses (A: ${watchA.statuses(g.vmID).join(' -> ')}; B: ${watchB.statuses(g.vmID).join(' -> ')})`);
  const served = servedBy(agentB.logs);
  const auditA = auditExtensions(extendedOn(agentA.logs, aLog0), served, 1);
  t.equal(auditA.unmatched.length, 0, `each of A's ${auditA.matched.length + auditA.unmatched.length} extensions matched by request id to one B served for host id 1${auditA.unmatched.length ? `: ${describeUnmatched(auditA)}` : ''}`);
  const auditB = auditExtensions(onB, served, 2);
  t.equal(auditB.unmatched.length, 0, `each of B's ${onB.length} extensions matched by request id to one B served for host id 2${auditB.unmatched.length ? `: ${describeUnmatched(auditB)}` : ''}`);
  t.equal(await domStateOn(hA, g.spec.name), undefined, 'libvirt on A holds no domain');
  t.equal(await domStateOn(hB, g.spec.name), 'running', 'libvirt on B runs it');

  await cB.call('VM.destroy', { vmID: g.vmID });
  await cA.call('VM.destroy', { vmID: g.vmID }).catch(() => {});
  for (const r of recs) r.destroyed = true;
});
