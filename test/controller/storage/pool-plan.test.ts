// The pool a cluster should have (from the store) and how a host's view of a domain reads in the
// domain's record: table cases of the pure functions behind the pool connector.
import t from 'tap';
import { hostDomainStatus, poolOf } from '../../../controller/storage/pool-plan.js';
import { PoolState } from '../../../controller/storage/pool-state.js';
import type { Cluster } from '../../../controller/model/clusters.js';
import type { DomainStatus, StorageDomain } from '../../../controller/model/storage.js';

const cluster = (poolId: string | null): Cluster => ({
  id: 'c1', name: 'default', policy: 'evenly_distributed', thresholds: {}, poolId, spmHostId: null, spmLver: null, createdAt: 0, updatedAt: 0,
});
const domain = (id: string, master: boolean, status: DomainStatus): StorageDomain => ({
  id, clusterId: 'c1', name: id, spec: { type: 'file', root: `/s/${id}` }, master, status, sizeBytes: null, freeBytes: null, hosts: {}, createdAt: 0, updatedAt: 0,
});

t.test('poolOf: no pool before the cluster has a pool id and a created master; then every created domain', async (t) => {
  t.equal(poolOf(cluster(null), [domain('m', true, 'active')]), null, 'no pool id yet');
  t.equal(poolOf(cluster('p'), [domain('m', true, 'pending')]), null, 'the master is still being created');
  t.equal(poolOf(cluster('p'), [domain('m', true, 'failed'), domain('x', false, 'active')]), null, 'the master failed: no pool (a regular domain is no master)');
  const plan = poolOf(cluster('p'), [domain('m', true, 'inactive'), domain('a', false, 'active'), domain('b', false, 'pending'), domain('f', false, 'failed')]);
  t.same(plan, { clusterId: 'c1', poolId: 'p', masterId: 'm', domains: { m: { type: 'file', root: '/s/m' }, a: { type: 'file', root: '/s/a' } } },
    'created domains only (active or inactive), whatever the hosts see of them');
});

t.test('hostDomainStatus: what GET /storage-domains/{id} says for each host', async (t) => {
  const s = new PoolState();
  t.equal(hostDomainStatus(undefined, 'm'), 'unknown: not observed yet');
  const v = (patch: Parameters<PoolState['update']>[2]) => s.update('h', 'p', patch, 1);
  t.equal(hostDomainStatus(v({ state: 'unknown', error: 'host Connecting' }), 'm'), 'unknown: host Connecting');
  t.equal(hostDomainStatus(v({ state: 'connecting' }), 'm'), 'connecting');
  t.equal(hostDomainStatus(v({ state: 'disconnected', error: 'StoragePool.connect: 358 gone' }), 'm'), 'not connected: StoragePool.connect: 358 gone');
  const connected = v({ state: 'connected', error: null, domains: { m: { valid: true, code: 0, acquired: true }, a: { valid: true, code: 0, acquired: false }, u: { valid: false, code: 379, error: 'no VG', acquired: false } } });
  t.same(['m', 'a', 'u', 'new'].map((sd) => hostDomainStatus(connected, sd)),
    ['active', 'active (host id not yet acquired)', 'unreachable: 379 no VG', 'not attached: the host is connected to the pool without this domain']);
  t.same(s.unreachable('h'), ['u'], 'only the domain the host reports unreadable counts against its fitness (not one it was not given)');
  t.ok(s.isConnected('h', 'p') && !s.isConnected('h', 'other'), 'connected to this pool, not another');
  s.update('h', 'other', { state: 'connected' }, 2);
  t.same(s.get('h')?.domains, {}, 'a view of another pool starts afresh');
});
