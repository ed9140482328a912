// DELETE /vms/{id}/hibernation and GET /vms/{id}'s startBlocked over the real REST server and a
// SQLite store, jobs left pending (no agents). What the hosts say is the reconciler's answer,
// given here by the test (discardBlockers, verdict), so each refusal is met on purpose; the end
// to end test (suspend-unknown) meets them with a real agent and guests.
import t from 'tap';
import { startApi } from '../http/harness.js';

t.test('DELETE /vms/{id}/hibernation: 404, 409 VmBusy, 409 VmRunning and HostsUnknown unless force, 503 without a view of the hosts; GET /vms/{id} says why a start is blocked', async (t) => {
  const api = await startApi();
  t.teardown(() => api.close());
  const { store } = api;
  const cluster = await store.clusters.get('default');
  const sd = await store.storageDomains.create({ clusterId: cluster.id, name: 'sd', spec: { type: 'file', root: '/nonexistent' } });
  const vm = await store.vms.create({ name: 'v1', clusterId: cluster.id, spec: { memoryMiB: 128 }, memoryReservationMiB: 128, cpuReservation: 1, pinnedHostId: null, priority: 0 });
  const base = `/api/v1/vms/${vm.id}`;
  const vol = { domainId: sd.id, imageId: '11111111-1111-4111-8111-111111111111', volumeId: '22222222-2222-4222-8222-222222222222', sizeBytes: 1 };

  t.equal((await api.call('DELETE', `${base}/hibernation`)).status, 404, 'no hibernation: 404');
  const suspend = await store.jobs.create({ kind: 'vm.suspend', targetKind: 'vm', targetId: vm.id, params: {}, correlationId: 'c1' });
  await store.hibernations.begin(vm.id, suspend.id, vol, null);

  const noView = await api.call('DELETE', `${base}/hibernation`);
  t.same([noView.status, noView.body.code], [409, 'VmBusy'], 'a suspend job under way: 409 VmBusy');
  const forcedBusy = await api.call('DELETE', `${base}/hibernation?force=true`);
  t.same([forcedBusy.status, forcedBusy.body.code], [409, 'VmBusy'], 'force does not override a running job');
  t.equal((await api.call('GET', base)).body.startBlocked.code, 'SuspendOutcomeUnknown', 'a saving record blocks a start, before any verdict too');
  await store.jobs.advance(suspend.id, { state: 'failed', error: { code: 'SuspendTimeout', message: 'x', details: {} } });

  const blind = await api.call('DELETE', `${base}/hibernation`);
  t.same([blind.status, blind.body.code], [503, 'Unavailable'], 'no view of the hosts: 503, nothing is guessed');

  let blockers = { runningOn: [{ hostId: 'h1', status: 'Up' }], unknown: {} as Record<string, string> };
  api.ctx.hibernations = {
    verdict: () => ({ decision: { action: 'keep', reason: 'host h2 did not answer' }, at: 1 }),
    discardBlockers: async () => blockers,
  };
  const running = await api.call('DELETE', `${base}/hibernation`);
  t.same([running.status, running.body.code, running.body.details.runningOn], [409, 'VmRunning', [{ hostId: 'h1', status: 'Up' }]], `the VM runs: 409 VmRunning: ${running.body.message}`);
  blockers = { runningOn: [], unknown: { h2: 'timeout' } };
  const unknown = await api.call('DELETE', `${base}/hibernation`);
  t.same([unknown.status, unknown.body.code, unknown.body.details.hosts], [409, 'HostsUnknown', { h2: 'timeout' }], `a host unknown: 409 HostsUnknown: ${unknown.body.message}`);
  const start = await api.call('POST', `${base}/start`);
  t.same([start.status, start.body.code], [409, 'SuspendOutcomeUnknown'], `POST /vms/{id}/start: 409 with the reason: ${start.body.message}`);
  const vmNow = (await api.call('GET', base)).body;
  t.same(vmNow.startBlocked, { code: 'SuspendOutcomeUnknown', reason: 'host h2 did not answer' }, 'GET /vms/{id}: the verdict is the reason');
  t.equal((await api.call('DELETE', `${base}/hibernation?force=maybe`)).status, 400, 'force is a boolean');

  const forced = await api.call('DELETE', `${base}/hibernation?force=true`);
  t.same([forced.status, forced.body.kind, forced.body.targetId, forced.body.params.imageId], [202, 'vm.hibernation.discard', vm.id, vol.imageId], 'force=true: 202, a discard job for this record');
  t.match(forced.body.params.reason, /force=true/, 'the job says it was forced');
  const again = await api.call('DELETE', `${base}/hibernation?force=true`);
  t.same([again.status, again.body.code], [409, 'VmBusy'], 'one discard at a time');

  await store.jobs.advance(forced.body.id, { state: 'failed', error: { code: 'x', message: 'x', details: {} } });
  blockers = { runningOn: [], unknown: {} };
  const plain = await api.call('DELETE', `${base}/hibernation`);
  t.equal(plain.status, 202, 'no host unknown and the VM running nowhere: 202 without force');
  await store.hibernations.setState(vm.id, 'suspended', null);
  t.notOk('startBlocked' in (await api.call('GET', base)).body, 'a suspended VM is not blocked: a start resumes it');

  const doc = (await api.call('GET', '/api/v1/openapi.json')).body;
  t.ok(doc.paths['/api/v1/vms/{id}/hibernation'].delete, 'the OpenAPI document has DELETE /vms/{id}/hibernation');
});
