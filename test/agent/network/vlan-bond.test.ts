// VLANs and bonds. This lab's kernel has neither the 8021q nor the bonding
// driver, so the live tests probe for them and skip with that reason; the
// command lines they would run are unit-tested here, against a recorded runner.
import t from 'tap';
import { planChanges, describeStep, type Step } from '../../../agent/network/apply.js';
import { bondOptionArgs, canonicalBondOptions, cmd } from '../../../agent/network/commands.js';
import { Ip } from '../../../agent/network/ip.js';
import type { Runner } from '../../../agent/network/exec.js';
import type { NetConfigT, NetworkConfigT } from '../../../agent/network/model.js';
import type { Snapshot } from '../../../agent/network/state.js';
import { canonicalize } from '../../../agent/network/canonicalize.js';
import { captureState } from '../../../agent/network/state.js';
import { netLab, sh, ensureBlackhole, PREFIX } from './netlab.js';

const ipSteps = (steps: Step[]) => steps.filter((s) => s.op === 'ip').map((s) => (s as { args: string[] }).args.join(' '));
const liveNics = (...nics: string[]): Snapshot => ({
  devices: nics, addrs: {}, routes: [],
  links: Object.fromEntries(nics.map((n) => [n, { kind: '', mtu: 1500, master: null, up: true }])),
});
const net = (p: Partial<NetworkConfigT>): NetworkConfigT => ({
  bridged: true, stp: false, mtu: 1500, ipv4: { bootproto: 'none' }, ipv6: { autoconf: false, dhcpv6: false }, defaultRoute: false, nameservers: [], ...p,
});

t.test('command builders', async (t) => {
  t.same(cmd.vlanAdd('eth0', 100, 'eth0.100'), ['link', 'add', 'link', 'eth0', 'name', 'eth0.100', 'type', 'vlan', 'id', '100']);
  t.same(cmd.bondAdd('bond0', 'mode=802.3ad miimon=100 xmit_hash_policy=layer3+4'),
    ['link', 'add', 'name', 'bond0', 'type', 'bond', 'mode', '802.3ad', 'miimon', '100', 'xmit_hash_policy', 'layer3+4']);
  t.same(cmd.bondAdd('bond1', 'mode=active-backup', '52:54:00:aa:bb:cc'), ['link', 'add', 'name', 'bond1', 'address', '52:54:00:aa:bb:cc', 'type', 'bond', 'mode', 'active-backup']);
  t.same(cmd.bondSet('bond0', 'mode=802.3ad miimon=200'), ['link', 'set', 'dev', 'bond0', 'type', 'bond', 'miimon', '200'], 'mode is not changed live');
  t.same(new Ip({ netns: 'ns1' }).argv(cmd.vlanAdd('eth0', 5, 'eth0.5')), ['ip', '-n', 'ns1', 'link', 'add', 'link', 'eth0', 'name', 'eth0.5', 'type', 'vlan', 'id', '5']);
  t.same(new Ip().argv(cmd.up('bond0')), ['ip', 'link', 'set', 'dev', 'bond0', 'up']);
});

t.test('bond options are canonicalized VDSM-style', async (t) => {
  t.equal(canonicalBondOptions('miimon=100 mode=4'), 'mode=802.3ad miimon=100');
  t.equal(canonicalBondOptions(undefined), 'mode=balance-rr');
  t.equal(canonicalBondOptions('mode=1 xmit_hash_policy=2 lacp_rate=1'), 'mode=active-backup lacp_rate=fast xmit_hash_policy=layer2+3');
  t.same(bondOptionArgs('mode=balance-rr arp_ip_target=10.250.0.1,10.250.0.2'), ['mode', 'balance-rr', 'arp_ip_target', '10.250.0.1,10.250.0.2']);
  t.throws(() => canonicalBondOptions('mode=9'), /out of range/);
  t.throws(() => canonicalBondOptions('bogus=1'), /unknown bonding option/);
  t.throws(() => canonicalBondOptions('miimon=fast'), /not a number/);
  t.throws(() => canonicalBondOptions('miimon'), /KEY=VALUE/);
  t.throws(() => canonicalBondOptions('primary=$(reboot)'), /not allowed/);
});

t.test('plan: a bridged VLAN network over a new bond', async (t) => {
  const to: NetConfigT = {
    bondings: { bond0: { nics: ['eth1', 'eth2'], options: 'mode=802.3ad miimon=100' } },
    networks: { vnet: net({ bonding: 'bond0', vlan: 10, mtu: 9000, ipv4: { bootproto: 'none', ipaddr: '10.250.7.1', prefix: 24 } }) },
  };
  const steps = planChanges({ networks: {}, bondings: {} }, to, liveNics('eth1', 'eth2'));
  t.same(ipSteps(steps), [
    'link add name bond0 type bond mode 802.3ad miimon 100',
    'link set dev eth1 down', 'link set dev eth1 master bond0',
    'link set dev eth2 down', 'link set dev eth2 master bond0',
    'link set dev bond0 mtu 9000',
    'link add link bond0 name bond0.10 type vlan id 10',
    'link add name vnet type bridge stp_state 0',
    'link set dev bond0.10 master vnet',
    'link set dev bond0.10 mtu 9000', 'link set dev vnet mtu 9000',
    'link set dev eth1 up', 'link set dev eth2 up', 'link set dev bond0 up', 'link set dev bond0.10 up', 'link set dev vnet up',
    'addr add 10.250.7.1/24 broadcast + dev vnet',
  ]);
  t.comment(steps.map(describeStep).join('\n'));
});

t.test('plan: removing the VLAN network and the bond', async (t) => {
  const from: NetConfigT = {
    bondings: { bond0: { nics: ['eth1', 'eth2'], options: 'mode=balance-rr' } },
    networks: { vnet: net({ bonding: 'bond0', vlan: 10, bridged: false, ipv4: { bootproto: 'none', ipaddr: '10.250.7.1', prefix: 24 } }) },
  };
  const live: Snapshot = {
    devices: ['bond0', 'bond0.10', 'eth1', 'eth2'], routes: [],
    addrs: { 'bond0.10': ['10.250.7.1/24'] },
    links: {
      eth1: { kind: '', mtu: 1500, master: 'bond0', up: true },
      eth2: { kind: '', mtu: 1500, master: 'bond0', up: true },
      bond0: { kind: 'bond', mtu: 1500, master: null, up: true, bondMode: 'balance-rr' },
      'bond0.10': { kind: 'vlan', mtu: 1500, master: null, up: true, vlan: { link: 'bond0', id: 10 } },
    },
  };
  t.same(ipSteps(planChanges(from, { networks: {}, bondings: {} }, live)), ['link del dev bond0.10', 'link del dev bond0']);
  // A changed VLAN id recreates the VLAN device.
  const to2: NetConfigT = { ...from, networks: { vnet: { ...from.networks['vnet']!, vlan: 20 } } };
  t.same(ipSteps(planChanges(from, to2, live)).slice(0, 2), ['link del dev bond0.10', 'link add link bond0 name bond0.20 type vlan id 20']);
  // A changed bond mode recreates the bond, then re-enslaves.
  const to3: NetConfigT = { networks: {}, bondings: { bond0: { nics: ['eth1', 'eth2'], options: 'mode=active-backup' } } };
  const { 'bond0.10': _v, ...noVlan } = live.links;
  t.same(ipSteps(planChanges({ networks: {}, bondings: from.bondings }, to3, { ...live, links: noVlan })).slice(0, 3),
    ['link del dev bond0', 'link add name bond0 type bond mode active-backup', 'link set dev eth1 down']);
});

t.test('canonicalize: bonds and VLANs', async (t) => {
  const links = [{ name: 'eth1', kind: '' }, { name: 'eth2', kind: '' }, { name: 'eth3', kind: '' }];
  const empty = { networks: {}, bondings: {} };
  const field = (req: unknown) => { try { canonicalize(req, empty, links); return 'ok'; } catch (e) { return (e as { data?: { field?: string } }).data?.field; } };
  t.equal(field({ bondings: { bond0: { nics: ['eth1', 'eth2'], options: 'mode=4' } }, networks: { v: { bonding: 'bond0', vlan: 10 } } }), 'ok');
  t.equal(field({ bondings: { bond0: { nics: ['eth1', 'nope'] } } }), 'bondings.bond0.nics[1]');
  t.equal(field({ bondings: { bond0: { nics: [] } } }), 'bondings.bond0.nics');
  t.equal(field({ bondings: { bond0: { nics: ['eth1'], options: 'mode=42' } } }), 'bondings.bond0.options');
  t.equal(field({ bondings: { mybond: { nics: ['eth1'] } } }), 'bondings.mybond');
  t.equal(field({ bondings: { bond0: { nics: ['eth1'] }, bond1: { nics: ['eth1'] } } }), 'bondings.bond1.nics');
  t.equal(field({ bondings: { bond0: { nics: ['eth1'] } }, networks: { n: { nic: 'eth1' } } }), 'networks.n.nic');
  t.equal(field({ networks: { n: { bonding: 'bond9' } } }), 'networks.n.bonding');
  t.equal(field({ networks: { n: { nic: 'eth1', vlan: 4095 } } }), 'networks.n.vlan');
  t.equal(field({ networks: { n: { nic: 'eth1', vlan: 'x' } } }), 'networks.n.vlan');
  t.equal(field({ networks: { a: { nic: 'eth1', vlan: 7 }, b: { nic: 'eth1', vlan: 7 } } }), 'networks.b.vlan');
  t.equal(field({ networks: { a: { nic: 'eth1' }, b: { nic: 'eth1' } } }), 'networks.b.nic');
  t.equal(field({ networks: { a: { nic: 'eth1', mtu: 1500 }, b: { nic: 'eth1', vlan: 3, mtu: 9000 } } }), 'networks.b.mtu');
  t.equal(field({ networks: { n: { nic: 'eth3', vlan: 1000, bridged: false } } }), 'ok');
  const longNic = [{ name: 'enp129s0f1np1', kind: '' }];
  try { canonicalize({ networks: { n: { nic: 'enp129s0f1np1', vlan: 1000 } }, bondings: {} }, empty, longNic); t.fail('accepted'); } catch (e) {
    t.equal((e as { data?: { field?: string } }).data?.field, 'networks.n.vlan', 'VLAN device name over 15 characters');
  }
});

/** Whether this kernel can create a link of TYPE (tried in a scratch namespace). */
async function kernelSupports(type: 'bond' | 'vlan'): Promise<{ ok: boolean; why: string }> {
  await ensureBlackhole();
  const ns = `${PREFIX}-probe-${type}`;
  await sh(['ip', 'netns', 'add', ns]);
  try {
    const args = type === 'bond' ? ['link', 'add', 'b0', 'type', 'bond'] : ['link', 'add', 'link', 'v0', 'name', 'v0.5', 'type', 'vlan', 'id', '5'];
    if (type === 'vlan') await sh(['ip', '-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    const r = await sh(['ip', '-n', ns, ...args]);
    return { ok: r.rc === 0, why: r.stderr.trim() };
  } finally {
    await sh(['ip', 'netns', 'del', ns]);
  }
}

const bondOk = await kernelSupports('bond');
const vlanOk = await kernelSupports('vlan');
const liveSkip = !bondOk.ok || !vlanOk.ok
  ? `this kernel lacks ${[!bondOk.ok && `bonding ("${bondOk.why}")`, !vlanOk.ok && `802.1q VLANs ("${vlanOk.why}")`].filter(Boolean).join(' and ')}; the command lines are unit-tested above`
  : false;
if (liveSkip) t.comment(`SKIP live VLAN/bond test: ${liveSkip}`);

t.test('live: a bridged VLAN network over a bond', { skip: liveSkip }, async (t) => {
  const lab = await netLab('bond', 2);
  t.teardown(() => lab.cleanup());
  await lab.inPeer(['ip', 'link', 'add', 'pb', 'type', 'bridge']);
  for (const p of lab.peers) await lab.inPeer(['ip', 'link', 'set', p, 'master', 'pb']);
  await lab.inPeer(['ip', 'link', 'set', 'pb', 'up']);
  await lab.inPeer(['ip', 'link', 'add', 'link', 'pb', 'name', 'pb.10', 'type', 'vlan', 'id', '10']);
  await lab.inPeer(['ip', 'addr', 'add', '10.250.206.254/24', 'dev', 'pb.10']);
  await lab.inPeer(['ip', 'link', 'set', 'pb.10', 'up']);
  const nets = lab.networks();
  await nets.setupNetworks({
    bondings: { bond0: { nics: lab.nics, options: 'mode=active-backup miimon=100' } },
    networks: { vnet: { bonding: 'bond0', vlan: 10, ipv4: { bootproto: 'none', ipaddr: '10.250.206.1', prefix: 24 } } },
    options: { connectivityCheck: false },
  });
  const s = await captureState(lab.ip, ['bond0', 'bond0.10', 'vnet', ...lab.nics]);
  t.match(s.links['bond0.10'], { kind: 'vlan', master: 'vnet', vlan: { link: 'bond0', id: 10 } });
  t.match(s.links['bond0'], { kind: 'bond', bondMode: 'active-backup' });
  t.ok(await lab.ping('10.250.206.1'));
});

t.test('the recorded runner sees the namespace prefix', async (t) => {
  const seen: string[][] = [];
  const rec: Runner = async (argv) => { seen.push([...argv]); return { rc: 0, stdout: '', stdoutBuf: Buffer.alloc(0), stderr: '', ms: 0 }; };
  const ip = new Ip({ netns: 'hvtest-x', runner: rec });
  await ip.run(cmd.bondAdd('bond0', 'mode=balance-rr'));
  await ip.exec(['/bin/true']);
  t.same(seen, [['ip', '-n', 'hvtest-x', 'link', 'add', 'name', 'bond0', 'type', 'bond', 'mode', 'balance-rr'], ['ip', 'netns', 'exec', 'hvtest-x', '/bin/true']]);
});

t.test('plan: IPv6, nameservers, and moving the default route', async (t) => {
  const from: NetConfigT = { bondings: {}, networks: { a: net({ nic: 'eth1', defaultRoute: true, ipv4: { bootproto: 'none', ipaddr: '10.250.8.1', prefix: 24, gateway: '10.250.8.254' } }) } };
  const to: NetConfigT = {
    bondings: {},
    networks: {
      a: net({ nic: 'eth1', ipv4: { bootproto: 'none', ipaddr: '10.250.8.1', prefix: 24 } }),
      b: net({ nic: 'eth2', bridged: false, defaultRoute: true, nameservers: ['10.250.9.53'],
        ipv4: { bootproto: 'none', ipaddr: '10.250.9.1', prefix: 24, gateway: '10.250.9.254' },
        ipv6: { address: '2001:db8:9::1/64', gateway: '2001:db8:9::fe', autoconf: false, dhcpv6: false } }),
    },
  };
  const live: Snapshot = {
    devices: ['a', 'eth1', 'eth2'],
    links: { a: { kind: 'bridge', mtu: 1500, master: null, up: true, stp: false }, eth1: { kind: '', mtu: 1500, master: 'a', up: true }, eth2: { kind: '', mtu: 1500, master: null, up: true } },
    addrs: { a: ['10.250.8.1/24'] },
    routes: [{ family: 4, type: 'unicast', dst: 'default', gateway: '10.250.8.254', dev: 'a', protocol: 'boot', scope: 'global', metric: 0 }],
  };
  const steps = planChanges(from, to, live);
  t.same(ipSteps(steps), [
    'addr add 10.250.9.1/24 broadcast + dev eth2',
    'addr add 2001:db8:9::1/64 dev eth2',
    '-4 route del default via 10.250.8.254 dev a proto boot scope global metric 0',
    '-4 route replace default via 10.250.9.254 dev eth2',
    '-6 route replace default via 2001:db8:9::fe dev eth2',
  ]);
  t.match(steps.at(-1), { op: 'resolv', nameservers: ['10.250.9.53'] });
});
