// A host's MaintenanceFailed reasons (one per VM that could not be moved) survive a controller
// restart: a controller built as main.ts builds it (VM and migration parts) with two real agents
// on libvirt's test driver, which cannot migrate, drives host a to MaintenanceFailed; that
// controller is closed and a new one is started on the same store. After several polls of the
// new one, the host is still MaintenanceFailed with the same reasons (its first poll used to
// write an empty list over them), and cancel still returns it to Up, reasons gone.
import t from 'tap';
import type { Host } from '../../../controller/model/hosts.js';
import { maintenanceRig } from '../migration/test-driver-maintenance.js';
import { addLocalHosts } from '../vms/controller-harness.js';

t.setTimeout(180_000);
const rig = await maintenanceRig(t);
const { controller, agents, settings } = rig;

t.test('MaintenanceFailed and its reasons are kept across a controller restart; cancel still returns the host to Up', async (t) => {
  const first = await controller();
  let closed = false;
  t.teardown(async () => { if (!closed) await first.close(); });
  const [hostA] = await addLocalHosts(first, agents.map((a) => a.config['rpc.port'])) as [Host, Host];
  const { call } = first.api;
  const d = await call('POST', '/api/v1/vms', { body: { name: 'unmovable', spec: { memoryMiB: 64, domainType: 'qemu' } } });
  const s = await call('POST', `/api/v1/vms/${d.body.id}/start`, { body: { host: 'a' } });
  t.equal((await first.jobEnd(s.headers.location as string)).state, 'succeeded', 'a VM runs on a');
  const m = await call('POST', `/api/v1/hosts/${hostA.id}/maintenance`, { body: {} });
  const job = await first.jobEnd(m.headers.location as string, 120_000);
  t.equal(job.error?.code, 'MaintenanceFailed', 'the test driver cannot migrate: MaintenanceFailed');
  const before = (await call('GET', `/api/v1/hosts/${hostA.id}`)).body as Host;
  t.equal(before.status, 'MaintenanceFailed');
  t.match(before.reasons.join(' | '), /VM unmovable could not be migrated after 2 tries/, `reasons: ${before.reasons.join(' | ')}`);

  await first.close();
  closed = true;
  const second = await controller();
  t.teardown(() => second.close());
  const restartedAt = Date.now();
  // Several polls of the new controller, each one written to the host's row.
  const after = await second.until(`/api/v1/hosts/${hostA.id}`, (a) => (a.body.lastContact ?? 0) > restartedAt + 5 * settings.pollIntervalMs, 20_000, 'polls of the new controller');
  t.same([after.body.status, after.body.reasons], ['MaintenanceFailed', before.reasons], 'still MaintenanceFailed, with the same reasons, after polls of the new controller');

  const c = await call('POST', `/api/v1/hosts/${hostA.id}/maintenance/cancel`, { body: {} });
  t.equal(c.status, 200, 'cancel');
  const up = await second.until(`/api/v1/hosts/${hostA.id}`, (a) => a.body.status === 'Up', 15_000, 'host Up');
  t.same(up.body.reasons, [], 'Up, with no reasons left');
  await call('POST', `/api/v1/vms/${d.body.id}/stop`);
  await second.until(`/api/v1/vms/${d.body.id}`, (a) => a.body.status === 'Down', 15_000, 'VM stopped');
});
