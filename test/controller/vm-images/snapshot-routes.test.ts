// The snapshot and suspend routes (controller/http/routes/snapshots.ts, hibernation.ts) over the
// real REST server and a SQLite store, with jobs left pending (no agents): validation of the
// bodies, the 409s a VM's state gives (with their stable codes), 404 for a snapshot of another
// VM, the jobs they make, the records (migrations 0006 and 0007) and the OpenAPI document; the
// discard of a hibernation (DELETE /vms/{id}/hibernation).
import t from 'tap';
import { startApi } from '../http/harness.js';

t.test('snapshot and suspend routes', async (t) => {
  const api = await startApi();
  t.teardown(() => api.close());
  const { store } = api;
  const cluster = await store.clusters.get('default');
  const sd = await store.storageDomains.create({ clusterId: cluster.id, name: 'sd', spec: { type: 'file', root: '/nonexistent' } });
  const disk = await store.disks.create({ name: 'd1', storageDomainId: sd.id, sizeBytes: 1 << 30, provisioning: 'thin' });
  await store.disks.setStatus(disk.id, 'ready');
  const vm = await store.vms.create({ name: 'v1', clusterId: cluster.id, spec: { memoryMiB: 128, disks: [{ name: 'vda', diskId: disk.id }] },
    memoryReservationMiB: 128, cpuReservation: 1, pinnedHostId: null, priority: 0 });
  const bare = await store.vms.create({ name: 'v2', clusterId: cluster.id, spec: { memoryMiB: 128 }, memoryReservationMiB: 128, cpuReservation: 1, pinnedHostId: null, priority: 0 });
  const base = `/api/v1/vms/${vm.id}`;

  await t.test('bodies are validated: a description is required, bounded; no unknown fields', async (t) => {
    const none = await api.call('POST', `${base}/snapshots`, { body: {} });
    t.same([none.status, none.body.code, none.body.details.field], [400, 'InvalidRequest', 'body.description']);
    const long = await api.call('POST', `${base}/snapshots`, { body: { description: 'x'.repeat(201) } });
    t.same([long.status, long.body.details.field], [400, 'body.description']);
    const extra = await api.call('POST', `${base}/snapshots`, { body: { description: 'a', cold: true } });
    t.same([extra.status, extra.body.details.field], [400, 'body.cold']);
    const mem = await api.call('POST', `${base}/snapshots`, { body: { description: 'a', memory: 'yes' } });
    t.same([mem.status, mem.body.details.field], [400, 'body.memory']);
    t.equal((await api.call('POST', `${base}/suspend`, { body: { now: true } })).status, 400, 'suspend takes no fields');
  });

  await t.test('what a stopped VM refuses, with stable codes', async (t) => {
    const nod = await api.call('POST', `/api/v1/vms/${bare.id}/snapshots`, { body: { description: 'a' } });
    t.same([nod.status, nod.body.code], [409, 'VmHasNoDisks']);
    const mem = await api.call('POST', `${base}/snapshots`, { body: { description: 'a', memory: true } });
    t.same([mem.status, mem.body.code], [409, 'VmNotRunning'], 'a memory snapshot of a stopped VM: there is no RAM state');
    const sus = await api.call('POST', `${base}/suspend`);
    t.same([sus.status, sus.body.code], [409, 'VmNotRunning'], 'a stopped VM is not suspended');
  });

  let sid = '';
  await t.test('a disk snapshot of a stopped VM: a vm.snapshot job naming a new snapshot record', async (t) => {
    const r = await api.call('POST', `${base}/snapshots`, { body: { description: 'before upgrade' } });
    t.same([r.status, r.body.kind, r.body.targetId], [202, 'vm.snapshot', vm.id]);
    t.match(r.headers.location, new RegExp(`/api/v1/jobs/${r.body.id}$`));
    sid = r.body.params.snapshotId;
    const list = await api.call('GET', `${base}/snapshots`);
    t.same(list.body.map((s: { id: string; status: string; description: string; memory: boolean; jobId: string }) => [s.id, s.status, s.description, s.memory, s.jobId]),
      [[sid, 'creating', 'before upgrade', false, r.body.id]], 'listed as creating, with its job');
    const busy = await api.call('POST', `${base}/snapshots`, { body: { description: 'again' } });
    t.same([busy.status, busy.body.code], [409, 'VmBusy'], 'one job of a VM at a time');
    const one = await api.call('GET', `${base}/snapshots/${sid}`);
    t.equal(one.body.id, sid);
  });

  await t.test('delete and restore: 404 for another VM\'s snapshot, 409 by the snapshot\'s and the VM\'s state', async (t) => {
    t.equal((await api.call('GET', `/api/v1/vms/${bare.id}/snapshots/${sid}`)).status, 404, 'another VM\'s snapshot is not found');
    t.equal((await api.call('DELETE', `/api/v1/vms/${bare.id}/snapshots/${sid}`)).status, 404);
    const creating = await api.call('POST', `${base}/snapshots/${sid}/restore`);
    t.same([creating.status, creating.body.code], [409, 'SnapshotBusy'], 'a snapshot still being made is not restored');
    await store.snapshots.update(sid, { status: 'ready' });
    await store.vms.setRuntime(vm.id, 'Migration Source', null);
    const del = await api.call('DELETE', `${base}/snapshots/${sid}`);
    t.same([del.status, del.body.code], [409, 'VmNotRunning'], 'a merge needs the VM running (live) or stopped (cold), not between');
    await store.vms.setRuntime(vm.id, 'Down', null);
    await store.vms.setRuntime(vm.id, 'Up', null);
    const up = await api.call('POST', `${base}/snapshots/${sid}/restore`);
    t.same([up.status, up.body.code], [409, 'VmNotStopped'], 'a running VM is not restored');
    await store.vms.setRuntime(vm.id, 'Down', null);
    await store.hibernations.begin(vm.id, sid, { domainId: sd.id, imageId: sid, volumeId: sid, sizeBytes: 1 }, null, { state: 'suspended' });
    const sus = await api.call('POST', `${base}/snapshots/${sid}/restore`);
    t.same([sus.status, sus.body.code], [409, 'VmNotStopped'], 'a suspended VM is not restored (its RAM state would not match)');
    t.same((await api.call('GET', `${base}/hibernation`)).body.state, 'suspended', 'GET /vms/{id}/hibernation shows it');
    t.equal((await api.call('DELETE', base)).status, 409, 'a suspended VM is not deleted');
    await store.hibernations.delete(vm.id);
    t.equal((await api.call('GET', `${base}/hibernation`)).status, 404, 'not suspended: 404');
  });

  await t.test('DELETE /vms/{id}/hibernation: 404, 409 VmBusy (even forced), VmRunning and HostsUnknown unless force, 503 without a view of the hosts; a saving record blocks a start (409, GET /vms/{id} startBlocked)', async (t) => {
    // What the hosts say is the hibernation reconciler's answer, given here by the test (discardBlockers,
    // verdict), so each refusal is met on purpose; suspend-unknown meets them with a real agent and guests.
    const v3 = await store.vms.create({ name: 'v3', clusterId: cluster.id, spec: { memoryMiB: 128 }, memoryReservationMiB: 128, cpuReservation: 1, pinnedHostId: null, priority: 0 });
    const base = `/api/v1/vms/${v3.id}`;
    const vol = { domainId: sd.id, imageId: '11111111-1111-4111-8111-111111111111', volumeId: '22222222-2222-4222-8222-222222222222', sizeBytes: 1 };

    t.equal((await api.call('DELETE', `${base}/hibernation`)).status, 404, 'no hibernation: 404');
    const suspend = await store.jobs.create({ kind: 'vm.suspend', targetKind: 'vm', targetId: v3.id, params: {}, correlationId: 'c1' });
    await store.hibernations.begin(v3.id, suspend.id, vol, null);

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
    t.same([forced.status, forced.body.kind, forced.body.targetId, forced.body.params.imageId], [202, 'vm.hibernation.discard', v3.id, vol.imageId], 'force=true: 202, a discard job for this record');
    t.match(forced.body.params.reason, /force=true/, 'the job says it was forced');
    const again = await api.call('DELETE', `${base}/hibernation?force=true`);
    t.same([again.status, again.body.code], [409, 'VmBusy'], 'one discard at a time');

    await store.jobs.advance(forced.body.id, { state: 'failed', error: { code: 'x', message: 'x', details: {} } });
    blockers = { runningOn: [], unknown: {} };
    const plain = await api.call('DELETE', `${base}/hibernation`);
    t.equal(plain.status, 202, 'no host unknown and the VM running nowhere: 202 without force');
    await store.hibernations.setState(v3.id, 'suspended', null);
    t.notOk('startBlocked' in (await api.call('GET', base)).body, 'a suspended VM is not blocked: a start resumes it');
  });

  await t.test('the OpenAPI document has the routes', async (t) => {
    const doc = (await api.call('GET', '/api/v1/openapi.json')).body;
    for (const p of ['/api/v1/vms/{id}/suspend', '/api/v1/vms/{id}/hibernation', '/api/v1/vms/{id}/snapshots', '/api/v1/vms/{id}/snapshots/{sid}', '/api/v1/vms/{id}/snapshots/{sid}/restore']) {
      t.ok(doc.paths[p], `${p} is documented`);
    }
    t.ok(doc.paths['/api/v1/vms/{id}/snapshots'].post.requestBody, 'with its request body');
    t.ok(doc.paths['/api/v1/vms/{id}/hibernation'].delete, 'DELETE /vms/{id}/hibernation is documented');
  });
});
