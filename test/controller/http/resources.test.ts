// The resources through the API: clusters, hosts (enrolled directly in the store here; the
// enrollment test covers the real path), storage domains, disks, networks and VMs; actions
// answer 202 with a Location whose job stays pending (no executor yet: nothing claims it ran);
// the state forbids what it must (409); the Correlation-Id reaches the job and its events.
import t from 'tap';
import { startApi } from './harness.js';

const api = await startApi();
t.teardown(() => api.close());
const { call, store } = api;

async function host(name: string) {
  const cluster = await store.clusters.get('default');
  return store.hosts.create({ name, address: `${name}.lab`, port: 54321, clusterId: cluster.id, certFingerprint: 'f' });
}

t.test('clusters: create, read by id or name, change the policy', async (t) => {
  const c = await call('POST', '/api/v1/clusters', { body: { name: 'east', policy: 'power_saving' } });
  t.same([c.status, c.body.policy, c.body.thresholds.lowUtilization], [201, 'power_saving', 20]);
  t.equal((await call('GET', `/api/v1/clusters/${c.body.id}`)).body.name, 'east');
  const p = await call('PATCH', '/api/v1/clusters/east', { body: { thresholds: { lowUtilization: 10 } } });
  t.same([p.status, p.body.thresholds.lowUtilization, p.body.policy], [200, 10, 'power_saving']);
  t.same((await call('GET', '/api/v1/clusters')).body.map((x: { name: string }) => x.name), ['default', 'east']);
  const spm = await call('GET', '/api/v1/clusters/default/spm');
  t.same([spm.status, spm.body.hostId], [200, null], 'no SPM until the controller elects one');
});

t.test('hosts: list and get with SPM role and VM count, PATCH spmPriority, DELETE', async (t) => {
  const a = await host('a');
  const list = await call('GET', '/api/v1/hosts');
  t.same(list.body.map((h: { name: string; spm: boolean; vmCount: number; status: string }) => [h.name, h.spm, h.vmCount, h.status]), [['a', false, 0, 'Installing']]);
  const p = await call('PATCH', `/api/v1/hosts/${a.id}`, { body: { spmPriority: -1 } });
  t.same([p.status, p.body.spmPriority], [200, -1]);
  const d = await call('DELETE', `/api/v1/hosts/${a.id}`);
  t.equal(d.status, 204);
  t.equal((await call('GET', `/api/v1/hosts/${a.id}`)).status, 404);
});

t.test('storage domain, disk, network: 202 + Location to a pending job, resource recorded pending', async (t) => {
  const b = await host('b');
  const sd = await call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'data', spec: { type: 'file', root: '/var/lib/hostvisor/storage' } }, headers: { 'correlation-id': 'sd-create-1' } });
  t.equal(sd.status, 202);
  t.equal(sd.headers.location, `/api/v1/jobs/${sd.body.id}`);
  t.equal(sd.headers['correlation-id'], 'sd-create-1', 'echoed');
  const job = await call('GET', sd.headers.location as string);
  t.same([job.body.state, job.body.kind, job.body.correlationId, job.body.progress], ['pending', 'storage-domain.create', 'sd-create-1', 0]);
  t.ok(api.runner.submitted.some((j) => j.id === job.body.id), 'handed to the job runner');
  const domain = await call('GET', `/api/v1/storage-domains/${job.body.targetId}`);
  t.same([domain.body.master, domain.body.status], [true, 'pending'], 'the first domain is master');
  const events = await store.eventLog.list(0, 1000);
  t.ok(events.filter((e) => e.correlationId === 'sd-create-1').length >= 2, 'the correlation id is on the events');

  const disk = await call('POST', '/api/v1/disks', { body: { name: 'root', storageDomainId: domain.body.id, sizeBytes: 2 ** 30, provisioning: 'thin' } });
  t.same([disk.status, disk.body.kind], [202, 'disk.create']);
  t.same((await call('GET', `/api/v1/disks/${disk.body.targetId}`)).body.status, 'pending');

  const net = await call('POST', '/api/v1/clusters/default/networks', { body: { name: 'storage', vlan: 20, required: true, nics: { b: 'eth1' } } });
  t.same([net.status, net.body.kind], [202, 'network.apply']);
  const n = await call('GET', `/api/v1/networks/${net.body.targetId}`);
  t.same([n.body.nics, n.body.hosts, n.body.mtu, n.body.bridged], [{ [b.id]: 'eth1' }, { [b.id]: 'pending' }, 1500, true], 'nic by host name stored by host id');
  t.equal((await call('POST', '/api/v1/clusters/default/networks', { body: { name: 'storage', nics: {} } })).status, 409, 'a second network of that name');
  const fix = await call('PATCH', `/api/v1/networks/${net.body.targetId}`, { body: { nics: { b: 'eth2' }, required: false } });
  t.same([fix.status, fix.body.kind, fix.body.targetId], [202, 'network.apply', net.body.targetId], 'PATCH answers a new apply job');
  const fixed = await call('GET', `/api/v1/networks/${net.body.targetId}`);
  t.same([fixed.body.nics, fixed.body.hosts, fixed.body.required], [{ [b.id]: 'eth2' }, { [b.id]: 'pending' }, false], 'the nic changed, to be applied again; required replaced');
  t.equal((await call('PATCH', `/api/v1/networks/${net.body.targetId}`, { body: { nics: { nohost: 'eth0' } } })).status, 404, 'a host not in the cluster');
});

t.test('VMs: define, start once (202, a second start 409), no delete while meant up, stop, delete', async (t) => {
  const domain = (await store.storageDomains.list())[0]!;
  const disk = await store.disks.create({ name: 'vm-disk', storageDomainId: domain.id, sizeBytes: 2 ** 30, provisioning: 'thin' });
  const spec = { memoryMiB: 128, kernel: '/var/tmp/hostvisor-lab/guest/vmlinux', disks: [{ name: 'vda', diskId: disk.id }], nics: [{ network: 'storage' }] };
  const vm = await call('POST', '/api/v1/vms', { body: { name: 'tiny', spec, pinnedHost: 'b' } });
  t.same([vm.status, vm.body.status, vm.body.desiredState, vm.body.memoryReservationMiB, vm.body.cpuReservation], [201, 'Down', 'down', 128, 1]);
  t.equal((await call('POST', '/api/v1/vms', { body: { name: 'other', spec: { memoryMiB: 64, disks: [{ name: 'vda', diskId: disk.id }] } } })).status, 409, 'the disk belongs to tiny');
  t.equal((await call('DELETE', `/api/v1/disks/${disk.id}`)).status, 409, 'a disk a VM names is not deleted');
  const start = await call('POST', `/api/v1/vms/${vm.body.id}/start`, { body: {} });
  t.same([start.status, start.body.kind, start.body.state], [202, 'vm.start', 'pending']);
  const again = await call('POST', `/api/v1/vms/${vm.body.id}/start`);
  t.same([again.status, again.body.code], [409, 'Conflict'], 'never started twice');
  t.match(again.body.message, /start job under way/);
  t.equal((await call('GET', `/api/v1/vms/${vm.body.id}`)).body.desiredState, 'up');
  t.equal((await call('DELETE', `/api/v1/vms/${vm.body.id}`)).status, 409, 'not deleted while meant to run');
  const stop = await call('POST', `/api/v1/vms/${vm.body.id}/shutdown`, { body: { timeoutSeconds: 30 } });
  t.same([stop.status, stop.body.kind, stop.body.params.timeoutSeconds], [202, 'vm.shutdown', 30]);
  t.equal((await call('DELETE', `/api/v1/vms/${vm.body.id}`)).status, 204, 'Down and meant down: deleted');
  t.equal((await call('GET', `/api/v1/disks/${disk.id}`)).body.vmId, null, 'its disk is free again');
  const jobs = await call('GET', '/api/v1/jobs?state=pending');
  t.ok(jobs.body.length >= 5 && jobs.body.every((j: { state: string }) => j.state === 'pending'), 'every job is still pending: no executor ran them');
});

t.test('events: paged by since/limit in order', async (t) => {
  const all = await call('GET', '/api/v1/events?limit=1000');
  t.ok(all.body.events.length >= 10);
  const first = await call('GET', '/api/v1/events?since=0&limit=3');
  t.equal(first.body.events.length, 3);
  const next = await call('GET', `/api/v1/events?since=${first.body.last}&limit=1000`);
  t.same([...first.body.events, ...next.body.events].map((e: { seq: number }) => e.seq), all.body.events.map((e: { seq: number }) => e.seq));
});
