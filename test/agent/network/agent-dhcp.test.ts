// DHCP through a real agent: dnsmasq in the peer namespace serves a second
// veth nic; the engine (peer namespace, over the first nic) asks for a bridged
// network with VDSM's flat `bootproto: dhcp`; the host gets an address and the
// default route from the lease, reports them, and answers a ping on it.
// Removing the network stops the DHCP client.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { captureState } from '../../../agent/network/state.js';
import { UdhcpcClient } from '../../../agent/network/dhcp.js';
import { Ip } from '../../../agent/network/ip.js';
import { agentNetLab, setupConfirmed, within, type AgentNetLab } from './agent-lab.js';
import { readText } from './netlab.js';

const MGMT = '10.250.217.1';
const DHCP_GW = '10.250.218.254';

type Caps = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
let env: AgentNetLab;
let leases = '';
t.before(async () => {
  env = await agentNetLab('agdh', {
    nics: 2,
    prepare: async (lab) => {
      await lab.inHost(['ip', 'addr', 'add', `${MGMT}/24`, 'dev', 'hvnic0']);
      await lab.inPeer(['ip', 'addr', 'add', '10.250.217.254/24', 'dev', 'peer0']);
      await lab.inPeer(['ip', 'addr', 'add', `${DHCP_GW}/24`, 'dev', 'peer1']);
      leases = join(lab.dir, 'dnsmasq.leases');
      lab.spawnInPeer(['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--interface=peer1', '--bind-interfaces', '--except-interface=lo',
        '--dhcp-range=10.250.218.50,10.250.218.60,255.255.255.0,1h', `--dhcp-option=option:router,${DHCP_GW}`,
        '--port=0', `--dhcp-leasefile=${leases}`, `--pid-file=${join(lab.dir, 'dnsmasq.pid')}`, '--user=root', '--log-facility=-'], join(lab.dir, 'dnsmasq.log'));
      if ((await within(async () => existsSync(leases), 5000, 50)) === undefined) throw new Error('dnsmasq did not start');
    },
  });
  await env.client.connect('engine', MGMT);
});
t.teardown(async () => { await env?.cleanup(); });

t.test('bootproto dhcp: the host gets an address and the default route from dnsmasq', async (t) => {
  const { result } = await setupConfirmed(env.client, 'engine', {
    networks: { hvdhcp: { nic: 'hvnic1', bootproto: 'dhcp', defaultRoute: true } }, bondings: {},
  });
  t.comment(`setupNetworks with DHCP: ${JSON.stringify(result['phasesMs'])}`);
  t.match(result, { status: 'applied', confirmed: true, networks: { added: ['hvdhcp'] } });
  const lease = result['leases']['hvdhcp'] as Caps;
  t.match(lease, { prefix: 24, router: DHCP_GW, leaseSec: 3600 }, 'the reply carries the lease');
  const last = Number(String(lease['address']).split('.')[3]);
  t.ok(String(lease['address']).startsWith('10.250.218.') && last >= 50 && last <= 60, `address ${lease['address']} from dnsmasq's range`);
  t.ok(result['steps'].includes('dhcp start on hvdhcp (default route)'));

  const s = await captureState(env.lab.ip, ['hvdhcp', 'hvnic1']);
  t.same(s.addrs['hvdhcp'], [`${lease['address']}/24`], 'the bridge has the leased address');
  t.same(s.routes.filter((r) => r.dst === 'default').map((r) => [r.gateway, r.dev]), [[DHCP_GW, 'hvdhcp']], 'and the default route from the lease');

  const caps = await env.client.call<Caps>('engine', 'Host.getNetworkCapabilities');
  t.match(caps['networks']['hvdhcp'], { dhcpv4: true, addr: lease['address'], netmask: '255.255.255.0', gateway: DHCP_GW, ports: ['hvnic1'] }, 'reported');
  t.ok(await env.lab.ping(lease['address']), 'the peer pings the leased address');
  t.match(await readText(leases), lease['address'], 'dnsmasq recorded the lease');
  // The agent runs inside the namespace, so its DHCP files are named for the host (no netns): host.hvdhcp.*.
  const client = new UdhcpcClient({ runDir: join(env.lab.dir, 'run') });
  const agentIp = new Ip();
  const running = await client.running(agentIp, 'hvdhcp');
  t.ok(running, 'the agent left its DHCP client running, to renew');

  await setupConfirmed(env.client, 'engine', { networks: { hvdhcp: { remove: true } }, bondings: {} });
  const after = await captureState(env.lab.ip, ['hvdhcp', 'hvnic1']);
  t.notOk(after.links['hvdhcp'], 'the bridge is gone');
  t.same(after.routes.filter((r) => r.dst === 'default'), [], 'no default route left');
  t.notOk(await client.running(agentIp, 'hvdhcp'), 'removing the network stopped the DHCP client');
  const gone = await within(async () => !existsSync(`/proc/${running!.pid}`) || (await readText(`/proc/${running!.pid}/stat`)).includes(') Z'), 5000);
  t.ok(gone !== undefined, `its process is gone (${gone} ms; stat now: "${(await readText(`/proc/${running!.pid}/stat`)).slice(0, 60)}")`);
  t.notOk((await env.client.call<Caps>('engine', 'Host.getNetworkCapabilities'))['networks']['hvdhcp']);
});
