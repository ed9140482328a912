// VMs through the REST API on a controller built as main.ts builds it, with two real agents on
// libvirt's test driver (these tests need starts, stops and lost hosts, not guests). Short
// settings keep it fast: polls every 500 ms, a 3 s grace (NonResponsive also needs more than 2
// failed polls; +0.5 s per VM), the VM list every second.
//
// Start places and answers 202 (an explicit host too), the job creates the VM with the
// controller's id on the placed host and follows it to Up; a second start is 409, and so is a
// delete while it runs; stop and shutdown end Down and the agent no longer lists it; no host
// fits: 422 naming each host's filter; a host whose agent is stopped past the grace shows its
// VM Unknown (never Down) and refuses a start, then Up again; a VM destroyed behind the
// controller's back is Down with an event (the agent's state wins); a Hostvisor VM the store
// does not know is a stray event and is left running.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { AgentProcess } from '../../api/client/agent-process.js';
import { credentialsOf } from '../agents/test-hosts.js';
import { addLocalHosts, startController } from './controller-harness.js';
import type { Host } from '../../../controller/model/hosts.js';

t.setTimeout(240_000);
const settings = resolveDecisionSettings({
  pollIntervalMs: 500, pollTimeoutMs: 500, nonResponsiveGraceMs: 3_000, vmListIntervalMs: 1_000,
  agentKeepaliveMs: 1_000, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 2_000, agentCallTimeoutMs: 5_000,
  vmStartTimeoutMs: 20_000, hostFactsRefreshMs: 5_000,
});

// One after the other: the first makes the test PKI both use.
const agentA = await AgentProcess.start();
const agentB = await AgentProcess.start();
t.teardown(async () => { await agentA.stop(); await agentB.stop(); });
const c = await startController({ settings, credentials: credentialsOf(agentA) });
t.teardown(() => c.close());
const { api, until, jobEnd } = c;
const call = api.call;

const [hostA, hostB] = await addLocalHosts(c, [agentA.config['rpc.port'], agentB.config['rpc.port']]) as [Host, Host];

const agentOf = (hostId: string): AgentProcess => (hostId === hostA.id ? agentA : agentB);
async function listed(agent: AgentProcess, vmId: string): Promise<string | undefined> {
  const { HostvisorClient } = await import('../../../api/client/client.js');
  const cl = await HostvisorClient.connect({ ...agent.target, timeoutMs: 5_000 });
  try {
    return (await cl.call('Host.getVMList', {})).vmList.find((v) => v.vmId === vmId)?.status;
  } finally {
    await cl.close();
  }
}

async function defineVm(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call('POST', '/api/v1/vms', { body: { name, spec: { memoryMiB: 64, domainType: 'qemu' }, ...extra } });
  if (r.status !== 201) throw new Error(`define ${name}: ${r.status} ${r.text}`);
  return r.body.id as string;
}

async function startUp(vmId: string, body: Record<string, unknown> = {}): Promise<{ hostId: string; ms: number }> {
  const t0 = performance.now();
  const r = await call('POST', `/api/v1/vms/${vmId}/start`, { body });
  if (r.status !== 202) throw new Error(`start: ${r.status} ${r.text}`);
  const job = await jobEnd(r.headers.location as string);
  if (job.state !== 'succeeded') throw new Error(`start job ${job.state}: ${JSON.stringify(job.error)}`);
  const vm = (await call('GET', `/api/v1/vms/${vmId}`)).body;
  return { hostId: vm.hostId, ms: performance.now() - t0 };
}

t.test('start: 202 + Location, placed at request time, the job creates the VM with its id and follows it to Up', async (t) => {
  const id = await defineVm('life-1');
  const r = await call('POST', `/api/v1/vms/${id}/start`, { body: {} });
  t.same([r.status, r.body.kind, r.headers.location], [202, 'vm.start', `/api/v1/jobs/${r.body.id}`]);
  t.ok([hostA.id, hostB.id].includes(r.body.params.placement?.hostId), `the job carries its reservation: ${JSON.stringify(r.body.params.placement)}`);
  t.equal((await call('POST', `/api/v1/vms/${id}/start`)).status, 409, 'a second start while the first is under way: 409');
  const job = await jobEnd(r.headers.location as string);
  t.equal(job.state, 'succeeded', `job succeeded: ${job.steps.map((s) => `${s.name} ${s.endedAt! - s.startedAt!} ms`).join(', ')}`);
  const vm = (await call('GET', `/api/v1/vms/${id}`)).body;
  t.same([vm.status, vm.hostId, vm.desiredState], ['Up', r.body.params.placement.hostId, 'up'], 'GET shows Up on the placed host, as the agent reports it');
  t.equal(await listed(agentOf(vm.hostId), id), 'Up', 'the agent of that host lists the VM by the controller\'s id');
  const other = vm.hostId === hostA.id ? agentB : agentA;
  t.equal(await listed(other, id), undefined, 'and the other host does not');
  const placed = c.logs.find((l) => l.msg === 'placement: VM placed and reserved' && l.fields.vm === id);
  t.ok(placed && Array.isArray(placed.fields.scores) && (placed.fields.scores as unknown[]).length === 2, `the decision is logged with both hosts' scores: ${JSON.stringify(placed?.fields.scores)}`);
  const again = await call('POST', `/api/v1/vms/${id}/start`);
  t.same([again.status, again.body.code], [409, 'Conflict'], `a start of a running VM: 409 (${again.body.message})`);
  t.equal((await call('DELETE', `/api/v1/vms/${id}`)).status, 409, 'delete while it runs: 409');

  const stop = await call('POST', `/api/v1/vms/${id}/stop`, { body: {} });
  t.equal(stop.status, 202);
  t.equal((await jobEnd(stop.headers.location as string)).state, 'succeeded', 'stop job succeeded');
  const down = (await call('GET', `/api/v1/vms/${id}`)).body;
  t.same([down.status, down.hostId, down.desiredState], ['Down', null, 'down'], 'GET: Down, on no host');
  t.equal(await listed(agentOf(vm.hostId), id), undefined, 'the agent no longer has it');
  t.equal((await call('DELETE', `/api/v1/vms/${id}`)).status, 204, 'delete once Down: 204');
});

t.test('an explicit host is used, and validated by the same filters (422 naming the filter)', async (t) => {
  const id = await defineVm('life-host');
  const { hostId } = await startUp(id, { host: 'b' });
  t.equal(hostId, hostB.id, 'started on the host asked for');
  const big = await defineVm('life-big', { memoryReservationMiB: 4 * 1024 * 1024 });
  const r = await call('POST', `/api/v1/vms/${big}/start`, { body: { host: 'a' } });
  t.same([r.status, r.body.code], [422, 'NoPlacement'], r.body.message);
  const byHost = Object.fromEntries(r.body.details.hosts.map((h: { hostName: string; filter: string }) => [h.hostName, h.filter]));
  t.same(byHost, { a: 'memory', b: 'pinnedHost' }, 'host a excluded by memory, b because the start asks for a');
  t.equal((await call('GET', `/api/v1/vms/${big}`)).body.desiredState, 'down', 'a refused start leaves the VM meant down');
  t.equal(c.vms.reservations.list().length, 0, 'and no reservation behind');

  // A cluster network that no host has up (the agents report their networks; none here has it).
  await api.store.networks.create({ clusterId: hostA.clusterId, name: 'vmnet', vlan: null, mtu: 1500, bridged: true, required: false, nics: {} });
  const netVm = await defineVm('life-net', { spec: { memoryMiB: 64, domainType: 'qemu', nics: [{ network: 'vmnet' }] } });
  const n = await call('POST', `/api/v1/vms/${netVm}/start`);
  t.same([n.status, n.body.details?.hosts?.map((h: { filter: string }) => h.filter)], [422, ['networks', 'networks']], `a VM whose NIC needs a network no host has: 422, networks filter on each host (${n.body.details?.hosts?.[0]?.reason})`);

  const shut = await call('POST', `/api/v1/vms/${id}/shutdown`, { body: { timeoutSeconds: 5 } });
  const job = await jobEnd(shut.headers.location as string);
  t.equal(job.state, 'succeeded', `shutdown: ${job.steps.map((s) => s.name).join(', ')}`);
  t.ok(job.steps.some((s) => s.name === 'VM.shutdown' && s.state === 'succeeded'), 'through VM.shutdown');
  t.equal((await call('GET', `/api/v1/vms/${id}`)).body.status, 'Down');
  t.equal(await listed(agentB, id), undefined, 'the agent has forgotten it');
});

t.test('a VM destroyed behind the controller\'s back is Down with an event; a stray is an event and left running', async (t) => {
  const id = await defineVm('life-behind');
  const { hostId } = await startUp(id);
  const { HostvisorClient } = await import('../../../api/client/client.js');
  const cl = await HostvisorClient.connect({ ...agentOf(hostId).target, timeoutMs: 5_000 });
  t.teardown(() => cl.close());
  await cl.call('VM.destroy', { vmID: id });
  await until(`/api/v1/vms/${id}`, (a) => a.body.status === 'Down', 5_000, 'Down after the agent destroyed it');
  const ev = await until('/api/v1/events?limit=1000', (a) => a.body.events.some((e: { kind: string; subjectId: string }) => e.kind === 'vm.differs' && e.subjectId === id), 5_000, 'vm.differs');
  t.match(ev.body.events.find((e: { kind: string; subjectId: string }) => e.kind === 'vm.differs' && e.subjectId === id).message, /desired running, but Down/, 'an event says desired running, but Down: the agent\'s state stands');

  const stray = randomUUID();
  await cl.call('VM.create', { vmID: stray, spec: { name: `stray-${stray.slice(0, 8)}`, memoryMiB: 64, domainType: 'qemu' } });
  const s = await until('/api/v1/events?limit=1000', (a) => a.body.events.some((e: { kind: string; subjectId: string }) => e.kind === 'vm.stray' && e.subjectId === stray), 5_000, 'vm.stray');
  t.ok(s, 'a vm.stray event names it');
  await new Promise((r) => setTimeout(r, 2_000));
  t.equal(await listed(agentOf(hostId), stray), 'Up', 'and it still runs: never destroyed by the controller');
  const strayEvents = (await call('GET', '/api/v1/events?limit=1000')).body.events.filter((e: { kind: string; subjectId: string }) => e.kind === 'vm.stray' && e.subjectId === stray);
  t.equal(strayEvents.length, 1, 'one event while it lasts, though the lists keep showing it');
  await cl.call('VM.destroy', { vmID: stray });
});

t.test('its host\'s agent stopped past the grace: the VM is Unknown (never Down) and a start is refused; SIGCONT: Up again', async (t) => {
  const id = await defineVm('life-unknown');
  const { hostId } = await startUp(id, { host: 'a' });
  const stoppedAt = performance.now();
  await agentA.signal('SIGSTOP');
  t.teardown(() => agentA.signal('SIGCONT'));
  const seen: string[] = [];
  const unknown = await until(`/api/v1/vms/${id}`, (a) => { seen.push(a.body.status); return a.body.status === 'Unknown'; }, 15_000, 'Unknown');
  t.equal(unknown.body.hostId, hostId, `Unknown on its host ${Math.round(performance.now() - stoppedAt)} ms after SIGSTOP (grace 3 s + 0.5 s per VM)`);
  t.notOk(seen.includes('Down'), `never Down on the way: ${[...new Set(seen)].join(' -> ')}`);
  t.equal((await call('GET', `/api/v1/hosts/${hostId}`)).body.status, 'NonResponsive', 'the host is NonResponsive');
  const refused = await call('POST', `/api/v1/vms/${id}/start`);
  t.equal(refused.status, 409, `a start is refused: ${refused.body.message}`);
  await agentA.signal('SIGCONT');
  const back = await until(`/api/v1/vms/${id}`, (a) => a.body.status === 'Up', 15_000, 'Up again');
  t.equal(back.body.hostId, hostId, 'Up again on the same host once its agent answers');
  const stop = await call('POST', `/api/v1/vms/${id}/stop`);
  t.equal((await jobEnd(stop.headers.location as string)).state, 'succeeded');
});

t.test('its agent restarted (kill -9) without the VM: Down once the new agent answers, with an event; the agent\'s state wins', async (t) => {
  const id = await defineVm('life-agent-restart');
  const { hostId } = await startUp(id, { host: 'b' });
  await agentB.kill9();
  await agentB.restart(); // the test driver's domains made by VM.create went with the old process
  const seen: string[] = [];
  const down = await until(`/api/v1/vms/${id}`, (a) => { seen.push(a.body.status); return a.body.status === 'Down'; }, 15_000, 'Down');
  t.equal(down.body.hostId, null, `Down on no host once the restarted agent lists no such VM (${[...new Set(seen)].join(' -> ')})`);
  t.equal(down.body.desiredState, 'up', 'still meant up: the controller does not start it again by itself');
  const ev = await until('/api/v1/events?limit=1000', (a) => a.body.events.some((e: { kind: string; subjectId: string }) => e.kind === 'vm.differs' && e.subjectId === id), 5_000, 'vm.differs');
  t.ok(ev, `the difference is an event on host ${hostId === hostB.id ? 'b' : hostId}`);
  const again = await call('POST', `/api/v1/vms/${id}/start`);
  t.equal(again.status, 202, 'and it may be started again');
  t.equal((await jobEnd(again.headers.location as string)).state, 'succeeded');
  const stop = await call('POST', `/api/v1/vms/${id}/stop`);
  t.equal((await jobEnd(stop.headers.location as string)).state, 'succeeded');
});
