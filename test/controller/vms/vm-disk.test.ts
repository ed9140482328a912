// A VM whose disk is a controller disk id: the start resolves it to the storage ids the agent's
// VM.create takes (the cluster's pool, the disk's domain, image and volume), the agent prepares
// the volume and the tiny guest boots with it; placement requires the host to be connected to
// the pool (the pool filter), and it stops. Real parts: the agent as a process on
// the real libvirtd, a file storage domain in the storage lab, a sanlock daemon. The volume is
// made here directly with the agent (disk.create is the storage part's), then the disk marked
// ready in the store.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { HostvisorClient } from '../../../api/client/client.js';
import { AgentProcess } from '../../api/client/agent-process.js';
import { credentialsOf } from '../agents/test-hosts.js';
import { becomeSpm, GiB, taskLab } from '../../agent/storage/tasks-fixture.js';
import { GUEST_DIR, serialPathFor, waitForSerialMarker } from '../../lab/guest.js';
import { startController } from './controller-harness.js';

t.setTimeout(300_000);
const settings = resolveDecisionSettings({ pollIntervalMs: 1_000, pollTimeoutMs: 1_000, vmListIntervalMs: 1_000, hostFactsRefreshMs: 2_000, agentCallTimeoutMs: 30_000 });

t.test('a VM with a thin disk by disk id: placed only on a pool-connected host, boots from the volume, stops', async (t) => {
  const tl = await taskLab(t, 'ctl-vm-disk');
  if (!tl) return;
  const agent = await AgentProcess.start({ overrides: { ...tl.overrides, 'libvirt.uri': 'qemu:///system' } });
  t.teardown(() => agent.stop());
  const c = await startController({ settings, credentials: credentialsOf(agent) });
  t.teardown(() => c.close());
  const { api } = c;
  const { store } = api;
  const cluster = await store.clusters.get('default');

  // The cluster's storage as the storage part would record it, and the same ids on the agent.
  const spec = { type: 'file' as const, root: tl.fileRoot };
  const sd = await store.storageDomains.create({ clusterId: cluster.id, name: 'data', spec });
  const sp = randomUUID();
  const cl = await HostvisorClient.connect({ ...agent.target, timeoutMs: 30_000 });
  t.teardown(async () => { await cl.call('StoragePool.disconnect', { storagepoolID: sp }).catch(() => {}); await cl.close(); });
  await becomeSpm(cl, sd.id, sp, spec, true);
  const disk = await store.disks.create({ name: 'root', storageDomainId: sd.id, sizeBytes: GiB, provisioning: 'thin' });
  await cl.runSpmTask('Volume.create', { storagedomainID: sd.id, imageID: disk.imageId, volumeID: disk.volumeId, size: GiB, volFormat: 'COW', preallocate: 'SPARSE' }, { timeoutMs: 60_000 });
  await store.disks.setStatus(disk.id, 'ready');

  const host = await store.hosts.create({ name: 'solo', address: 'localhost', port: agent.config['rpc.port'], clusterId: cluster.id, certFingerprint: 'test' });
  c.runtime.kick();
  await c.until(`/api/v1/hosts/${host.id}`, (a) => a.body.status === 'Up', 15_000, 'host Up');

  const name = 'ctl-disk-guest';
  const vmSpec = {
    memoryMiB: 128, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
    cmdline: 'console=ttyS0 quiet panic=-1 no_timer_check lab.end=wait', serialLog: serialPathFor(name), disks: [{ name: 'vda', diskId: disk.id }],
  };
  const vm = (await api.call('POST', '/api/v1/vms', { body: { name, spec: vmSpec } })).body;

  // Before the cluster has a pool, no host is connected to one: the pool filter excludes it.
  const noPool = await api.call('POST', `/api/v1/vms/${vm.id}/start`);
  t.same([noPool.status, noPool.body.details?.hosts?.[0]?.filter], [422, 'pool'], `no pool yet: 422, ${noPool.body.details?.hosts?.[0]?.reason}`);
  // The pool appears (as the storage part records it): the next start reads the host's pool connection again.
  await store.clusters.setPool(cluster.id, sp);

  const t0 = performance.now();
  const start = await api.call('POST', `/api/v1/vms/${vm.id}/start`);
  t.equal(start.status, 202, 'with the pool: placed (the host answers StoragePool.getInfo for it)');
  const job = await c.jobEnd(start.headers.location as string, 120_000);
  t.equal(job.state, 'succeeded', `start job ${job.state}${job.error ? `: ${job.error.message}` : ''} (${Math.round(performance.now() - t0)} ms)`);
  const xml = (await cl.call('Host.dumpxmls', { vmList: [vm.id] })).domxmls[vm.id] ?? '';
  t.match(xml, new RegExp(disk.volumeId), 'the running domain\'s disk is the disk\'s volume');
  const boot = await waitForSerialMarker(serialPathFor(name), 'LAB-BOOT-OK', 120_000);
  t.ok(boot, `the guest booted (${Math.round(boot.elapsedMs)} ms of serial watch)`);

  const stop = await api.call('POST', `/api/v1/vms/${vm.id}/stop`);
  t.equal((await c.jobEnd(stop.headers.location as string, 60_000)).state, 'succeeded', 'stopped');
  t.same((await api.call('GET', `/api/v1/vms/${vm.id}`)).body.status, 'Down');
  t.equal((await cl.call('Host.getVMList', {})).vmList.filter((v) => v.vmId === vm.id).length, 0, 'the agent no longer has it');
});
