// The health monitor against a real agent process over real mTLS, on libvirt's test driver with
// two managed VMs in its node (one running, one paused) and one made with VM.create. Short
// settings keep it fast: polls every 500 ms (bound 500 ms), a 5 s base grace (NonResponsive
// also needs more than 2 failed polls; +0.5 s per VM, oVirt's rule), the VM list every 2 s.
//
// A stopped agent (SIGSTOP, then kill -9) turns the host Connecting within 2 polls and
// NonResponsive after the grace, with its VMs handed on as Unknown (and reconcile then says
// Unknown, never Down); once the agent is back the host is Up and the VMs show their real
// status (after kill -9: the test driver's domains running again, the VM.create one gone with
// the old process); VM_status events reach the sink.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { AgentLinks } from '../../../controller/agents/agent-links.js';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { enrolledHost } from '../../../controller/health/host-status.js';
import { nonResponsiveGraceMs } from '../../../controller/health/grace.js';
import { HealthMonitor } from '../../../controller/monitor/health-monitor.js';
import type { VmObservation } from '../../../controller/monitor/observation-sink.js';
import { reconcileVm } from '../../../controller/reconcile/reconcile-vm.js';
import type { VmRecord } from '../../../controller/reconcile/vm-record.js';
import { agentOnNode, credentialsOf, endpointOf, fixedVmsNode } from '../agents/test-hosts.js';
import { RecordingSink } from './recording-sink.js';
import { activeResources, moreThan } from '../leak-check.js';

const POLL_MS = 500;
const settings = resolveDecisionSettings({
  pollIntervalMs: POLL_MS, pollTimeoutMs: POLL_MS, nonResponsiveGraceMs: 5_000, vmListIntervalMs: 2_000,
  agentKeepaliveMs: 1_000, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 2_000, agentCallTimeoutMs: 5_000,
});
/** Timers and the event loop run late on a shared, loaded 2-core machine; the poll counts below do not depend on it. */
const SLACK_MS = 1_000;

const node = fixedVmsNode();
const agent = await agentOnNode(node.nodeFile);
t.teardown(() => agent.stop());

const HOST = 'host-1';

async function monitored(t: Test): Promise<{ links: AgentLinks; monitor: HealthMonitor; sink: RecordingSink }> {
  const links = new AgentLinks({ credentials: credentialsOf(agent), settings });
  const sink = new RecordingSink();
  const monitor = new HealthMonitor({ agents: links, sink, settings });
  t.teardown(async () => { await monitor.close(); await links.close(); });
  links.set(endpointOf(HOST, agent));
  monitor.track(enrolledHost(HOST, Date.now()));
  monitor.start();
  return { links, monitor, sink };
}

function statusOf(o: VmObservation, vmId: string): string | undefined {
  return o.report.vms.get(vmId)?.status;
}

/** What reconcile makes of the host's report for a VM the store has running on it. */
function reconciled(o: VmObservation, vmId: string): string {
  const rec: VmRecord = { vmId, desired: 'running', hostId: HOST, status: 'Up', startInFlight: null, noted: null };
  return reconcileVm(rec, [o.report], Date.now(), settings).record.status;
}

/** Up, its list taken, a VM made with VM.create whose events came in: the start of both tests. */
async function upWithVms(t: Test, sink: RecordingSink, links: AgentLinks): Promise<string> {
  const up = await sink.waitHealth('first contact: Up', (o) => o.host.status === 'Up', 10_000);
  t.match(up.o.events[0], { kind: 'host.status', data: { from: 'Installing', to: 'Up' } }, 'Installing -> Up on first contact, as an event');
  t.ok(up.o.stats !== null && typeof up.o.stats.memTotal === 'number', 'with the host\'s stats');
  const listed = await sink.waitVms('the VM list', (o) => o.source === 'list' && o.report.vms.has(node.running), 5_000);
  t.same([statusOf(listed.o, node.running), statusOf(listed.o, node.paused)], ['Up', 'Paused'], 'the list shows the managed VMs as the agent has them: Up and Paused');

  const made = randomUUID();
  const mark = performance.now();
  await links.call(HOST, 'VM.create', { vmID: made, spec: { name: `mon-${made.slice(0, 8)}`, memoryMiB: 64, domainType: 'qemu' } });
  const ev = await sink.waitVms('VM_status Up event', (o) => o.source === 'event' && o.changes.some((c) => c.vmId === made && c.to === 'Up'), 10_000, mark);
  const seen = sink.vmObs.filter((x) => x.o.source === 'event' && x.at >= mark).flatMap((x) => x.o.changes.filter((c) => c.vmId === made).map((c) => c.to));
  t.ok(ev.o.report.status === 'Up', `the agent's VM_status events reach the sink (${seen.join(' -> ')})`);
  await sink.waitVms('a periodic list with the new VM', (o) => o.source === 'list' && statusOf(o, made) === 'Up', 2 * settings.vmListIntervalMs + SLACK_MS, ev.at);
  t.pass('and the periodic Host.getVMList lists it too');
  return made;
}

/** The agent stopped answering at `stoppedAt`: Connecting within 2 polls, NonResponsive after the grace, its VMs Unknown. */
async function lost(t: Test, sink: RecordingSink, stoppedAt: number, made: string): Promise<void> {
  const conn = await sink.waitHealth('Connecting', (o) => o.host.status === 'Connecting', 4 * POLL_MS, stoppedAt);
  const toConnecting = conn.at - stoppedAt;
  t.ok(toConnecting <= 2 * POLL_MS + SLACK_MS, `Connecting ${Math.round(toConnecting)} ms after the agent stopped (2 polls: ${2 * POLL_MS} ms)`);
  t.equal(conn.o.host.failedPolls, 1, 'at the first failed poll');
  const polls = sink.healths.filter((h) => h.at >= stoppedAt && h.at <= conn.at).length;
  t.ok(polls <= 2, `with the ${polls === 1 ? '1st' : '2nd'} poll after the stop (one sent just before it may still have been answered)`);
  t.match(conn.o.events[0], { kind: 'host.status', data: { from: 'Up', to: 'Connecting' } }, `with an event: ${conn.o.events[0]?.reason ?? ''}`);

  const vmCount = conn.o.host.vmCount;
  const graceMs = nonResponsiveGraceMs(settings, { isSpm: false, vmCount });
  const nr = await sink.waitHealth('NonResponsive', (o) => o.host.status === 'NonResponsive', graceMs + 4 * POLL_MS + 2_000, conn.at);
  const sinceContact = nr.o.host.statusSince - (nr.o.host.lastContactAt ?? 0);
  t.equal(vmCount, 3, 'the grace counts the 3 VMs the host ran');
  t.ok(sinceContact > graceMs && sinceContact <= graceMs + POLL_MS + SLACK_MS,
    `NonResponsive ${Math.round(sinceContact)} ms after the last answer (grace ${graceMs} ms: 5 s + 3 x 0.5 s)`);
  t.ok(nr.o.host.failedPolls > settings.nonResponsiveAttempts, `after ${nr.o.host.failedPolls} failed polls (more than ${settings.nonResponsiveAttempts})`);
  // Fixed rate while the agent hangs too: a poll that ends by its timeout (one period) must not push the next one a period back.
  const periods = Math.floor((nr.at - conn.at) / POLL_MS);
  const failedMeanwhile = nr.o.host.failedPolls - conn.o.host.failedPolls;
  // Every other period (the fault this guards against) is half; a loaded machine may skip a tick or two, never bunch them.
  t.ok(failedMeanwhile >= Math.floor(0.75 * periods), `a poll every period while it hangs: ${failedMeanwhile} more failed polls in the ${Math.round(nr.at - conn.at)} ms (${periods} periods) from Connecting to NonResponsive`);
  t.same(nr.o.events.map((e) => e.kind), ['host.status', 'host.vms-unknown'], 'events: the transition and the VMs Unknown');
  t.equal(nr.o.events[0]?.severity, 'error', 'NonResponsive is an error event');
  t.comment(`reason: ${nr.o.events[0]?.reason ?? ''}`);

  const unknown = await sink.waitVms('VMs Unknown', (o) => o.source === 'host-lost', 1_000, conn.at);
  t.equal(unknown.o.report.status, 'NonResponsive', 'the VM report handed on says the host is NonResponsive');
  t.same([node.running, node.paused, made].map((v) => statusOf(unknown.o, v)), ['Unknown', 'Unknown', 'Unknown'], 'all three VMs handed on as Unknown (the paused one too), none Down');
  t.same(unknown.o.changes.map((c) => c.to), ['Unknown', 'Unknown', 'Unknown'], 'and names the three as changed to Unknown');
  t.equal(reconciled(unknown.o, node.running), 'Unknown', 'reconcile on that report: the VM is Unknown, not Down');
}

t.test('SIGSTOP: Connecting within 2 polls, NonResponsive after the grace with its VMs Unknown; SIGCONT: Up, the VMs as they are', async (t) => {
  const { links, sink } = await monitored(t);
  const made = await upWithVms(t, sink, links);

  await agent.signal('SIGSTOP');
  t.teardown(() => agent.signal('SIGCONT'));
  await lost(t, sink, performance.now(), made);

  const backAt = performance.now();
  await agent.signal('SIGCONT');
  const up = await sink.waitHealth('Up again', (o) => o.host.status === 'Up', 10_000, backAt);
  t.ok(true, `Up ${Math.round(up.at - backAt)} ms after SIGCONT`);
  t.match(up.o.events[0], { kind: 'host.status', data: { from: 'NonResponsive', to: 'Up' } }, up.o.events[0]?.reason ?? '');
  const list = await sink.waitVms('a fresh list', (o) => o.source === 'list', 2_000, up.at);
  t.same([node.running, node.paused, made].map((v) => statusOf(list.o, v)), ['Up', 'Paused', 'Up'], 'the VMs show their real status again: Up, Paused, Up');
  t.equal(reconciled(list.o, node.running), 'Up', 'and reconcile says Up');
  t.same(sink.statuses(HOST), ['Up', 'Connecting', 'NonResponsive', 'Up'], 'the host went (Installing), Up, Connecting, NonResponsive, Up: no other state on the way');
  await links.call(HOST, 'VM.destroy', { vmID: made });
});

t.test('kill -9: Connecting within 2 polls, NonResponsive after the grace with its VMs Unknown; restarted: Up, the VMs as the new agent finds them', async (t) => {
  const { links, sink } = await monitored(t);
  const made = await upWithVms(t, sink, links);
  const resyncs: number[] = [];
  links.onResync((_h, n) => resyncs.push(n));

  const killedAt = performance.now();
  await agent.kill9();
  await lost(t, sink, killedAt, made);

  const backAt = performance.now();
  await agent.restart();
  const up = await sink.waitHealth('Up again', (o) => o.host.status === 'Up', 15_000, backAt);
  t.ok(true, `Up ${Math.round(up.at - backAt)} ms after the restart began (its start included)`);
  t.same(resyncs, [2], 'the link heard its 2nd connection (resync)');
  const list = await sink.waitVms('a fresh list', (o) => o.source === 'list', 2_000, up.at);
  t.same([statusOf(list.o, node.running), statusOf(list.o, node.paused)], ['Up', 'Paused'], 'the test driver\'s domains: running and paused again, as the new agent found them');
  t.equal(statusOf(list.o, made), undefined, 'the VM.create one is gone with the old process\'s in-memory driver: not listed');
  t.same(list.o.changes.filter((c) => c.vmId === made), [{ vmId: made, from: 'Unknown', to: null }], 'its change: Unknown -> no longer listed');
  t.equal(reconciled(list.o, made), 'Down', 'reconcile: Down only now, when an answering agent does not list it');
  t.equal(reconciled(list.o, node.paused), 'Paused', 'and the paused one Paused');
});

t.test('close() stops the loop: no timer or socket is left, and nothing reaches the sink afterwards', async (t) => {
  await new Promise((r) => setTimeout(r, 300)); // the previous tests' sockets finish closing
  const baseline = activeResources();
  const links = new AgentLinks({ credentials: credentialsOf(agent), settings });
  const sink = new RecordingSink();
  const monitor = new HealthMonitor({ agents: links, sink, settings });
  links.set(endpointOf(HOST, agent));
  monitor.track(enrolledHost(HOST, Date.now()));
  monitor.start();
  await sink.waitHealth('Up', (o) => o.host.status === 'Up', 10_000);
  await new Promise((r) => setTimeout(r, POLL_MS / 2)); // mid-period: the tick timer is pending, maybe a poll in flight
  t.ok(moreThan(activeResources(), baseline).includes('Timeout'), 'while running there are timers (so the check below can fail)');
  await monitor.close();
  await links.close();
  const observed = sink.healths.length + sink.vmObs.length;
  await new Promise((r) => setTimeout(r, 3 * POLL_MS));
  t.equal(sink.healths.length + sink.vmObs.length, observed, 'no observation after close()');
  t.same(moreThan(activeResources(), baseline), [], `no more timers or sockets than before (${JSON.stringify(activeResources())} vs ${JSON.stringify(baseline)})`);
});
