// Host.setupNetworks through a real agent running in a throwaway host
// namespace, driven by an engine stand-in in the peer namespace over the veth
// "nics" (agent-lab.ts). Proves: a bridged network with a static IP and the
// default route is created, reported (getNetworkCapabilities and
// getCapabilities) and reachable; confirmation keeps a change; the
// before_network_setup hook rewrites a request, which is validated again; a
// bad request names the field and changes nothing; a concurrent call gets 40;
// a failed apply is rolled back, verified, and after_network_setup_fail runs.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { captureState, diff, formatDiff } from '../../../agent/network/state.js';
import { agentNetLab, hookRecords as hookRecordsOf, recordHook, setupConfirmed as setupConfirmedOn, within, PeerCallError, type AgentNetLab } from './agent-lab.js';
import { ensureBlackhole, sh, PREFIX } from './netlab.js';

const HOST = '10.250.215.1';
const GW = '10.250.215.254';
const DEVICES = ['hvmgmt', 'hvnic0', 'hvnic1', 'hvhk1', 'hvbadhk', 'hvbad', 'hvside', 'bond0', 'hvbond'];

// before_network_setup: networks named hvhk* get MTU 1400; hvbadhk* get an invalid MTU.
const REWRITE_HOOK = `#!/usr/bin/python3
import hooking
data = hooking.read_json()
for name, net in data['request'].get('networks', {}).items():
    if net.get('remove') in (True, 'true'):
        continue
    if name.startswith('hvhk'):
        net['mtu'] = 1400
    if name.startswith('hvbadhk'):
        net['mtu'] = 'huge'
hooking.write_json(data)
`;
let env: AgentNetLab;
t.before(async () => {
  env = await agentNetLab('ags', {
    nics: 2,
    // An installed host: its nic has an address the engine reaches it on; no managed network yet.
    prepare: async (lab) => {
      await lab.inHost(['ip', 'addr', 'add', `${HOST}/24`, 'dev', 'hvnic0']);
      await lab.inPeer(['ip', 'addr', 'add', `${GW}/24`, 'dev', 'peer0']);
    },
    hooks: {
      before_network_setup: { '50_rewrite': REWRITE_HOOK },
      after_network_setup: { '50_record': recordHook('after_network_setup') },
      after_network_setup_fail: { '50_record': recordHook('after_network_setup_fail') },
    },
  });
  await env.client.connect('engine', HOST);
});
t.teardown(async () => { await env?.cleanup(); });

type Caps = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const hookRecords = (point: string) => hookRecordsOf(env, point);
const netCaps = () => env.client.call<Caps>('engine', 'Host.getNetworkCapabilities');
const state = () => captureState(env.lab.ip, DEVICES);

const setupConfirmed = (params: unknown, confirmWith?: string) => setupConfirmedOn(env.client, 'engine', params, confirmWith);

async function refused(params: unknown): Promise<PeerCallError> {
  const e = await env.client.call('engine', 'Host.setupNetworks', params).then(() => undefined, (x: unknown) => x);
  if (!(e instanceof PeerCallError)) throw new Error(`expected an error, got ${JSON.stringify(e)}`);
  return e;
}

t.test('a bridged network over the veth nic with a static IP and the default route: created, reported, reachable', async (t) => {
  const before = await netCaps();
  t.same(Object.keys(before['networks']), [], 'no managed network yet');
  t.equal(before['nics']['hvnic0']['addr'], HOST, 'the nic carries the install-time address');
  t.equal(before['netConfigDirty'], false);

  const { result, confirms } = await setupConfirmed({
    networks: { hvmgmt: { nic: 'hvnic0', bridged: true, ipv4: { bootproto: 'none', ipaddr: HOST, netmask: '255.255.255.0', gateway: GW }, defaultRoute: true } },
    bondings: {}, options: { connectivityTimeout: 10 },
  });
  t.comment(`applied in ${JSON.stringify(result['phasesMs'])} ms per phase; ${confirms} confirmation(s) sent`);
  t.match(result, { status: 'applied', confirmed: true, networks: { added: ['hvmgmt'], changed: [], removed: [] }, committed: false, netConfigDirty: true });
  for (const phase of ['validate', 'snapshot', 'apply', 'confirm', 'persist']) t.type(result['phasesMs'][phase], 'number', `phase ${phase} timed`);
  t.ok((result['steps'] as string[]).some((s) => s.includes('link add name hvmgmt type bridge')), 'the bridge was created by an ip command');

  // The host namespace, seen by the test itself (not through the agent).
  const s = await state();
  t.match(s.links['hvmgmt'], { kind: 'bridge', up: true, mtu: 1500 });
  t.match(s.links['hvnic0'], { master: 'hvmgmt', up: true });
  t.same(s.addrs['hvmgmt'], [`${HOST}/24`], 'the address lives on the bridge');
  t.same(s.addrs['hvnic0'] ?? [], [], 'the port keeps no address');
  t.same(s.routes.filter((r) => r.dst === 'default').map((r) => [r.gateway, r.dev]), [[GW, 'hvmgmt']], 'the default route');

  const caps = await netCaps();
  t.match(caps['networks']['hvmgmt'], {
    iface: 'hvmgmt', bridged: true, southbound: 'hvnic0', ports: ['hvnic0'], addr: HOST, netmask: '255.255.255.0',
    ipv4addrs: [`${HOST}/24`], gateway: GW, defaultRoute: true, mtu: 1500, up: true, nic: 'hvnic0', switch: 'legacy',
  });
  t.match(caps['bridges']['hvmgmt'], { ports: ['hvnic0'], stp: 'off' });
  t.equal(caps['netConfigDirty'], true, 'not persisted yet');
  t.match(caps['lastSetup'], { outcome: 'applied', confirmed: true, networks: { added: ['hvmgmt'] } });
  const all = await env.client.call<Caps>('engine', 'Host.getCapabilities');
  t.match(all['networks']['hvmgmt'], { addr: HOST, gateway: GW, ports: ['hvnic0'] }, 'folded into getCapabilities');
  t.equal(all['netConfigDirty'], true);
  t.type(all['cpuModel'], 'string', 'beside the host facts');

  t.ok(await env.lab.ping(HOST), 'the peer namespace pings the network address');
  t.ok(await env.client.reaches(HOST), 'a new engine connection reaches the agent over the network');
  t.match(hookRecords('after_network_setup').at(-1)?.request, { networks: { hvmgmt: { nic: 'hvnic0' } } }, 'after_network_setup got the request');
  t.ok(env.logged('setupNetworks applied').some((l) => (l['phasesMs'] as Caps)['confirm'] !== undefined), 'the agent logged the phases');

  await env.client.call('engine', 'Host.setSafeNetworkConfig');
  t.equal((await netCaps())['netConfigDirty'], false, 'setSafeNetworkConfig clears netConfigDirty');
});

t.test('any request confirms: a change confirmed by Host.ping2 is kept past the timeout', async (t) => {
  const { result, confirms } = await setupConfirmed({
    networks: { hvmgmt: { nic: 'hvnic0', stp: true, ipv4: { bootproto: 'none', ipaddr: HOST, prefix: 24, gateway: GW }, defaultRoute: true } },
    bondings: {}, options: { connectivityTimeout: 3 },
  }, 'Host.ping2');
  t.match(result, { status: 'applied', confirmed: true, networks: { changed: ['hvmgmt'] } });
  t.comment(`confirmed by ping2 after ${result['phasesMs']['confirm']} ms (${confirms} ping2 sent)`);
  await sleep(3500); // past connectivityTimeout: nothing rolls it back later
  t.equal((await state()).links['hvmgmt']?.stp, true, 'STP still on after the timeout');
  const caps = await netCaps();
  t.equal(caps['networks']['hvmgmt']['stp'], true);
  t.equal(caps['bridges']['hvmgmt']['stp'], 'on');
  t.match(caps['lastSetup'], { outcome: 'applied', confirmed: true });
  t.ok(await env.lab.ping(HOST));
});

t.test('before_network_setup rewrites the request; the rewrite is validated and applied', async (t) => {
  const { result } = await setupConfirmed({ networks: { hvhk1: { nic: 'hvnic1', mtu: 1500 } }, bondings: {} });
  t.match(result, { status: 'applied', networks: { added: ['hvhk1'] } });
  t.type(result['phasesMs']['hooks'], 'number', 'the hook phase is timed');
  t.equal((await state()).links['hvhk1']?.mtu, 1400, 'the kernel has the MTU the hook chose, not the requested 1500');
  t.equal((await netCaps())['networks']['hvhk1']['mtu'], 1400);
  t.equal(hookRecords('after_network_setup').at(-1)?.request['networks']['hvhk1']['mtu'], 1400, 'after_network_setup sees the rewritten request');

  const removed = await setupConfirmed({ networks: { hvhk1: { remove: true } }, bondings: {} });
  t.match(removed.result, { networks: { removed: ['hvhk1'] } });
  t.notOk((await state()).links['hvhk1'], 'removing the network deletes its bridge');
  t.notOk((await netCaps())['networks']['hvhk1']);
});

t.test('a hook that leaves an invalid request aborts with 78 naming the field; nothing changed', async (t) => {
  const before = await state();
  const failsBefore = hookRecords('after_network_setup_fail').length;
  const e = await refused({ networks: { hvbadhk: { nic: 'hvnic1' } }, bondings: {} });
  t.equal(e.code, 78);
  t.equal(e.data?.['field'], 'params.networks.hvbadhk.mtu');
  t.match(e.message, /before_network_setup left an invalid request: networks\.hvbadhk\.mtu/);
  t.same(formatDiff(diff(before, await state())), [], 'links, addresses and routes unchanged');
  t.match((await netCaps())['lastSetup'], { outcome: 'refused', code: 78 });
  t.equal(hookRecords('after_network_setup_fail').length, failsBefore + 1, 'after_network_setup_fail ran');
});

t.test('a bad request is refused with -32602 naming the field, and nothing changes', async (t) => {
  const before = await state();
  const capsBefore = await netCaps();
  const cases: [unknown, string][] = [
    [{ networks: { hvbad: { nic: 'hvnic1', mtu: 'big' } }, bondings: {} }, 'params.networks.hvbad.mtu'],
    [{ networks: { hvbad: { nic: 'hvnic1', colour: 'red' } }, bondings: {} }, 'params.networks.hvbad.colour'],
    [{ networks: { hvbad: { nic: 'hvnic1', ipv4: { bootproto: 'none', ipaddr: '10.250.216.1', netmask: '255.0.255.0' } } }, bondings: {} }, 'params.networks.hvbad.ipv4.netmask'],
    [{ networks: { hvbad: { nic: 'nosuch9' } }, bondings: {} }, 'params.networks.hvbad.nic'],
    [{ networks: { hvbad: { nic: 'hvnic1', defaultRoute: true, ipv4: { bootproto: 'none', ipaddr: '10.250.216.1', prefix: 24, gateway: '10.250.217.1' } } }, bondings: {} }, 'params.networks.hvbad.ipv4.gateway'],
    [{ networks: {}, bondings: {}, options: { connectivityTimeout: 'soon' } }, 'params.options.connectivityTimeout'],
  ];
  for (const [params, field] of cases) {
    const e = await refused(params);
    t.equal(e.code, -32602, `${field}: invalid params`);
    t.equal(e.data?.['field'], field, `the error names ${field}`);
    t.match(e.message, field.replace(/^params\./, ''), `message: ${e.message}`);
  }
  t.same(formatDiff(diff(before, await state())), [], 'links, addresses and routes unchanged');
  const after = await netCaps();
  t.same(Object.keys(after['networks']), Object.keys(capsBefore['networks']), 'no network added');
  t.equal(after['netConfigDirty'], capsBefore['netConfigDirty'], 'the running config did not change');
});

t.test('a second setupNetworks while one runs gets 40', async (t) => {
  const mark = env.logs.length;
  const first = env.client.call<Caps>('engine', 'Host.setupNetworks', { networks: { hvside: { nic: 'hvnic1' } }, bondings: {}, options: { connectivityTimeout: 20 } }, 60_000);
  first.catch(() => undefined);
  // The first call has applied its change and now waits for confirmation: the confirmation below
  // must not land before that wait starts (right after apply's log line), or it does not count.
  t.ok(await within(async () => (await state()).links['hvside'] !== undefined, 10_000), 'the first call is under way');
  t.ok(await within(async () => env.logs.slice(mark).some((l) => l.includes('"msg":"network config applied"')), 10_000, 50) !== undefined, 'its change is applied: it waits for a confirmation');
  await env.client.connect('other', HOST);
  const e = await env.client.call('other', 'Host.setupNetworks', { networks: { hvbad: { nic: 'hvnic1' } }, bondings: {} }).then(() => undefined, (x: unknown) => x as PeerCallError);
  t.equal(e?.code, 40, 'unavailable');
  t.match(e?.message, /already running/);
  await env.client.call('other', 'Host.confirmConnectivity');
  const r = await first;
  t.match(r, { status: 'applied', confirmed: true }, 'the first call is unaffected (and confirmed by the engine)');
  await setupConfirmed({ networks: { hvside: { remove: true } }, bondings: {} });
  t.notOk((await state()).links['hvside']);
});

/** Whether this kernel can create a bond (tried in a scratch namespace). */
async function kernelHasBonding(): Promise<{ ok: boolean; why: string }> {
  await ensureBlackhole();
  const ns = `${PREFIX}-agprobe`;
  await sh(['ip', 'netns', 'add', ns]);
  try {
    const r = await sh(['ip', '-n', ns, 'link', 'add', 'b0', 'type', 'bond']);
    return { ok: r.rc === 0, why: r.stderr.trim() };
  } finally {
    await sh(['ip', 'netns', 'del', ns]);
  }
}
const bonding = await kernelHasBonding();

t.test('an apply the kernel refuses fails with 29, is rolled back and verified, and after_network_setup_fail runs', {
  skip: bonding.ok ? 'this kernel has bonding, so a bond is not a setup it refuses' : false,
}, async (t) => {
  const before = await state();
  const failsBefore = hookRecords('after_network_setup_fail').length;
  const e = await refused({
    bondings: { bond0: { nics: ['hvnic1'], options: 'mode=active-backup miimon=100' } },
    networks: { hvbond: { bonding: 'bond0', ipv4: { bootproto: 'none', ipaddr: '10.250.216.1', prefix: 24 } } },
    options: { connectivityTimeout: 3 },
  });
  t.comment(`message: ${e.message}`);
  t.equal(e.code, 29, 'networkSetupFailed');
  t.equal(e.data?.['reason'], 'applyFailed');
  t.match(e.data?.['rollback'], { verified: true, diff: [] }, 'the rollback was verified');
  t.match(e.message, /rolled back and verified/);
  t.same(formatDiff(diff(before, await state())), [], 'links, addresses and routes as before');
  t.match((await netCaps())['lastSetup'], { outcome: 'rolledBack', code: 29, reason: 'applyFailed', rollback: { verified: true } });
  const rec = hookRecords('after_network_setup_fail');
  t.equal(rec.length, failsBefore + 1, 'after_network_setup_fail ran');
  t.match(rec.at(-1)?.request, { bondings: { bond0: { nics: ['hvnic1'] } } }, 'with the request');
  t.ok(await env.lab.ping(HOST), 'the management network is untouched');
});

t.test('a bridged VLAN network over a bond through the agent', {
  skip: bonding.ok ? false : `this kernel lacks bonding ("${bonding.why}") and 802.1q; vlan-bond.test.ts unit-tests the command lines`,
}, async (t) => {
  const r = await setupConfirmed({
    bondings: { bond0: { nics: ['hvnic1'], options: 'mode=active-backup miimon=100' } },
    networks: { hvbond: { bonding: 'bond0', vlan: 10, ipv4: { bootproto: 'none', ipaddr: '10.250.216.1', prefix: 24 } } },
  });
  t.match(r.result, { status: 'applied' });
  t.match((await netCaps())['networks']['hvbond'], { bond: 'bond0', vlanid: 10 });
});
