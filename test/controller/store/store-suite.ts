// The store's behaviour, the same on every engine: store-sqlite.test.ts and store-postgres.test.ts
// run this suite against a real database each.
import type { Test } from 'tap';
import { Store } from '../../../controller/store/store.js';
import type { StoreOptions } from '../../../controller/store/connect.js';
import { ConflictError, NotFoundError } from '../../../controller/store/errors.js';
import type { Event } from '../../../controller/model/events.js';

export type OpenStore = (o?: { now?: () => number; retention?: { maxRows: number; maxAgeMs: number } }) => Promise<Store>;

/** A clock the test moves by hand. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

async function enrolled(s: Store, name: string, clusterId?: string) {
  const cluster = clusterId ?? (await s.clusters.get('default')).id;
  return s.hosts.create({ name, address: `${name}.lab`, port: 54321, clusterId: cluster, certFingerprint: `fp-${name}` });
}

export function storeSuite(t: Test, engine: string, open: OpenStore, reopenOptions: () => StoreOptions): void {
  t.test(`${engine}: migrations run once; a reopened store applies none and keeps its rows`, async (t) => {
    const s = await open();
    await s.clusters.create({ name: 'keep' });
    await s.close();
    const { openDb } = await import('../../../controller/store/connect.js');
    const again = await openDb(reopenOptions());
    t.same(again.applied, [], 'no migration applied on the second open');
    const names = (await again.db.selectFrom('clusters').select('name').execute()).map((r) => r.name).sort();
    t.same(names, ['default', 'keep']);
    await again.db.destroy();
  });

  t.test(`${engine}: clusters: default exists, names unique, policy change takes the new policy's thresholds`, async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const def = await s.clusters.get('default');
    t.equal(def.policy, 'evenly_distributed');
    t.same(def.thresholds, { highUtilization: 80, cpuOverCommitDurationMinutes: 2 });
    t.equal((await s.clusters.get(def.id)).name, 'default', 'found by id as by name');
    const c = await s.clusters.create({ name: 'east', policy: 'power_saving', thresholds: { lowUtilization: 10 } });
    t.same(c.thresholds, { highUtilization: 80, lowUtilization: 10, cpuOverCommitDurationMinutes: 2 });
    await t.rejects(s.clusters.create({ name: 'east' }), ConflictError);
    const u = await s.clusters.update('east', { policy: 'vm_evenly_distributed' });
    t.same(u.thresholds, { highUtilization: 80, highVmCount: 10, migrationThreshold: 5, spmVmGrace: 5 }, 'new defaults, old overrides dropped');
    const u2 = await s.clusters.update(c.id, { thresholds: { highVmCount: 3 } });
    t.equal(u2.thresholds.highVmCount, 3);
    t.equal(u2.policy, 'vm_evenly_distributed');
    await t.rejects(s.clusters.get('nowhere'), NotFoundError);
    await s.clusters.setSpm(c.id, { hostId: '3f1e0a52-0000-4000-8000-000000000001', lver: 7 });
    t.equal((await s.clusters.get(c.id)).spmLver, 7);
  });

  t.test(`${engine}: enrollment tokens are claimed once, and never after they expire`, async (t) => {
    const clock = manualClock();
    const s = await open({ now: clock.now });
    t.teardown(() => s.close());
    const cluster = (await s.clusters.get('default')).id;
    const base = { secretHash: 'h', hostName: 'a', address: 'a.lab', port: 54321, clusterId: cluster };
    await s.tokens.create({ ...base, id: 'e3b0c442-98fc-4c14-9afb-f4c8996fb924', expiresAt: clock.now() + 60_000 });
    await s.tokens.create({ ...base, id: 'e3b0c442-98fc-4c14-9afb-f4c8996fb925', expiresAt: clock.now() + 1_000 });
    const claims = await Promise.all([1, 2, 3].map(() => s.tokens.claim('e3b0c442-98fc-4c14-9afb-f4c8996fb924', clock.now(), 'h1')));
    t.same(claims.filter(Boolean).length, 1, 'three concurrent claims, one wins');
    t.equal((await s.tokens.find('e3b0c442-98fc-4c14-9afb-f4c8996fb924'))?.secretHash, 'h', 'only the hash is stored');
    clock.advance(1_000);
    t.equal(await s.tokens.claim('e3b0c442-98fc-4c14-9afb-f4c8996fb925', clock.now(), 'h2'), false, 'expired at its expiry time');
    clock.advance(3600_000);
    t.equal(await s.tokens.prune(60_000), 2, 'the used and the expired token are pruned later');
  });

  t.test(`${engine}: hosts get the lowest free pool host id; spmPriority -1..10; a host with VMs is not deleted`, async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const a = await enrolled(s, 'a');
    const b = await enrolled(s, 'b');
    t.same([a.poolHostId, b.poolHostId], [1, 2]);
    t.equal(a.status, 'Installing');
    t.equal(a.spmPriority, 5, 'default priority 5');
    await t.rejects(enrolled(s, 'a'), ConflictError, 'names are unique');
    await s.hosts.delete(a.id);
    t.equal((await enrolled(s, 'c')).poolHostId, 1, 'a freed id is reused');
    t.equal((await s.hosts.setSpmPriority(b.id, -1)).spmPriority, -1);
    await t.rejects(s.hosts.setSpmPriority(b.id, 11), 'the database refuses 11');
    await t.rejects(s.hosts.setSpmPriority('3f1e0a52-0000-4000-8000-0000000000ff', 1), NotFoundError);
    await s.hosts.setStatus(b.id, 'NonOperational', ['network ovirtmgmt missing']);
    await s.hosts.recordContact(b.id, 1234, { cpuUsedPercent: 3, memTotalMiB: 100, memUsedMiB: 50 });
    const b2 = await s.hosts.get(b.id);
    t.same([b2.status, b2.reasons, b2.lastContact, b2.stats?.memUsedMiB], ['NonOperational', ['network ovirtmgmt missing'], 1234, 50]);
    const cluster = (await s.clusters.get('default')).id;
    const vm = await s.vms.create({ name: 'v', clusterId: cluster, spec: { memoryMiB: 64 }, memoryReservationMiB: 64, cpuReservation: 1, pinnedHostId: b.id, priority: 0 });
    const err = await s.hosts.delete(b.id).catch((e: unknown) => e);
    t.type(err, ConflictError);
    t.same((err as ConflictError).details, { vms: ['v'] }, 'the conflict names the VM');
    await s.vms.delete(vm.id);
    await s.hosts.delete(b.id);
    t.same((await s.hosts.list()).map((h) => h.name), ['c']);
  });

  t.test(`${engine}: storage domains: the first of a cluster is master; disks need a domain`, async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const cluster = (await s.clusters.get('default')).id;
    const d1 = await s.storageDomains.create({ clusterId: cluster, name: 'data', spec: { type: 'file', root: '/srv/a' } });
    const d2 = await s.storageDomains.create({ clusterId: cluster, name: 'more', spec: { type: 'block', devices: ['/dev/sdb'] } });
    t.same([d1.master, d2.master, d1.status], [true, false, 'pending']);
    await t.rejects(s.storageDomains.create({ clusterId: cluster, name: 'data', spec: { type: 'file', root: '/x' } }), ConflictError);
    await s.storageDomains.update(d1.id, { status: 'active', sizeBytes: 10 * 2 ** 30, freeBytes: 2 ** 30, hosts: { h1: 'active' } });
    const got = await s.storageDomains.get(d1.id);
    t.same([got.status, got.sizeBytes, got.hosts], ['active', 10 * 2 ** 30, { h1: 'active' }], 'byte sizes above 2^32 read back as numbers');
    t.same((await s.storageDomains.list({ clusterId: cluster })).map((d) => d.name), ['data', 'more']);
    const err = await s.disks.create({ name: 'x', storageDomainId: '3f1e0a52-0000-4000-8000-0000000000ff', sizeBytes: 1, provisioning: 'thin' }).catch((e: unknown) => e);
    t.type(err, NotFoundError);
    t.equal((err as NotFoundError).field, 'storageDomainId');
    const disk = await s.disks.create({ name: 'root', storageDomainId: d1.id, sizeBytes: 2 ** 30, provisioning: 'thin' });
    t.same([disk.status, disk.vmId], ['pending', null]);
    await s.disks.markDeleting(disk.id);
    await t.rejects(s.disks.markDeleting(disk.id), ConflictError, 'a second delete while one is under way');
  });

  t.test(`${engine}: networks keep their per-host nic and status`, async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const cluster = (await s.clusters.get('default')).id;
    const n = await s.networks.create({ clusterId: cluster, name: 'storage', vlan: 20, mtu: 9000, bridged: false, required: true, nics: { h1: 'eth1' } });
    t.same([n.required, n.bridged, n.hosts], [true, false, { h1: 'pending' }]);
    await s.networks.setHostStatus(n.id, 'h1', 'applied');
    t.same((await s.networks.get(n.id)).hosts, { h1: 'applied' });
    await t.rejects(s.networks.create({ ...n, nics: {} }), ConflictError);
    await s.networks.setHostStatus(n.id, 'h2', 'notAssigned');
    const u = await s.networks.update(n.id, { nics: { h1: 'eth1', h2: 'eth2' }, required: false });
    t.same([u.nics, u.hosts, u.required], [{ h1: 'eth1', h2: 'eth2' }, { h1: 'applied', h2: 'pending' }, false], 'update: a host newly given a nic goes pending, one whose nic is the same keeps its status');
    t.same(await s.networks.get(n.id), u, 'as stored');
    t.same((await s.networks.update(n.id, { nics: { h1: 'eth3' } })).hosts, { h1: 'pending', h2: 'pending' }, 'a changed nic goes pending');
    await t.rejects(s.networks.update('00000000-0000-4000-8000-000000000000', { required: true }), NotFoundError);
    const any = await s.networks.create({ clusterId: cluster, name: 'any', vlan: null, mtu: 1500, bridged: true, required: false, nics: { '*': 'eth1', h1: 'eth2' } });
    t.same([any.nics, any.hosts], [{ '*': 'eth1', h1: 'eth2' }, { h1: 'pending' }], 'the "*" entry (every other host) has no status of its own');
    t.same((await s.networks.update(any.id, { nics: { '*': 'eth3' } })).hosts, { h1: 'pending' });
  });

  t.test(`${engine}: VMs claim their disks all or nothing; a desired-state change passes once`, async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const cluster = (await s.clusters.get('default')).id;
    const dom = await s.storageDomains.create({ clusterId: cluster, name: 'data', spec: { type: 'file', root: '/srv' } });
    const d1 = await s.disks.create({ name: 'd1', storageDomainId: dom.id, sizeBytes: 1, provisioning: 'thin' });
    const d2 = await s.disks.create({ name: 'd2', storageDomainId: dom.id, sizeBytes: 1, provisioning: 'preallocated' });
    const base = { clusterId: cluster, memoryReservationMiB: 0, cpuReservation: 0, pinnedHostId: null, priority: 0 };
    const a = await s.vms.create({ ...base, name: 'a', spec: { memoryMiB: 64, disks: [{ name: 'vda', diskId: d1.id }] } });
    t.same([a.status, a.desiredState, (await s.disks.get(d1.id)).vmId], ['Down', 'down', a.id]);
    const err = await s.vms.create({ ...base, name: 'b', spec: { memoryMiB: 64, disks: [{ name: 'vda', diskId: d2.id }, { name: 'vdb', diskId: d1.id }] } }).catch((e: unknown) => e);
    t.type(err, ConflictError);
    t.equal((err as ConflictError).details.field, 'spec.disks[1].diskId');
    t.equal(await s.vms.find((await s.vms.list()).find((v) => v.name === 'b')?.id ?? 'none'), undefined, 'no VM b');
    t.equal((await s.disks.get(d2.id)).vmId, null, 'd2 not claimed by the failed create');
    await t.rejects(s.disks.markDeleting(d1.id), ConflictError, 'a disk of a VM is not deleted');
    const wins = await Promise.all([1, 2, 3, 4].map(() => s.vms.transitionDesired(a.id, 'down', 'up')));
    t.equal(wins.filter(Boolean).length, 1, 'four concurrent starts, one passes');
    await s.vms.setRuntime(a.id, 'Up', null);
    await t.rejects(s.vms.delete(a.id), ConflictError, 'an Up VM is not deleted');
    await s.vms.setRuntime(a.id, 'Down', null);
    await s.vms.transitionDesired(a.id, 'up', 'down');
    await s.vms.delete(a.id);
    t.equal((await s.disks.get(d1.id)).vmId, null, 'deleting the VM releases its disk');
  });

  t.test(`${engine}: jobs go pending -> running -> an end, with phase times; an ended job does not move`, async (t) => {
    const clock = manualClock();
    const s = await open({ now: clock.now });
    t.teardown(() => s.close());
    const j = await s.jobs.create({ kind: 'vm.start', targetKind: 'vm', targetId: '3f1e0a52-0000-4000-8000-000000000001', params: { host: null }, correlationId: 'c-1' });
    t.same([j.state, j.progress, j.startedAt, j.correlationId], ['pending', 0, null, 'c-1']);
    t.equal((await s.jobs.activeFor(j.targetId, ['vm.start']))?.id, j.id);
    clock.advance(10);
    const r = await s.jobs.advance(j.id, { state: 'running', progress: 40, steps: [{ name: 'place', state: 'succeeded', startedAt: clock.now(), endedAt: clock.now() }] });
    t.same([r.state, r.startedAt, r.progress, r.steps.length], ['running', clock.now(), 40, 1]);
    clock.advance(10);
    const f = await s.jobs.advance(j.id, { state: 'failed', error: { code: 'AgentUnreachable', message: 'no answer', details: { host: 'a' } } });
    t.same([f.state, f.endedAt, f.error?.code, f.progress], ['failed', clock.now(), 'AgentUnreachable', 40]);
    await t.rejects(s.jobs.advance(j.id, { state: 'succeeded' }), ConflictError);
    const k = await s.jobs.create({ kind: 'disk.create', targetKind: 'disk', targetId: '3f1e0a52-0000-4000-8000-000000000002', correlationId: 'c-2' });
    t.same((await s.jobs.unfinished()).map((x) => x.id), [k.id]);
    const done = await s.jobs.advance(k.id, { state: 'succeeded' });
    t.same([done.progress, done.startedAt, done.endedAt], [100, clock.now(), clock.now()], 'succeeded straight from pending: 100 %, both times');
    t.equal(await s.jobs.activeFor(j.targetId, ['vm.start']), undefined);
  });

  t.test(`${engine}: events: increasing sequence, since/limit paging, bounded by count and age, live`, async (t) => {
    const clock = manualClock();
    const s = await open({ now: clock.now });
    t.teardown(() => s.close());
    const live: Event[] = [];
    const off = s.onEvent((e) => live.push(e));
    const appended = await Promise.all(Array.from({ length: 20 }, (_, i) => s.event({ kind: 'test.tick', subjectKind: 'test', subjectId: String(i), message: `tick ${i}`, correlationId: 'c' })));
    const seqs = appended.map((e) => e.seq);
    t.equal(new Set(seqs).size, 20, '20 concurrent appends, 20 distinct numbers');
    const page1 = await s.eventLog.list(0, 8);
    const page2 = await s.eventLog.list(page1.at(-1)!.seq, 100);
    t.equal(page1.length + page2.length, 20);
    t.ok([...page1, ...page2].every((e, i, all) => i === 0 || e.seq > all[i - 1]!.seq), 'strictly increasing');
    t.equal(live.length, 20, 'every append reached the live subscriber');
    off();
    t.equal(await s.eventLog.prune({ maxRows: 5, maxAgeMs: 3600_000 }), 15, 'kept the newest 5');
    const maxBefore = await s.eventLog.latestSeq();
    clock.advance(7200_000);
    const fresh = await s.event({ kind: 'test.tick', subjectKind: 'test', subjectId: 'x', message: 'after' });
    t.ok(fresh.seq > maxBefore, 'a pruned number is never reused');
    t.equal(await s.eventLog.prune({ maxRows: 100, maxAgeMs: 3600_000 }), 5, 'the five older than an hour went');
    t.same((await s.eventLog.list(0, 100)).map((e) => e.seq), [fresh.seq]);
    t.equal(live.length, 20, 'unsubscribed: no more live events');
  });
}
