// Networks once per cluster, end to end (issue 11, must-show 4 up to the VM start): two lab
// hosts enrolled with tokens, real agents, real bridges in the hosts' own namespaces, the
// controller as the daemon builds it (REST server, ControllerRuntime with its HealthMonitor,
// the networks part installed). A REQUIRED network is applied to both through the REST API;
// on h2 the nic map names a nic h2 does not have, so h2 turns NonOperational with that reason
// while h1 is Up with the bridge, and the scheduler, given the hosts as the runtime sees them,
// places a VM needing the network on h1 and names the filter that excluded h2; a real VM with
// a NIC on the network, started through the REST API, goes to h1 and boots. Correcting the
// nic map through the API brings h2 back Up. Then: a VLAN network fails cleanly (this lab's
// kernel has no 802.1q), and a host whose agent restarted without its bridge gets it back from
// the reconciler.
import t from 'tap';
import { defaultDecisionSettings } from '../../../controller/decision-settings.js';
import { firstExclusion } from '../../../controller/scheduler/filters.js';
import { schedule } from '../../../controller/scheduler/schedule.js';
import type { SchedVm } from '../../../controller/scheduler/sched-types.js';
import { DATA_NIC, SECOND_NIC, labCluster, until, type LabCluster, type LabNode } from './lab-cluster.js';
import { GUEST_DIR, serialPathFor, waitForSerialMarker } from '../../lab/guest.js';

const echo = !!process.env['HV_TEST_LOG'];
const NET = 'hvreq';
const VLAN_NET = 'hvvlan';
const MID_NET = 'hvmid';
const HOOK_DELAY_S = 3;
/** Holds a setupNetworks of MID_NET in the agent for a while before it applies it: the controller is restarted meanwhile. */
const SLOW_HOOK = `#!/usr/bin/python3
import hooking, time
data = hooking.read_json()
if '${MID_NET}' in data['request'].get('networks', {}):
    time.sleep(${HOOK_DELAY_S})
hooking.write_json(data)
`;
const secs = (ms: number): string => (ms / 1000).toFixed(1);

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root (the multi-host lab makes namespaces)');
} else {
  const t0 = performance.now();
  const c = await labCluster({ echo, hooks: { before_network_setup: { '50_slow': SLOW_HOOK } }, leftovers: [NET, VLAN_NET, MID_NET] });
  t.teardown(async () => {
    for (const n of c.nodes) for (const dev of [NET, VLAN_NET, MID_NET]) await n.lab.exec(['ip', 'link', 'del', dev], { timeoutMs: 10_000 }).catch(() => undefined);
    await c.close();
  });
  const [h1, h2] = c.nodes as [LabNode, LabNode];
  const hostStatus = async (n: LabNode) => (await c.call('GET', `/api/v1/hosts/${n.hostId}`)).body as { status: string; reasons: string[] };
  await until('both hosts Up', async () => ((await hostStatus(h1)).status === 'Up' && (await hostStatus(h2)).status === 'Up') || undefined, 60_000);
  t.comment(`lab, controller and two enrolled agents up in ${secs(performance.now() - t0)} s`);
  const clusterId = (await c.call('GET', '/api/v1/clusters/default')).body.id as string;
  let networkId = '';

  const vmNeeding = (net: string): SchedVm => ({ vmId: `vm-needs-${net}`, clusterId, memoryMiB: 64, vcpus: 1, requiredNetworks: [net], pinnedHostId: null, needsPool: false });
  const place = async (net: string) => schedule({
    vm: vmNeeding(net), hosts: await c.schedHosts(clusterId),
    running: [], pending: [], policy: { name: 'evenly_distributed', highUtilizationPct: 80 },
  }, defaultDecisionSettings());

  await t.test('a REQUIRED network on both hosts: h2 cannot build it and is NonOperational with the reason; h1 is Up with the bridge', async (t) => {
    const tPost = performance.now();
    const post = await c.call('POST', '/api/v1/clusters/default/networks', { name: NET, required: true, nics: { h1: DATA_NIC, h2: 'hvdata9' } });
    t.equal(post.status, 202, 'POST answers 202 with the job');
    t.equal(post.headers['location'], `/api/v1/jobs/${post.body.id}`, 'and its Location');
    networkId = post.body.targetId;
    const job = await c.jobEnd(post.body.id);
    t.comment(`network.apply job ended ${job.state} in ${secs(performance.now() - tPost)} s: ${job.error?.message ?? ''}`);
    t.equal(job.state, 'failed', 'the job fails: one host could not get the network');
    t.equal(job.error?.code, 'NetworkNotApplied');
    t.match(job.error?.details?.failed, { h2: /no such nic "hvdata9"/ }, 'naming h2 and the agent\'s reason');
    t.notOk('h1' in (job.error?.details?.failed ?? {}), 'h1 is not among the failed');
    const steps = job.steps as { name: string; state: string; hostId?: string }[];
    t.same(steps.map((s) => [s.name, s.state, s.hostId]), [
      [`setupNetworks ${NET} on h1 (${DATA_NIC})`, 'succeeded', h1.hostId],
      ['setSafeNetworkConfig on h1', 'succeeded', h1.hostId],
      [`setupNetworks ${NET} on h2 (hvdata9)`, 'failed', h2.hostId],
    ], 'one step per action per host, each with its host');

    const net = (await c.call('GET', `/api/v1/networks/${networkId}`)).body;
    t.equal(net.hosts[h1.hostId], 'up', 'GET /networks/{id}: up on h1');
    t.match(net.hosts[h2.hostId], /^failed: .*no such nic "hvdata9"/, `failed on h2: ${net.hosts[h2.hostId]}`);

    const bridge = await c.link(h1, NET);
    t.ok(bridge, `h1 has the bridge ${NET}`);
    t.equal((await c.link(h1, DATA_NIC))?.master, NET, `${DATA_NIC} is its port`);
    const caps = await c.runtime.links.call(h1.hostId, 'Host.getNetworkCapabilities', {});
    t.equal(caps.netConfigDirty, false, 'and the config was persisted as the safe one (setSafeNetworkConfig)');
    t.equal(await c.link(h2, NET), undefined, `h2 has no ${NET}`);

    const nonOp = await until('h2 NonOperational', async () => {
      const h = await hostStatus(h2);
      return h.status === 'NonOperational' ? h : undefined;
    }, 15_000);
    t.comment(`h2 NonOperational ${secs(performance.now() - tPost)} s after the POST`);
    t.same(nonOp.reasons, [`required network ${NET} is not up on the host`], 'with the missing network as its reason (GET /hosts/{id})');
    t.equal((await hostStatus(h1)).status, 'Up', 'h1 stays Up');
    const events = (await c.call('GET', '/api/v1/events?since=0&limit=1000')).body.events as { subjectId: string; message: string }[];
    const transition = events.find((e) => e.subjectId === h2.hostId && e.message.includes(`required network ${NET} is not up`));
    t.ok(transition, `the transition is an event: ${transition?.message ?? '(none)'}`);
    t.same(c.networks.networksOnHost(h1.hostId), [NET], 'networksOnHost: h1 has it');
    t.same(c.networks.networksOnHost(h2.hostId), [], 'h2 has none');
  });

  await t.test('the scheduler, given the hosts as the runtime sees them, places a VM needing it on h1 and names the filter that excluded h2', async (t) => {
    const p = await place(NET);
    t.equal(p.hostId, h1.hostId, 'placed on h1');
    t.same(p.excluded.map((e) => [e.hostId, e.filter]), [[h2.hostId, 'hostUp']], 'h2 excluded by the hostUp filter');
    t.comment(`h2: ${p.excluded[0]?.reason ?? ''}`);
    // Were h2 Up, the networks filter would still keep the VM off it: the runtime's view says h2 lacks the network.
    const h2Sched = (await c.schedHosts(clusterId)).find((h) => h.hostId === h2.hostId)!;
    const asIfUp = firstExclusion({ host: { ...h2Sched, status: 'Up' }, vm: vmNeeding(NET), booked: { memoryMiB: 0, pendingMemoryMiB: 0, vcpus: 0, running: 0, pending: 0 },
      usableMemoryMiB: 1 << 20, hostReservedMemoryMiB: 0, requestedHostId: null });
    t.equal(asIfUp?.filter, 'networks', `and by the networks filter if it were Up (${asIfUp?.reason ?? ''})`);
  });

  await t.test('must-show 4: a VM whose NIC is on the network, started through the REST API, goes to h1 and boots there; asked onto h2 it gets 422 naming h2\'s filter', async (t) => {
    const name = 'net-vm';
    const spec = {
      memoryMiB: 128, vcpus: 1, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
      cmdline: 'console=ttyS0 quiet panic=-1 no_timer_check lab.end=wait', serialLog: serialPathFor(name), nics: [{ network: NET }],
    };
    const def = await c.call('POST', '/api/v1/vms', { name, spec });
    t.equal(def.status, 201, `defined${def.status === 201 ? '' : `: ${def.text}`}`);
    const vmId = def.body.id as string;
    const onH2 = await c.call('POST', `/api/v1/vms/${vmId}/start`, { host: 'h2' });
    t.equal(onH2.status, 422, 'a start asking for h2 is answered 422');
    const h2Why = (onH2.body?.details?.hosts ?? []).find((h: { hostName: string }) => h.hostName === 'h2');
    t.match(h2Why, { filter: 'hostUp', reason: /NonOperational/ }, `naming h2's filter: ${h2Why?.filter}: ${h2Why?.reason}`);
    const t0 = performance.now();
    const start = await c.call('POST', `/api/v1/vms/${vmId}/start`, {});
    t.equal(start.status, 202, 'a start without a host is accepted');
    const job = await c.jobEnd(start.body.id, 180_000);
    t.equal(job.state, 'succeeded', `the start job succeeds${job.error ? `: ${job.error.message}` : ''}`);
    const vm = (await c.call('GET', `/api/v1/vms/${vmId}`)).body;
    t.same([vm.status, vm.hostId], ['Up', h1.hostId], 'Up on h1');
    const ports = await h1.lab.exec(['ip', '-j', 'link', 'show', 'master', NET], { timeoutMs: 10_000 });
    const taps = (JSON.parse(ports.stdout || '[]') as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== DATA_NIC);
    t.equal(taps.length, 1, `its NIC is a port of ${NET} on h1 (${taps.join(', ')})`);
    await waitForSerialMarker(serialPathFor(name), 'LAB-BOOT-OK', 240_000);
    t.pass(`the guest booted (serial LAB-BOOT-OK) ${secs(performance.now() - t0)} s after the start`);
    const stop = await c.call('POST', `/api/v1/vms/${vmId}/stop`, {});
    t.equal((await c.jobEnd(stop.body.id, 60_000)).state, 'succeeded', 'stopped');
    // Deleting needs the VM seen Down, which the next look at h1's VM list gives.
    t.ok(await until('VM deleted', async () => ((await c.call('DELETE', `/api/v1/vms/${vmId}`)).status === 204 ? true : undefined), 30_000, 500), 'and deleted');
  });

  await t.test('the nic map corrected through the API: h2 gets the network and is Up again', async (t) => {
    const tFix = performance.now();
    const patch = await c.call('PATCH', `/api/v1/networks/${networkId}`, { nics: { h2: DATA_NIC } });
    t.equal(patch.status, 202, 'PATCH answers 202 with a network.apply job');
    const job = await c.jobEnd(patch.body.id);
    t.equal(job.state, 'succeeded', `the job succeeds${job.error ? `: ${job.error.message}` : ''}`);
    // The reconciler leaves a network with an apply job under way to the job (it may have read the new map a moment before the job existed, then h2 is 'already present').
    const byLoop = c.logs.some((l) => l.msg === 'cluster network set up on a host by the reconciler' && l.fields['hostId'] === h2.hostId);
    t.same(job.params?.memo?.outcomes, { h1: 'already present', h2: byLoop ? 'already present' : 'set up' }, `h1 was not set up again, h2 was${byLoop ? ' (by the reconciler, just before the job)' : ' (by the job)'}`);
    const up = await until('h2 Up', async () => ((await hostStatus(h2)).status === 'Up' ? true : undefined), 15_000);
    t.ok(up, `h2 Up ${secs(performance.now() - tFix)} s after the PATCH`);
    t.same((await hostStatus(h2)).reasons, [], 'with no reasons');
    t.equal((await c.link(h2, DATA_NIC))?.master, NET, `h2 has the bridge ${NET} on ${DATA_NIC}`);
    const net = (await c.call('GET', `/api/v1/networks/${networkId}`)).body;
    t.same([net.hosts[h1.hostId], net.hosts[h2.hostId]], ['up', 'up'], 'GET /networks/{id}: up on both');
    const p = await place(NET);
    t.same([p.excluded, p.scores.map((s) => s.hostId).sort()], [[], [h1.hostId, h2.hostId].sort()], 'the scheduler now has both hosts for the VM');
  });

  await t.test('a VLAN network fails cleanly where the kernel has no 802.1q, and is rolled back', async (t) => {
    const post = await c.call('POST', '/api/v1/clusters/default/networks', { name: VLAN_NET, vlan: 100, nics: { h1: DATA_NIC } });
    const job = await c.jobEnd(post.body.id);
    const net = (await c.call('GET', `/api/v1/networks/${post.body.targetId}`)).body;
    if (job.state === 'succeeded') {
      t.comment('this kernel has 802.1q: the VLAN network was set up');
      t.ok(await c.link(h1, `${DATA_NIC}.100`), 'the VLAN device exists');
      return;
    }
    t.comment(`no 802.1q here: ${net.hosts[h1.hostId]}`);
    t.match(net.hosts[h1.hostId], /^failed: /, 'h1\'s status for it says failed, with the agent\'s reason');
    t.match(job.error?.details?.failed, { h1: /agent error/ }, 'the job names h1 and the agent error');
    t.equal(await c.link(h1, VLAN_NET), undefined, 'no bridge left behind');
    t.equal(await c.link(h1, `${DATA_NIC}.100`), undefined, 'no VLAN device left behind');
    t.equal((await c.link(h1, DATA_NIC))?.master, NET, `${DATA_NIC} is still the port of ${NET}`);
    const h = await hostStatus(h1);
    t.equal(h.status, 'Up', 'h1 stays Up: the VLAN network is not required');
    t.same(c.networks.networksOnHost(h1.hostId), [NET], `networksOnHost(h1): ${NET} only`);
    // Level-triggered: the reconciler tries it again, not sooner than networkRetryIntervalMs after the job's attempt.
    const failedOn = (l: LabCluster['logs'][number]) => l.msg === 'cluster network not set up on a host' && l.fields['network'] === VLAN_NET;
    const byJob = c.logs.find((l) => failedOn(l) && l.fields['correlationId'] === job.correlationId);
    const retry = await until('a retry by the reconciler', async () => c.logs.find((l) => failedOn(l) && String(l.fields['correlationId']).startsWith('netrec')), 30_000);
    const gap = retry.at - (byJob?.at ?? 0);
    t.ok(byJob && gap >= c.settings.networkRetryIntervalMs, `retried by the reconciler ${secs(gap)} s after the job's attempt (networkRetryIntervalMs ${secs(c.settings.networkRetryIntervalMs)} s)`);
  });

  await t.test('an agent restarted without its bridge gets the network back from the reconciler', async (t) => {
    await h1.agent.kill();
    const del = await h1.lab.exec(['ip', 'link', 'del', NET], { timeoutMs: 10_000 });
    t.equal(del.code, 0, `${NET} deleted on h1 while its agent is down`);
    const tRestart = performance.now();
    await c.respawn(h1);
    const back = await until(`${NET} back on h1`, async () => ((await c.link(h1, DATA_NIC))?.master === NET ? true : undefined), 30_000);
    t.ok(back, `the bridge is back, ${DATA_NIC} its port, ${secs(performance.now() - tRestart)} s after the agent restarted`);
    // The reconciler logs it once setSafeNetworkConfig is done too, a moment after the bridge is back.
    const redone = await until('the reconciler\'s log line', async () => c.logs.find((l) => l.msg === 'cluster network set up on a host by the reconciler'
      && l.fields['hostId'] === h1.hostId && l.fields['network'] === NET), 10_000).catch(() => undefined);
    t.ok(redone, `set up by the reconciler after the agent reconnected (${redone ? JSON.stringify(redone.fields) : 'no log line'})`);
    await until('h1 Up', async () => ((await hostStatus(h1)).status === 'Up' ? true : undefined), 20_000);
    t.pass(`h1 Up ${secs(performance.now() - tRestart)} s after the restart`);
    const net = (await c.call('GET', `/api/v1/networks/${networkId}`)).body;
    t.equal(net.hosts[h1.hostId], 'up', 'GET /networks/{id}: up on h1 again');
  });

  await t.test('a host enrolled later gets the network on the nic of the map\'s "*" entry, from the reconciler', async (t) => {
    const patch = await c.call('PATCH', `/api/v1/networks/${networkId}`, { nics: { '*': DATA_NIC } });
    const job = await c.jobEnd(patch.body.id);
    t.equal(job.state, 'succeeded', 'PATCH nics {"*": hvdata0}: nothing to do on the two hosts, which have it');
    const oldId = h2.hostId;
    let tEnrolled = 0;
    await c.enrollAgain(h2, 'h2-again', async () => {
      const del = await h2.lab.exec(['ip', 'link', 'del', NET], { timeoutMs: 10_000 });
      t.equal(del.code, 0, `h2 removed from the controller, its agent stopped and its ${NET} bridge deleted`);
      tEnrolled = performance.now();
    });
    t.not(h2.hostId, oldId, `enrolled again with a new token as ${h2.name}: a new host to the controller`);
    await until(`${NET} on ${h2.name}`, async () => ((await c.link(h2, DATA_NIC))?.master === NET ? true : undefined), 30_000);
    t.pass(`the new host has the bridge ${NET} on ${DATA_NIC} ${secs(performance.now() - tEnrolled)} s after enrolling`);
    await until(`${h2.name} Up`, async () => ((await hostStatus(h2)).status === 'Up' ? true : undefined), 20_000);
    t.pass(`and is Up ${secs(performance.now() - tEnrolled)} s after enrolling`);
    const net = await until('status up for the new host', async () => {
      const n = (await c.call('GET', `/api/v1/networks/${networkId}`)).body;
      return n.hosts[h2.hostId] === 'up' ? n : undefined;
    }, 10_000);
    t.equal(net.nics[h2.hostId], undefined, 'the map does not name it: the "*" entry served');
    t.same(c.networks.networksOnHost(h2.hostId), [NET], 'networksOnHost: the new host has it');
  });

  await t.test('the controller restarted while its setupNetworks waits in the agent: the resumed job finds the network there, nothing is set up twice', async (t) => {
    const applied = () => h1.agent.logs.filter((l) => l.includes('"msg":"setupNetworks applied"') && l.includes(MID_NET)).length;
    const mark = c.logs.length;
    const agentMark = h1.agent.logs.length;
    const post = await c.call('POST', '/api/v1/clusters/default/networks', { name: MID_NET, nics: { h1: SECOND_NIC } });
    await until('the controller sends the setupNetworks', async () => c.logs.slice(mark).find((l) => l.msg === 'setting up a cluster network on a host' && l.fields['network'] === MID_NET), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    const tRestart = performance.now();
    await c.restartController();
    t.comment(`controller restarted in ${secs(performance.now() - tRestart)} s, while the agent's hook held the call (${HOOK_DELAY_S} s)`);
    const job = await c.jobEnd(post.body.id, 60_000);
    t.equal(job.state, 'succeeded', `the resumed job succeeds${job.error ? `: ${job.error.message}` : ''}`);
    const setupSteps = (job.steps as { name: string; state: string; detail?: string }[]).filter((s) => s.name === `setupNetworks ${MID_NET} on h1 (${SECOND_NIC})`);
    t.match(setupSteps, [{ state: 'failed', detail: /^interrupted/ }, { state: 'succeeded' }], 'its steps: the first run\'s setupNetworks interrupted, the resumed run\'s succeeded');
    t.same(job.params?.memo?.outcomes, { h1: 'already present', [h2.name]: 'not assigned (no nic given)' }, 'it found the network there on h1 and did not set it up again');
    const waited = c.logs.some((l) => l.msg === 'another setupNetworks runs on the host; waiting for it to end' && l.fields['network'] === MID_NET);
    t.comment(waited ? 'the resumed job met the first call still running (40) and waited for it' : 'the first call had ended when the resumed job looked');
    await until('the agent logs the change applied', async () => (applied() > 0 ? true : undefined), 15_000);
    t.equal(applied(), 1, 'the agent applied it exactly once: the new controller\'s requests confirmed the change the old one asked for');
    if (process.env['HV_DIAG']) {
      for (const l of h1.agent.logs.slice(agentMark).filter((x) => x.includes('etupNetworks'))) t.comment(`agent: ${l.slice(0, 400)}`);
      for (const l of c.logs.slice(mark).filter((x) => JSON.stringify(x).includes(MID_NET) || x.msg.includes('etupNetworks'))) t.comment(`controller: ${l.msg} ${JSON.stringify(l.fields).slice(0, 300)}`);
    }
    // (The failing VLAN network is retried on h1 meanwhile: its rollbacks say applyFailed.)
    const lost = h1.agent.logs.slice(agentMark).filter((l) => l.includes('"msg":"setupNetworks failed; rolling back"') && l.includes('connectivityLost'));
    t.same(lost, [], 'and no change was rolled back for want of a confirmation');
    t.equal((await c.link(h1, SECOND_NIC))?.master, MID_NET, `h1 has ${MID_NET} on ${SECOND_NIC}`);
    t.equal((await c.runtime.links.call(h1.hostId, 'Host.getNetworkCapabilities', {})).netConfigDirty, false, 'persisted as the safe config');
    t.equal((await c.call('GET', `/api/v1/networks/${post.body.targetId}`)).body.hosts[h1.hostId], 'up', 'GET /networks/{id}: up on h1');
  });
}
