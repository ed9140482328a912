// What a cluster network asks of a host (the setupNetworks request) and when the host has it as
// asked (the capabilities it reports): pure, table cases.
import t from 'tap';
import type { NetworkCapsT } from '../../../api/network.js';
import { hostSpec, mismatch, setupRequest, specKey, upNetworks } from '../../../controller/networks/desired.js';
import type { Network } from '../../../controller/model/networks.js';

const network: Network = {
  id: 'n1', clusterId: 'c1', name: 'vmnet', vlan: null, mtu: 1500, bridged: true, required: true,
  nics: { h1: 'eth1' }, hosts: { h1: 'pending' }, createdAt: 0, updatedAt: 0,
};

function caps(over: Partial<NetworkCapsT> = {}): NetworkCapsT {
  return {
    mtu: 1500, hwaddr: '', up: true, ipv4addrs: [], ipv6addrs: [], addr: '', netmask: '', gateway: '', ipv6gateway: '', dhcpv4: false,
    iface: 'vmnet', bridged: true, southbound: 'eth1', ports: ['eth1'], stp: false, nic: 'eth1', defaultRoute: false, switch: 'legacy', ...over,
  };
}

t.test('the request names the one network on its nic, with the connectivity check, and no IP config', async (t) => {
  const spec = hostSpec(network, 'h1')!;
  t.same(setupRequest(spec, 20_000), {
    networks: { vmnet: { nic: 'eth1', bridged: true, mtu: 1500 } }, bondings: {},
    options: { connectivityCheck: true, connectivityTimeout: 20 },
  });
  t.same(setupRequest(hostSpec({ ...network, vlan: 100, mtu: 9000, bridged: false }, 'h1')!, 4_000).networks, { vmnet: { nic: 'eth1', bridged: false, mtu: 9000, vlan: 100 } });
  t.equal(hostSpec(network, 'h2'), null, 'a host the nic map does not name gets nothing');
  const withDefault = { ...network, nics: { h1: 'eth1', '*': 'eth9' } };
  t.same([hostSpec(withDefault, 'h1')?.nic, hostSpec(withDefault, 'h7')?.nic], ['eth1', 'eth9'], 'the host\'s own entry first, else the "*" entry (a host enrolled later)');
  t.not(specKey(spec), specKey({ ...spec, nic: 'eth2' }), 'another nic is another request');
});

t.test('mismatch: null only when the network is there as asked and up', async (t) => {
  const spec = hostSpec(network, 'h1')!;
  const cases: [string, Record<string, NetworkCapsT>, string | null][] = [
    ['as asked', { vmnet: caps() }, null],
    ['absent', {}, 'not on the host'],
    ['on another nic', { vmnet: caps({ nic: 'eth2', southbound: 'eth2' }) }, 'on eth2, not on eth1'],
    ['bridgeless', { vmnet: caps({ bridged: false }) }, 'bridgeless, asked bridged'],
    ['tagged', { vmnet: caps({ vlanid: 7 }) }, 'VLAN 7, asked none'],
    ['other MTU', { vmnet: caps({ mtu: 9000 }) }, 'MTU 9000, asked 1500'],
    ['down', { vmnet: caps({ up: false }) }, 'vmnet is down'],
  ];
  for (const [name, networks, want] of cases) t.equal(mismatch({ networks }, spec), want, name);
  t.same(upNetworks({ networks: { b: caps(), a: caps(), down: caps({ up: false }) } }), ['a', 'b'], 'upNetworks: the ones up, sorted');
});
