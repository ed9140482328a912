// Unit tests: snapshot diff, rollback convergence plans, verification,
// persistence files, the connectivity watch, address helpers.
import t from 'tap';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planLinksAndAddrs, planRoutes } from '../../../agent/network/converge.js';
import { abortReason, ConnectivityWatch } from '../../../agent/network/connectivity.js';
import { verifyConfig } from '../../../agent/network/apply.js';
import { inSubnet4, netmaskToPrefix, normalizeIpv6, parseIpv6Cidr, prefixToNetmask, subnetBounds4 } from '../../../agent/network/inet.js';
import { atomicWriteFile, NetConfStore } from '../../../agent/network/persist.js';
import type { NetConfigT } from '../../../agent/network/model.js';
import { diff, formatDiff, type RouteState, type Snapshot } from '../../../agent/network/state.js';

const route = (p: Partial<RouteState>): RouteState => ({ family: 4, type: 'unicast', dst: 'default', protocol: 'boot', scope: 'global', metric: 0, ...p });
const SNAP: Snapshot = {
  devices: ['br', 'eth0'],
  links: { br: { kind: 'bridge', mtu: 1500, master: null, up: true, stp: false }, eth0: { kind: 'veth', mtu: 1500, master: 'br', up: true } },
  addrs: { br: ['10.250.1.1/24'], eth0: [] },
  routes: [
    route({ dst: '10.250.1.0/24', dev: 'br', protocol: 'kernel', scope: 'link', prefsrc: '10.250.1.1' }),
    route({ gateway: '10.250.1.254', dev: 'br' }),
  ],
};

t.test('diff lists what differs, and nothing for equal snapshots', async (t) => {
  t.same(diff(SNAP, structuredClone(SNAP)), []);
  const b = structuredClone(SNAP);
  b.links['br']!.mtu = 9000;
  b.links['eth0']!.master = null;
  b.addrs['br'] = ['10.250.9.1/24'];
  b.routes = [route({ gateway: '10.250.9.254', dev: 'br' })];
  delete b.links['eth0'];
  t.same(formatDiff(diff(SNAP, b)), [
    'links.br.mtu: 1500 → 9000',
    'links.eth0: "present" → "absent"',
    'addrs.br: "10.250.1.1/24" → null',
    'addrs.br: null → "10.250.9.1/24"',
    'routes: "v4 unicast 10.250.1.0/24 dev br proto kernel scope link metric 0 src 10.250.1.1" → null',
    'routes: "v4 unicast default via 10.250.1.254 dev br proto boot scope global metric 0" → null',
    'routes: null → "v4 unicast default via 10.250.9.254 dev br proto boot scope global metric 0"',
  ]);
});

t.test('convergence plans undo a change', async (t) => {
  const now: Snapshot = {
    devices: ['br', 'eth0', 'br2'],
    links: {
      br: { kind: 'bridge', mtu: 1400, master: null, up: true, stp: true },
      eth0: { kind: 'veth', mtu: 1400, master: 'br2', up: true },
      br2: { kind: 'bridge', mtu: 1500, master: null, up: true, stp: false },
    },
    addrs: { br: ['10.250.9.1/24'], eth0: [], br2: ['10.250.3.1/24'] },
    routes: [route({ gateway: '10.250.9.254', dev: 'br' })],
  };
  const p = planLinksAndAddrs(SNAP, now);
  t.same(p.impossible, []);
  t.same(p.steps.map((s) => (s as { args: string[] }).args.join(' ')), [
    'link del dev br2',
    'link set dev eth0 mtu 1500',
    'link set dev eth0 master br',
    'link set dev br mtu 1500',
    'link set dev br type bridge stp_state 0',
    'addr del 10.250.9.1/24 dev br',
    'addr add 10.250.1.1/24 broadcast + dev br',
  ]);
  t.same(planRoutes(SNAP, now).map((s) => (s as { args: string[] }).args.join(' ')), [
    '-4 route del default via 10.250.9.254 dev br proto boot scope global metric 0',
    '-4 route add 10.250.1.0/24 dev br proto kernel scope link metric 0 src 10.250.1.1',
    '-4 route add default via 10.250.1.254 dev br proto boot scope global metric 0',
  ], 'deletions first; the default route last');
  // A bridge that vanished is recreated; a vanished nic is reported, not invented.
  const gone: Snapshot = { ...SNAP, links: {}, addrs: {}, routes: [] };
  const g = planLinksAndAddrs(SNAP, gone);
  t.same(g.steps.map((s) => (s as { args: string[] }).args.join(' ')), ['link add name br type bridge stp_state 0', 'link set dev br mtu 1500', 'link set dev br up', 'addr add 10.250.1.1/24 broadcast + dev br']);
  t.match(g.impossible, [/eth0: a veth that is gone cannot be recreated/]);
});

t.test('verifyConfig reports mismatches', async (t) => {
  const cfg: NetConfigT = {
    bondings: {},
    networks: {
      br: {
        nic: 'eth0', bridged: true, stp: false, mtu: 1500, defaultRoute: true, nameservers: [],
        ipv4: { bootproto: 'none', ipaddr: '10.250.1.1', prefix: 24, gateway: '10.250.1.254' }, ipv6: { autoconf: false, dhcpv6: false },
      },
    },
  };
  t.same(verifyConfig({ networks: {}, bondings: {} }, cfg, SNAP), []);
  const off = structuredClone(SNAP);
  off.links['br']!.up = false;
  off.addrs['eth0'] = ['10.250.5.5/24'];
  off.routes.push(route({ gateway: '10.250.1.253', dev: 'br', metric: 100 }));
  t.same(verifyConfig({ networks: {}, bondings: {} }, cfg, off), [
    'eth0: IPv4 ["10.250.5.5/24"], want []',
    'br: down',
    'default route (IPv4): unexpected via 10.250.1.253 dev br',
  ]);
});

t.test('persistence: atomic files, dirty flag', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hvtest-netconf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new NetConfStore(join(dir, 'netconf'));
  t.same(await store.running(), { networks: {}, bondings: {} });
  t.equal(await store.safe(), undefined);
  t.notOk(await store.isDirty(), 'nothing set, nothing persisted: clean');
  const cfg: NetConfigT = { networks: { n: { nic: 'eth0', bridged: true, stp: false, mtu: 1500, defaultRoute: false, nameservers: [], ipv4: { bootproto: 'dhcp' }, ipv6: { autoconf: false, dhcpv6: false } } }, bondings: {} };
  await store.writeRunning(cfg);
  t.ok(await store.isDirty());
  await store.setSafe();
  t.notOk(await store.isDirty());
  t.same(await store.safe(), cfg);
  t.same((await readdir(join(dir, 'netconf'))).sort(), ['running.json', 'safe.json'], 'no temp files left');
  await atomicWriteFile(join(dir, 'netconf', 'running.json'), '{"format":7}');
  await t.rejects(store.running(), /not a format-1 network config/, 'a foreign file is refused, not misread');
  t.equal(await readFile(join(dir, 'netconf', 'running.json'), 'utf8'), '{"format":7}');
});

t.test('connectivity watch', async (t) => {
  const w = new ConnectivityWatch();
  w.touch(); // before the wait: does not count
  const t0 = performance.now();
  t.equal(await w.waitForConfirmation(150), false);
  t.ok(performance.now() - t0 >= 140);
  const p = w.waitForConfirmation(5000);
  setTimeout(() => w.touch(), 50);
  const t1 = performance.now();
  t.equal(await p, true);
  t.ok(performance.now() - t1 < 1000, 'wakes at once');
  t.ok(w.sinceLastMs() < 1000);
});

t.test('connectivity watch: abort() ends every wait unconfirmed at once, and every later one', async (t) => {
  const w = new ConnectivityWatch();
  const t0 = performance.now();
  const waits = [w.waitForConfirmation(120_000), w.waitForConfirmation(60_000)];
  setTimeout(() => w.abort('the agent is stopping'), 50);
  t.same(await Promise.all(waits), [false, false], 'not confirmed');
  t.ok(performance.now() - t0 < 5000, `at the abort, not after the timeout (${Math.round(performance.now() - t0)} ms)`);
  t.ok(w.signal.aborted, 'the signal tells a change still applying to stop');
  t.equal(abortReason(w.signal), 'the agent is stopping');
  const t1 = performance.now();
  t.equal(await w.waitForConfirmation(120_000), false, 'a wait that starts after the abort');
  t.ok(performance.now() - t1 < 1000, 'ends at once');
  w.touch();
  t.equal(await w.waitForConfirmation(50), false, 'a touch does not undo the abort');
  t.equal(abortReason(new ConnectivityWatch().signal), undefined, 'a watch never aborted has no reason');
});

t.test('address helpers', async (t) => {
  t.equal(netmaskToPrefix('255.255.255.0'), 24);
  t.equal(netmaskToPrefix('255.255.252.0'), 22);
  t.equal(netmaskToPrefix('255.255.255.255'), 32);
  t.equal(netmaskToPrefix('255.0.255.0'), undefined);
  t.equal(netmaskToPrefix('nope'), undefined);
  t.equal(prefixToNetmask(20), '255.255.240.0');
  t.ok(inSubnet4('10.250.1.7', '10.250.1.0', 24));
  t.notOk(inSubnet4('10.250.2.7', '10.250.1.0', 24));
  t.same(subnetBounds4('10.250.1.7', 24), { network: '10.250.1.0', broadcast: '10.250.1.255' });
  t.equal(normalizeIpv6('2001:DB8:0:0::1'), '2001:db8::1');
  t.same(parseIpv6Cidr('2001:db8::1/64'), { address: '2001:db8::1', prefix: 64 });
  t.equal(parseIpv6Cidr('2001:db8::1/129'), undefined);
});
