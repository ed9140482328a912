// VM NICs on host networks, end to end: a real agent inside a multi-host lab
// host (its own network namespace and libvirtd) creates a bridged network over
// a veth "nic" with Host.setupNetworks; the other end of the veth sits in a
// peer namespace. A VM created with `nics: [{network}]` lands on the
// network's bridge and answers a ping from the peer namespace; a NIC
// hotplugged onto the network gets its tap on the bridge and answers too (the
// peer learns its MAC), then unplugs. A network that does not exist, or is
// bridgeless, is refused with 27 naming the field.
//
// Addresses: 10.250.61.0/24 (bridged network) and 10.250.62.0/24 (bridgeless),
// only inside the lab host and our peer namespace.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bounded, testConfig, StatusWatch, tinyGuest } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { labDown, labUp, type LabHost } from '../../lab/multihost/lab.js';
import { RpcCallError, type HostvisorClient } from '../../../api/client/client.js';
import { connectLabClient, spawnLabAgent, type LabAgent } from '../storage/lab-agents.js';
import { ensureBlackhole, PREFIX, sh } from './netlab.js';

const echo = !!process.env['HV_TEST_LOG'];
const PEER = `${PREFIX}-vmnic-p`;
const NET = 'hvvmnet';
const RAW = 'hvvmraw';
const GUEST_MAC = '52:54:00:61:00:10';
const PLUG_MAC = '52:54:00:61:00:11';

async function must(argv: string[]): Promise<string> {
  const r = await sh(argv);
  if (r.rc !== 0) throw new Error(`${argv.join(' ')}: exit ${r.rc}: ${r.stderr}`);
  return r.stdout;
}

/**
 * From the peer namespace, lab addresses only; true once a reply comes (bounded retries while the guest settles).
 * One request per try (`-c 2` waited its 1 s interval even after an answer); 10 tries of at most 1.5 s
 * give the guest as long as the 5 tries of `-c 2` did.
 */
async function pingFromPeer(addr: string, tries = 10): Promise<boolean> {
  if (!addr.startsWith('10.250.')) throw new Error(`refusing to ping ${addr}`);
  for (let i = 0; i < tries; i++) {
    if ((await sh(['ip', 'netns', 'exec', PEER, 'busybox', 'ping', '-c', '1', '-W', '1', addr], 6_000)).rc === 0) return true;
    await sleep(500);
  }
  return false;
}

/** The ports of BR inside the lab host: name and MAC. */
async function bridgePorts(host: LabHost, br: string): Promise<{ ifname: string; address: string }[]> {
  return JSON.parse(await must(['ip', '-n', host.name, '-j', 'link', 'show', 'master', br]) || '[]') as { ifname: string; address: string }[];
}

const errOf = (e: unknown): { code: number; data: Record<string, unknown> } => {
  if (!(e instanceof RpcCallError)) throw e;
  return { code: e.code, data: (e.data ?? {}) as Record<string, unknown> };
};

t.test('a VM NIC on a host network answers a ping from a peer namespace; hotplug puts its tap on the bridge', async (t) => {
  await ensureBlackhole();
  const tUp = performance.now();
  const [host] = await labUp(1);
  t.teardown(() => bounded('labDown', labDown(), 120_000));
  t.comment(`lab up in ${((performance.now() - tUp) / 1000).toFixed(1)} s`);

  // The host's two "nics": veth pairs from the lab host into our peer namespace.
  await sh(['ip', 'netns', 'del', PEER]);
  await must(['ip', 'netns', 'add', PEER]);
  t.teardown(() => bounded('peer netns', sh(['ip', 'netns', 'del', PEER])));
  await must(['ip', '-n', PEER, 'link', 'set', 'lo', 'up']);
  for (const [nic, peer, addr] of [['hvnic61', 'vmpeer61', '10.250.61.254/24'], ['hvnic62', 'vmpeer62', '10.250.62.254/24']] as const) {
    await sh(['ip', '-n', host!.name, 'link', 'del', nic]); // a leftover of an earlier run
    await must(['ip', 'link', 'add', nic, 'netns', host!.name, 'type', 'veth', 'peer', 'name', peer, 'netns', PEER]);
    await must(['ip', '-n', PEER, 'addr', 'add', addr, 'dev', peer]);
    await must(['ip', '-n', PEER, 'link', 'set', peer, 'up']);
    await must(['ip', '-n', host!.name, 'link', 'set', nic, 'up']);
  }
  t.teardown(() => bounded('lab host links', (async () => { for (const l of [NET, 'hvnic61', 'hvnic62']) await sh(['ip', '-n', host!.name, 'link', 'del', l]); })()));

  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}-vmnic-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = await testConfig({
    'rpc.host': '0.0.0.0', 'rpc.port': 54321,
    'network.confDir': join(dir, 'netconf'), 'network.runDir': join(dir, 'run'), 'network.resolvConf': join(dir, 'resolv.conf'),
    'vm.hotunplugTimeoutMs': 20_000,
  });
  const agents: LabAgent[] = [];
  t.teardown(async () => { for (const a of agents) await bounded('agent stop', a.stop()); });
  const agent = await spawnLabAgent(host!, config, { echo });
  agents.push(agent);
  const client: HostvisorClient = await connectLabClient(agent);
  t.teardown(() => bounded('client close', client.close()));
  const watch = new StatusWatch(client);

  // The networks, through the agent's API.
  const setup = await client.call('Host.setupNetworks', {
    networks: {
      [NET]: { nic: 'hvnic61', ipv4: { bootproto: 'none', ipaddr: '10.250.61.1', prefix: 24 } },
      [RAW]: { nic: 'hvnic62', bridged: false, ipv4: { bootproto: 'none', ipaddr: '10.250.62.1', prefix: 24 } },
    },
    bondings: {}, options: { connectivityCheck: false },
  });
  t.same(setup.networks.added.sort(), [NET, RAW], 'Host.setupNetworks added both networks');
  t.ok(await pingFromPeer('10.250.61.1'), 'the host answers on the bridged network from the peer namespace');

  // Bad networks are refused before anything is started, naming the field.
  const vms: string[] = [];
  t.teardown(async () => { for (const id of vms) await bounded('VM.destroy', client.call('VM.destroy', { vmID: id })); });
  const bad = tinyGuest('hv-it-vmnic-bad', { nics: [{ network: 'hvnosuch' }] });
  const e1 = errOf(await client.call('VM.create', { vmID: bad.vmID, spec: bad.spec }).then(() => undefined, (e: unknown) => e));
  t.match(e1, { code: 27, data: { field: 'params.spec.nics[0].network', network: 'hvnosuch', reason: 'noNetwork' } }, 'a network that does not exist: 27, naming the field');
  const raw = tinyGuest('hv-it-vmnic-raw', { nics: [{ bridge: NET }, { network: RAW }] });
  const e2 = errOf(await client.call('VM.create', { vmID: raw.vmID, spec: raw.spec }).then(() => undefined, (e: unknown) => e));
  t.match(e2, { code: 27, data: { field: 'params.spec.nics[1].network', reason: 'bridgeless' } }, 'a bridgeless network: 27, naming the field');
  const both = tinyGuest('hv-it-vmnic-both', { nics: [{ network: NET, bridge: NET }] });
  const e3 = errOf(await client.call('VM.create', { vmID: both.vmID, spec: both.spec }).then(() => undefined, (e: unknown) => e));
  t.match(e3, { code: -32602, data: { field: 'params.spec.nics[0].network' } }, 'bridge and network together: invalid params');
  t.same((await client.call('Host.getVMList', {})).vmList.map((v) => v.vmId).filter((id) => [bad.vmID, raw.vmID, both.vmID].includes(id)), [], 'no VM was left behind');

  // The guest: eth0 on the network with a static address; it waits for a hotplugged
  // eth1 and configures it too. arp_ignore=1: each NIC answers ARP only for its own
  // address, so the peer learning PLUG_MAC for .11 proves the hotplugged NIC carries it.
  const script = 'echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; '
    + 'while [ ! -e /sys/class/net/eth1 ]; do sleep 0.1; done; '
    + 'ip link set eth1 up && ip addr add 10.250.61.11/24 dev eth1 && echo "LAB-ETH1-UP $(cat /sys/class/net/eth1/address)"';
  const g = tinyGuest(`hv-it-vmnic-${process.pid}`, {
    cmdline: ['lab.ip=10.250.61.10/24', `lab.sh=${Buffer.from(script).toString('base64')}`],
    nics: [{ network: NET, mac: GUEST_MAC }],
  });
  vms.push(g.vmID);
  const tCreate = performance.now();
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 60_000);
  const net = await waitForSerialMarker(g.serial, /LAB-NET-(UP|FAIL)/, 60_000);
  t.match(net.line, /LAB-NET-UP 10\.250\.61\.10\/24/, 'the guest brought eth0 up');
  t.comment(`VM.create to guest network up: ${((performance.now() - tCreate) / 1000).toFixed(1)} s`);
  const xml = (await client.call('Host.dumpxmls', { vmList: [g.vmID] })).domxmls[g.vmID]!;
  t.match(xml, new RegExp(`<interface type='bridge'>[\\s\\S]*?<mac address='${GUEST_MAC}'/>[\\s\\S]*?<source bridge='${NET}'/>|<interface type='bridge'>[\\s\\S]*?<source bridge='${NET}'/>[\\s\\S]*?<mac address='${GUEST_MAC}'/>`), 'the domain has a bridge interface on the network\'s bridge');
  const ports = await bridgePorts(host!, NET);
  t.ok(ports.some((p) => p.ifname === 'hvnic61'), 'the nic is a port of the bridge');
  t.ok(ports.some((p) => p.address === `fe${GUEST_MAC.slice(2)}`), `the VM's tap is a port of the bridge (${ports.map((p) => p.ifname).join(', ')})`);

  const tPing = performance.now();
  t.ok(await pingFromPeer('10.250.61.10'), 'the VM answers a ping from the peer namespace');
  t.comment(`first successful ping after ${((performance.now() - tPing) / 1000).toFixed(1)} s`);

  // Hotplug onto the network.
  const bogus = errOf(await client.call('VM.hotplugNic', { vmID: g.vmID, nic: { network: 'hvnosuch' } }).then(() => undefined, (e: unknown) => e));
  t.match(bogus, { code: 27, data: { field: 'params.nic.network' } }, 'hotplugNic onto a missing network: 27, naming the field');
  const plugged = await client.call('VM.hotplugNic', { vmID: g.vmID, nic: { network: NET, mac: PLUG_MAC } });
  t.match(plugged.xml, new RegExp(`<source bridge='${NET}'/>`), 'the hotplugged NIC\'s XML names the network\'s bridge');
  const after = await bridgePorts(host!, NET);
  t.ok(after.some((p) => p.address === `fe${PLUG_MAC.slice(2)}`), `the hotplugged NIC's tap is on the bridge (${after.map((p) => p.ifname).join(', ')})`);
  const eth1 = await waitForSerialMarker(g.serial, 'LAB-ETH1-UP', 30_000);
  t.match(eth1.line, PLUG_MAC, 'the guest sees the hotplugged NIC');
  t.ok(await pingFromPeer('10.250.61.11'), 'the hotplugged NIC\'s address answers from the peer namespace');
  const neigh = await must(['ip', '-n', PEER, 'neigh', 'show', '10.250.61.11', 'dev', 'vmpeer61']);
  t.match(neigh, PLUG_MAC, `the peer reached .11 at the hotplugged NIC's MAC (${neigh.trim()})`);

  await client.call('VM.hotunplugNic', { vmID: g.vmID, nic: { mac: PLUG_MAC } });
  t.notOk((await bridgePorts(host!, NET)).some((p) => p.address === `fe${PLUG_MAC.slice(2)}`), 'after hotunplug its tap has left the bridge');
  t.ok(await pingFromPeer('10.250.61.10'), 'the first NIC still answers');
});
