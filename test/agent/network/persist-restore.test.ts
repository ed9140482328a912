// Removing a network; persisting with setSafeNetworkConfig; a simulated
// reboot (the links deleted, addresses and routes gone); restoreNetworks()
// brings back exactly the persisted state and drops what was not persisted.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { captureState, diff, formatDiff } from '../../../agent/network/state.js';
import { devicesOf } from '../../../agent/network/apply.js';
import { netLab, type NetLab } from './netlab.js';

let lab: NetLab;
t.before(async () => {
  lab = await netLab('persist', 3);
  for (const [i, p] of lab.peers.entries()) await lab.inPeer(['ip', 'addr', 'add', `10.250.21${i}.254/24`, 'dev', p]);
});
t.teardown(async () => { await lab?.cleanup(); });

const NO_CHECK = { connectivityCheck: false };
const v4 = (ipaddr: string, gateway?: string) => ({ bootproto: 'none' as const, ipaddr, prefix: 24, ...(gateway ? { gateway } : {}) });

t.test('remove a network', async (t) => {
  const nets = lab.networks();
  await nets.setupNetworks({ networks: { hvtmp: { nic: 'hvnic2', mtu: 1400, ipv4: v4('10.250.212.1') } }, bondings: {}, options: NO_CHECK });
  t.ok(await lab.ping('10.250.212.1'), 'reachable while it exists');
  const r = await nets.setupNetworks({ networks: { hvtmp: { remove: true } }, bondings: {}, options: NO_CHECK });
  t.same(r.request.networks.removed, ['hvtmp']);
  const s = await captureState(lab.ip, ['hvtmp', 'hvnic2']);
  t.notOk(s.links['hvtmp'], 'the bridge is gone');
  t.match(s.links['hvnic2'], { master: null, mtu: 1500 }, 'the nic is released with the default MTU');
  t.same(s.addrs['hvnic2'] ?? [], []);
  t.notOk(await lab.ping('10.250.212.1', 1), 'no longer reachable');
  t.same(Object.keys((await nets.store.running()).networks), []);
});

t.test('persist, reboot, restore-networks', async (t) => {
  const nets = lab.networks();
  // Persisted: a bridged defaultRoute network and a bridgeless one with its own MTU.
  await nets.setupNetworks({
    networks: {
      hvnet1: { nic: 'hvnic0', defaultRoute: true, ipv4: v4('10.250.210.1', '10.250.210.254') },
      hvnet2: { nic: 'hvnic1', bridged: false, mtu: 1400, ipv4: v4('10.250.211.1') },
    },
    bondings: {}, options: NO_CHECK,
  });
  await nets.setSafeNetworkConfig();
  t.notOk(await nets.netConfigDirty(), 'clean right after setSafeNetworkConfig');
  const safeText = await readFile(join(lab.dir, 'netconf', 'safe.json'), 'utf8');
  t.match(JSON.parse(safeText), { format: 1, config: { networks: { hvnet1: { nic: 'hvnic0' }, hvnet2: { bridged: false, mtu: 1400 } } } });
  const safe = (await nets.store.safe())!;
  const scope = devicesOf(safe);
  const persisted = await captureState(lab.ip, scope);

  // Not persisted: a third network, and a changed MTU on hvnet1.
  await nets.setupNetworks({
    networks: {
      hvnet3: { nic: 'hvnic2', ipv4: v4('10.250.212.1') },
      hvnet1: { nic: 'hvnic0', defaultRoute: true, mtu: 1300, ipv4: v4('10.250.210.1', '10.250.210.254') },
    },
    bondings: {}, options: NO_CHECK,
  });
  t.ok(await nets.netConfigDirty(), 'dirty after an unpersisted change');

  // Simulated reboot: bridges gone, nics down with no addresses, default MTU, no routes.
  for (const br of ['hvnet1', 'hvnet3']) await lab.ip.run(['link', 'del', 'dev', br]);
  for (const nic of lab.nics) {
    await lab.ip.run(['addr', 'flush', 'dev', nic]);
    await lab.ip.run(['link', 'set', 'dev', nic, 'mtu', '1500']);
    await lab.ip.run(['link', 'set', 'dev', nic, 'down']);
  }
  t.notOk(await lab.ping('10.250.210.1', 1), 'host unreachable after the "reboot"');

  const booted = lab.networks(); // a fresh process: only the files remain
  const t0 = performance.now();
  const rep = await booted.restoreNetworks(join(lab.dir, 'nets_restored'));
  t.comment(`restoreNetworks: ${Math.round(performance.now() - t0)} ms, ${rep.apply?.steps.length} steps`);
  t.same(rep.removedNetworks, ['hvnet3'], 'the unpersisted network is removed');
  t.same(rep.networks, ['hvnet1', 'hvnet2']);
  const restored = await captureState(lab.ip, scope);
  t.same(formatDiff(diff(persisted, restored)), [], 'exactly the persisted state (links, addresses, routes)');
  const extra = await captureState(lab.ip, ['hvnet3', 'hvnic2']);
  t.notOk(extra.links['hvnet3'], 'no bridge for the unpersisted network');
  t.same(extra.addrs['hvnic2'] ?? [], []);
  t.notOk(await booted.netConfigDirty(), 'running = safe after the restore');
  t.ok(await lab.ping('10.250.210.1'), 'hvnet1 reachable');
  t.ok(await lab.ping('10.250.211.1'), 'hvnet2 reachable');
  t.match(await readFile(join(lab.dir, 'nets_restored'), 'utf8'), /\d{4}-/, 'marker written');
});

t.test('restore with nothing persisted leaves the host alone', async (t) => {
  const fresh = lab.networks({ store: new (await import('../../../agent/network/persist.js')).NetConfStore(join(lab.dir, 'empty')) });
  const before = await captureState(lab.ip, ['hvnet1', 'hvnic0', 'hvnic1']);
  const rep = await fresh.restoreNetworks();
  t.equal(rep.restored, false);
  t.same(formatDiff(diff(before, await captureState(lab.ip, ['hvnet1', 'hvnic0', 'hvnic1']))), []);
});
