// canonicalize(): defaults, VDSM's flat names, and errors that name the field.
import t from 'tap';
import { InvalidParamsError } from '../../../api/errors.js';
import { canonicalize, type HostLink } from '../../../agent/network/canonicalize.js';
import type { NetConfigT } from '../../../agent/network/model.js';

const LINKS: HostLink[] = [
  { name: 'lo', kind: 'loopback' }, { name: 'eth0', kind: '' }, { name: 'eth1', kind: 'veth' },
  { name: 'eth2', kind: '' }, { name: 'virbr0', kind: 'bridge' }, { name: 'eth3', kind: '', master: 'virbr0' },
  { name: 'ovirtmgmt', kind: 'bridge' }, { name: 'tap0', kind: 'tun' },
];
const EMPTY: NetConfigT = { networks: {}, bondings: {} };
const RUNNING: NetConfigT = {
  networks: {
    ovirtmgmt: {
      nic: 'eth0', bridged: true, stp: false, mtu: 1500, defaultRoute: true, nameservers: [],
      ipv4: { bootproto: 'none', ipaddr: '10.250.1.5', prefix: 24, gateway: '10.250.1.254' }, ipv6: { autoconf: false, dhcpv6: false },
    },
  },
  bondings: {},
};

function fieldOf(req: unknown, running: NetConfigT = EMPTY): string {
  try {
    canonicalize(req, running, LINKS);
    return 'ok';
  } catch (e) {
    if (!(e instanceof InvalidParamsError)) throw e;
    t.match(e.message, `${(e.data as { field: string }).field}: `, 'the message starts with the field');
    return (e.data as { field: string }).field;
  }
}
const nets = (networks: Record<string, unknown>, options?: unknown) => ({ networks, bondings: {}, ...(options ? { options } : {}) });

t.test('defaults and canonical form', async (t) => {
  const r = canonicalize(nets({ vmnet: { nic: 'eth1' } }), EMPTY, LINKS);
  t.same(r.desired.networks['vmnet'], {
    nic: 'eth1', bridged: true, stp: false, mtu: 1500, defaultRoute: false, nameservers: [],
    ipv4: { bootproto: 'none' }, ipv6: { autoconf: false, dhcpv6: false },
  });
  t.same(r.options, { connectivityCheck: true, connectivityTimeoutMs: 4000, commitOnSuccess: false });
  t.same(r.networks, { added: ['vmnet'], changed: [], removed: [] });
  // VDSM's loose types and flat names.
  const flat = canonicalize(nets({ mgmt: { nic: 'eth1', bridged: 'false', mtu: '9000', vlan: '12', ipaddr: '10.250.3.4', netmask: '255.255.252.0', gateway: '10.250.0.1', defaultRoute: true, ipv6addr: '2001:DB8::0:1/64', ipv6gateway: '2001:db8::ff' } },
    { connectivityCheck: 'false', connectivityTimeout: '2.5', commitOnSuccess: true }), EMPTY, LINKS);
  t.same(flat.desired.networks['mgmt'], {
    nic: 'eth1', vlan: 12, bridged: false, stp: false, mtu: 9000, defaultRoute: true, nameservers: [],
    ipv4: { bootproto: 'none', ipaddr: '10.250.3.4', prefix: 22, gateway: '10.250.0.1' },
    ipv6: { address: '2001:db8::1/64', gateway: '2001:db8::ff', autoconf: false, dhcpv6: false },
  });
  t.same(flat.options, { connectivityCheck: false, connectivityTimeoutMs: 2500, commitOnSuccess: true });
  t.equal(canonicalize(nets({ ovirtmgmt: { nic: 'eth1' } }), EMPTY, LINKS.filter((l) => l.name !== 'ovirtmgmt')).desired.networks['ovirtmgmt']!.defaultRoute, true,
    'the management network gets defaultRoute by default');
});

t.test('defaultRoute moves to the network that asks for it', async (t) => {
  const r = canonicalize(nets({ other: { nic: 'eth1', defaultRoute: true, ipv4: { ipaddr: '10.250.2.1', prefix: 24, gateway: '10.250.2.254' } } }), RUNNING, LINKS);
  t.equal(r.desired.networks['ovirtmgmt']!.defaultRoute, false);
  t.equal(r.desired.networks['other']!.defaultRoute, true);
  t.equal(fieldOf(nets({
    a: { nic: 'eth1', defaultRoute: true },
    b: { nic: 'eth2', defaultRoute: true },
  })), 'networks.b.defaultRoute');
});

t.test('errors name the field', async (t) => {
  const v4 = (ipv4: unknown) => nets({ ovirtmgmt: { nic: 'eth0', ipv4 } });
  const cases: Array<[unknown, string, NetConfigT?]> = [
    [v4({ ipaddr: '10.250.1.5', netmask: '255.0.255.0' }), 'networks.ovirtmgmt.ipv4.netmask', RUNNING],
    [v4({ ipaddr: '10.250.1.5' }), 'networks.ovirtmgmt.ipv4.netmask', RUNNING],
    [v4({ ipaddr: '10.250.1.500', prefix: 24 }), 'networks.ovirtmgmt.ipv4.ipaddr', RUNNING],
    [v4({ ipaddr: '10.250.1.0', prefix: 24, gateway: '10.250.1.1' }), 'networks.ovirtmgmt.ipv4.ipaddr', RUNNING],
    [v4({ ipaddr: '10.250.1.5', prefix: 33 }), 'networks.ovirtmgmt.ipv4.prefix', RUNNING],
    [v4({ ipaddr: '10.250.1.5', prefix: 24, netmask: '255.255.0.0' }), 'networks.ovirtmgmt.ipv4.prefix', RUNNING],
    [v4({ ipaddr: '10.250.1.5', prefix: 24, gateway: '10.250.9.1' }), 'networks.ovirtmgmt.ipv4.gateway', RUNNING],
    [v4({ ipaddr: '10.250.1.5', prefix: 24 }), 'networks.ovirtmgmt.ipv4.gateway', RUNNING], // defaultRoute needs a gateway
    [v4({ bootproto: 'dhcp', ipaddr: '10.250.1.5', prefix: 24 }), 'networks.ovirtmgmt.ipv4.ipaddr', RUNNING],
    [v4({ bootproto: 'dhcp', gateway: '10.250.1.1' }), 'networks.ovirtmgmt.ipv4.gateway', RUNNING],
    [v4({ bootproto: 'static' }), 'networks.ovirtmgmt.ipv4.bootproto', RUNNING],
    [v4({ ipaddr: '10.250.1.5', prefix: 24, colour: 'red' }), 'networks.ovirtmgmt.ipv4.colour', RUNNING],
    [nets({ n: { nic: 'eth1', ipaddr: '10.250.1.5' } }), 'networks.n.netmask'],
    [nets({ n: { nic: 'eth1', ipaddr: '10.250.1.5', prefix: 24, ipv4: { bootproto: 'none' } } }), 'networks.n.ipaddr'],
    [nets({ n: { nic: 'eth1', ipv6: { address: '2001:db8::1' } } }), 'networks.n.ipv6.address'],
    [nets({ n: { nic: 'eth1', ipv6: { address: 'fe80::1/64' } } }), 'networks.n.ipv6.address'],
    [nets({ n: { nic: 'eth1', ipv6: { gateway: '2001:db8::1' } } }), 'networks.n.ipv6.gateway'],
    [nets({ n: { nic: 'eth1', ipv6: { dhcpv6: true } } }), 'networks.n.ipv6.dhcpv6'],
    [nets({ n: { nic: 'eth1', mtu: 67 } }), 'networks.n.mtu'],
    [nets({ n: { nic: 'eth1', mtu: 70000 } }), 'networks.n.mtu'],
    [nets({ n: { nic: 'eth1', mtu: 'big' } }), 'networks.n.mtu'],
    [nets({ n: { nic: 'nosuch' } }), 'networks.n.nic'],
    [nets({ n: { nic: 'virbr0' } }), 'networks.n.nic'],
    [nets({ n: { nic: 'eth3' } }), 'networks.n.nic'], // a port of an unmanaged bridge
    [nets({ n: { nic: 'eth1', bonding: 'bond0' } }), 'networks.n.bonding'],
    [nets({ n: { bridged: false } }), 'networks.n.nic'],
    [nets({ n: { nic: 'eth1', bridged: false, stp: true } }), 'networks.n.stp'],
    [nets({ averyveryverylongname: { nic: 'eth1' } }), 'networks.averyveryverylongname'],
    [nets({ 'bad name': { nic: 'eth1' } }), 'networks.bad name'],
    [nets({ virbr0: { nic: 'eth1' } }), 'networks.virbr0'], // an unmanaged device has that name
    [nets({ n: { nic: 'eth1', nameservers: ['8.8.8.8'] } }), 'networks.n.nameservers'], // not the defaultRoute network
    [nets({ n: { nic: 'eth1', defaultRoute: true, nameservers: ['not-an-ip'] } }), 'networks.n.nameservers'],
    [nets({ n: { nic: 'eth1', switch: 'ovs' } }), 'networks.n.switch'],
    [nets({ gone: { remove: true } }), 'networks.gone.remove'],
    [nets({ ovirtmgmt: { remove: true, nic: 'eth0' } }), 'networks.ovirtmgmt.nic', RUNNING],
    [{ networks: {}, bondings: { bond0: { remove: true } } }, 'bondings.bond0.remove'],
    [nets({}, { connectivityTimeout: -1 }), 'options.connectivityTimeout'],
    [nets({}, { connectivityTimeout: 99999 }), 'options.connectivityTimeout'],
    [nets({}, { bogus: 1 }), 'options.bogus'],
    [{ networks: [], bondings: {} }, 'networks'],
  ];
  for (const [req, field, running] of cases) t.equal(fieldOf(req, running), field, JSON.stringify(req).slice(0, 120));
});

t.test('remove and change', async (t) => {
  const r = canonicalize(nets({ ovirtmgmt: { remove: true } }), RUNNING, LINKS);
  t.same(r.desired, EMPTY);
  t.same(r.networks.removed, ['ovirtmgmt']);
  const c = canonicalize(nets({ ovirtmgmt: { nic: 'eth0', ipv4: { bootproto: 'dhcp' } } }), RUNNING, LINKS);
  t.same(c.networks.changed, ['ovirtmgmt']);
  t.same(c.desired.networks['ovirtmgmt']!.ipv4, { bootproto: 'dhcp' }, 'a network in the request is defined by its attributes alone');
  t.equal(fieldOf(nets({ ovirtmgmt: { nic: 'eth0' } }), RUNNING), 'ok', 'a managed bridge may be redefined');
});
