// A bridged network over a veth "nic" with a static address and a default
// route: created, verified, reachable from the peer namespace. A bad request
// changes nothing.
import t from 'tap';
import { InvalidParamsError } from '../../../api/errors.js';
import { captureState, diff, formatDiff } from '../../../agent/network/state.js';
import { netLab, type NetLab } from './netlab.js';

let lab: NetLab;
t.before(async () => { lab = await netLab('static', 1); });
t.teardown(async () => { await lab?.cleanup(); });

const REQ = {
  networks: {
    hvnet1: {
      nic: 'hvnic0', bridged: true, mtu: 1500, defaultRoute: true,
      ipv4: { bootproto: 'none', ipaddr: '10.250.201.1', netmask: '255.255.255.0', gateway: '10.250.201.254' },
    },
  },
  bondings: {},
  options: { connectivityCheck: false },
};

t.test('bridge + static IP + default route: created, verified, reachable', async (t) => {
  await lab.inPeer(['ip', 'addr', 'add', '10.250.201.254/24', 'dev', 'peer0']);
  const nets = lab.networks();
  const t0 = performance.now();
  const r = await nets.setupNetworks(REQ);
  t.comment(`setupNetworks: ${Math.round(performance.now() - t0)} ms, ${r.apply.steps.length} steps, phases ${JSON.stringify(r.phasesMs)}`);
  t.same(r.request.networks.added, ['hvnet1']);
  t.equal(r.confirmed, null, 'no connectivity check asked');

  const s = await captureState(lab.ip, ['hvnet1', 'hvnic0']);
  t.match(s.links['hvnet1'], { kind: 'bridge', up: true, mtu: 1500, stp: false });
  t.match(s.links['hvnic0'], { kind: 'veth', master: 'hvnet1', up: true });
  t.same(s.addrs['hvnet1'], ['10.250.201.1/24']);
  t.same(s.addrs['hvnic0'] ?? [], [], 'the port carries no address');
  const defaults = s.routes.filter((x) => x.dst === 'default');
  t.same(defaults.map((x) => [x.gateway, x.dev]), [['10.250.201.254', 'hvnet1']], 'one default route, via the network');
  t.same(await lab.ip.bridgePorts('hvnet1'), ['hvnic0']);
  t.ok(await lab.ping('10.250.201.1'), 'the peer namespace pings the host network');
  t.same((await nets.store.running()).networks['hvnet1']?.ipv4, { bootproto: 'none', ipaddr: '10.250.201.1', prefix: 24, gateway: '10.250.201.254' }, 'running config updated');
  t.ok(await nets.netConfigDirty(), 'not persisted yet: dirty');

  const caps = await nets.capabilities();
  t.match(caps.networks['hvnet1'], {
    iface: 'hvnet1', bridged: true, southbound: 'hvnic0', ports: ['hvnic0'], mtu: 1500, addr: '10.250.201.1', netmask: '255.255.255.0',
    ipv4addrs: ['10.250.201.1/24'], gateway: '10.250.201.254', dhcpv4: false, defaultRoute: true, switch: 'legacy',
  }, 'reported in getNetworkCapabilities');
  t.match(caps.bridges['hvnet1'], { ports: ['hvnic0'], stp: 'off' });
  t.ok(caps.nics['hvnic0'], 'the veth nic is listed among nics');
  t.equal(caps.netConfigDirty, true);

  const again = await nets.setupNetworks(REQ);
  t.same(again.apply.steps.length, 0, 'the same request again changes nothing');
});

t.test('a bad request changes nothing and names the field', async (t) => {
  const nets = lab.networks();
  const before = await captureState(lab.ip, ['hvnet1', 'hvnic0']);
  const bad = structuredClone(REQ) as unknown as { networks: { hvnet1: { ipv4: { netmask: string } } } };
  bad.networks.hvnet1.ipv4.netmask = '255.0.255.0';
  const err = await nets.setupNetworks(bad).catch((e: unknown) => e);
  t.type(err, InvalidParamsError);
  t.equal((err as InvalidParamsError).code, -32602);
  t.same((err as InvalidParamsError).data, { field: 'networks.hvnet1.ipv4.netmask' });
  const e2 = await nets.setupNetworks({ networks: { hvnet2: { nic: 'nosuchnic' } }, bondings: {} }).catch((e: unknown) => e);
  t.same((e2 as InvalidParamsError).data, { field: 'networks.hvnet2.nic' });
  const after = await captureState(lab.ip, ['hvnet1', 'hvnic0']);
  t.same(formatDiff(diff(before, after)), [], 'state unchanged');
});

t.test('a second setupNetworks while one runs gets error 40', async (t) => {
  const nets = lab.networks();
  const first = nets.setupNetworks({ ...REQ, options: { connectivityCheck: true, connectivityTimeout: 1 } });
  const second = await nets.setupNetworks(REQ).catch((e: unknown) => e);
  t.equal((second as { code?: number }).code, 40);
  await first.catch(() => undefined);
  // An engine that keeps talking to the host: every request counts as a confirmation.
  const engine = setInterval(() => nets.connectivity.touch(), 100);
  const ok = await nets.setupNetworks({ ...REQ, options: { connectivityCheck: true, connectivityTimeout: 3 } }).finally(() => clearInterval(engine));
  t.equal(ok.confirmed, true, 'a confirmation within the timeout keeps the change');
});
