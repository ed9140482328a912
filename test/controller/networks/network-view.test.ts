// The networks view the health monitor and the scheduler ask, over a real SQLite store: which
// REQUIRED networks a host lacks (unknown is not missing; a network being applied does not flap
// a fit host, and does not clear an unfit one), and which cluster networks a host has.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetworkCapsT } from '../../../api/network.js';
import { ClusterNetworkView, NET_STATUS } from '../../../controller/networks/network-view.js';
import { Store } from '../../../controller/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'hv-netview-'));
const store = await Store.open({ engine: 'sqlite', path: join(dir, 'c.db') });
t.teardown(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
const cluster = (await store.clusters.get('default')).id;
const h1 = await store.hosts.create({ name: 'h1', address: 'h1.lab', port: 54321, clusterId: cluster, certFingerprint: 'fp-h1' });
const h2 = await store.hosts.create({ name: 'h2', address: 'h2.lab', port: 54321, clusterId: cluster, certFingerprint: 'fp-h2' });
const up = { up: true } as NetworkCapsT;
const has = (...names: string[]) => ({ networks: Object.fromEntries(names.map((n) => [n, up])) });

t.test('missingRequired and networksOnHost', async (t) => {
  const view = new ClusterNetworkView(store);
  const req = await store.networks.create({ clusterId: cluster, name: 'req', vlan: null, mtu: 1500, bridged: true, required: true, nics: { [h1.id]: 'eth1', [h2.id]: 'eth1' } });
  await store.networks.create({ clusterId: cluster, name: 'opt', vlan: null, mtu: 1500, bridged: true, required: false, nics: { [h1.id]: 'eth1' } });
  await view.refresh();
  t.same(view.missingRequired(h1.id), [], 'never observed: unknown, not missing');
  t.same(view.networksOnHost(h1.id), [], 'and no networks for the scheduler');

  view.observe(h1.id, has());
  view.observe(h2.id, has());
  t.same(view.missingRequired(h1.id), [], 'both pending: being applied, the hosts stay fit');
  await view.setStatus(req.id, h2.id, 'failed: no such nic');
  t.same(view.missingRequired(h2.id), ['req'], 'the attempt on h2 failed: missing there');
  t.same(view.missingRequired(h1.id), [], 'still applying on h1');

  await store.networks.update(req.id, { nics: { [h2.id]: 'eth2' } });
  await view.refresh();
  t.equal(view.statusOf(req.id, h2.id), NET_STATUS.pending, 'the corrected nic is pending again');
  t.same(view.missingRequired(h2.id), ['req'], 'but h2, already unfit for it, stays so until the network is really up');

  view.observe(h1.id, has('req', 'opt', 'stray'));
  view.observe(h2.id, has('req'));
  t.same([view.missingRequired(h1.id), view.missingRequired(h2.id)], [[], []], 'up on both: fit');
  t.same(view.networksOnHost(h1.id), ['opt', 'req'], 'networksOnHost: the cluster networks up on h1, not other managed ones');
  t.same(view.networksOnHost(h2.id), ['req']);

  // Two reads overlap: the one begun earlier (before a setup) answers last and must not win.
  const now = Date.now();
  view.observe(h1.id, has('req', 'opt'), now + 1_000);
  view.observe(h1.id, has(), now + 500);
  t.same(view.networksOnHost(h1.id), ['opt', 'req'], 'a read begun before the recorded one is dropped, though it ended later');
  t.same(view.missingRequired(h1.id), [], 'and h1 stays fit');
  view.observe(h1.id, has('req', 'opt', 'stray'), now + 2_000);

  await store.networks.update(req.id, { required: false });
  view.observe(h2.id, has());
  await view.refresh();
  t.same(view.missingRequired(h2.id), [], 'no longer required: not a reason');
});
