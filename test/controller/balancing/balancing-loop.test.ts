// The balancing loop on a controller built as main.ts builds it (REST API, runtime, the VM part),
// with two real agents on libvirt's test driver and the loop on its own timer (a cycle a second).
// The cluster balances by VM count (vm_evenly_distributed, HighVmCount 2, threshold 2), three VMs
// started on host a and none on b. The migration itself is another part's: a stand-in vm.migrate
// handler here holds each job until the test lets it end, without moving anything, so the
// imbalance stays and every free cycle wants to move a VM again.
//
// The hosts' utilisation samples come from the real health polls (their times, their cadence),
// but with a scripted CPU % (30): the agents read this machine's /proc/stat, which the other
// tests sharing the machine keep anywhere up to 100 %, and a destination must be under
// HighUtilization. installBalancing itself is checked to feed its history from the polls.
//
// Proves: a cycle creates exactly one vm.migrate job ({vmId, hostId, reason}, a VM of host a to
// host b) with its decision event; no cycle creates another while that job runs (each says why);
// once it ended, the next cycle creates exactly one again; a pinned VM is never the one chosen.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { installBalancing } from '../../../controller/balancing/install.js';
import { BalancingLoop, type ClusterCycle } from '../../../controller/balancing/balancing-loop.js';
import { sampleOf, UtilHistory } from '../../../controller/balancing/history.js';
import { runtimePlacementView } from '../../../controller/vms/placement-view.js';
import type { LogFn } from '../../../controller/agents/log-fn.js';
import { AgentProcess } from '../../api/client/agent-process.js';
import { credentialsOf } from '../agents/test-hosts.js';
import { startController } from '../vms/controller-harness.js';

t.setTimeout(180_000);
const settings = resolveDecisionSettings({
  pollIntervalMs: 500, pollTimeoutMs: 500, nonResponsiveGraceMs: 3_000, vmListIntervalMs: 1_000,
  agentKeepaliveMs: 1_000, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 2_000, agentCallTimeoutMs: 5_000,
  vmStartTimeoutMs: 20_000, hostFactsRefreshMs: 5_000, balancingIntervalMs: 1_000,
});

// One after the other (the first makes the test PKI both use); host a, then host b.
const agents: AgentProcess[] = [];
for (let i = 0; i < 2; i++) agents.push(await AgentProcess.start());
t.teardown(() => Promise.all(agents.map((a) => a.stop())));
const c = await startController({ settings, credentials: credentialsOf(agents[0]!) });
t.teardown(() => c.close());
const { api, until, jobEnd } = c;

// The stand-in migration: each job waits until released (or 60 s), then succeeds without moving.
const held: Array<{ jobId: string; vmId: string; hostId: string; release: () => void }> = [];
c.runtime.executor.register('vm.migrate', async (ctx) => {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 60_000);
    ctx.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    held.push({ jobId: ctx.job.id, vmId: String(ctx.job.params['vmId']), hostId: String(ctx.job.params['hostId']), release: () => { clearTimeout(timer); resolve(); } });
  });
});

const cluster = await api.store.clusters.update('default', { policy: 'vm_evenly_distributed', thresholds: { highVmCount: 2, migrationThreshold: 2, highUtilization: 99 } });
const hosts = [];
for (const [i, name] of ['a', 'b'].entries()) {
  hosts.push(await api.store.hosts.create({ name, address: 'localhost', port: agents[i]!.config['rpc.port'], clusterId: cluster.id, certFingerprint: 'test' }));
}
const [hostA, hostB] = hosts as [typeof hosts[0], typeof hosts[0]];
c.runtime.kick();
await until('/api/v1/hosts', (a) => a.body.length === 2 && a.body.every((h: { status: string }) => h.status === 'Up'), 15_000, 'both hosts Up');

async function startOnA(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await api.call('POST', '/api/v1/vms', { body: { name, spec: { memoryMiB: 64, domainType: 'qemu' }, ...extra } });
  if (r.status !== 201) throw new Error(`define ${name}: ${r.status} ${r.text}`);
  const s = await api.call('POST', `/api/v1/vms/${r.body.id}/start`, { body: { host: 'a' } });
  if (s.status !== 202) throw new Error(`start ${name}: ${s.status} ${s.text}`);
  const job = await jobEnd(s.headers.location as string);
  if (job.state !== 'succeeded') throw new Error(`start ${name}: ${JSON.stringify(job.error)}`);
  return r.body.id as string;
}
// The pinned one has the lowest priority: it would be chosen first were pinning not respected.
const pinned = await startOnA('bal-pinned', { pinnedHost: 'a', priority: 0 });
const movable = [await startOnA('bal-1', { priority: 10 }), await startOnA('bal-2', { priority: 20 })];

const log: LogFn = (level, msg, fields) => { c.logs.push({ level, msg, fields: fields ?? {} }); };
// As installed by install-parts (its own loop idle here: a cycle an hour).
const installed = installBalancing(c.runtime, api.store, { ...settings, balancingIntervalMs: 3_600_000 }, log, c.vms);

// The loop under test: the same deps installBalancing gives it, the CPU of each sample scripted.
const history = new UtilHistory(settings.balancingHistorySamples);
c.runtime.sink.listen({ health: (o) => { const s = sampleOf(o); if (s) history.record(o.host.hostId, { ...s, cpuPct: 30 }); } });
const vmsPart = c.vms;
const loop = new BalancingLoop({
  store: api.store, settings, history, registry: vmsPart.registry, reservations: vmsPart.reservations, log,
  view: runtimePlacementView({ monitor: c.runtime.monitor, latest: c.runtime.sink.latest, facts: vmsPart.facts, registry: vmsPart.registry, reservations: vmsPart.reservations, placementFacts: vmsPart.placementFacts }),
  isSpm: () => false, submit: (job) => c.runtime.executor.submit(job),
});
const cycles: ClusterCycle[][] = [];
loop.onCycle = (o) => cycles.push(o);
c.runtime.addLoop(loop);

async function cyclesUntil(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`${what}: not within ${ms} ms (cycles: ${JSON.stringify(cycles.slice(-3))}; last view: ${JSON.stringify(c.logs.filter((l) => l.msg.startsWith('balancing')).slice(-1))})`);
    await sleep(100);
  }
}
const migrateJobs = async () => (await api.store.jobs.list({ limit: 1000 })).filter((j) => j.kind === 'vm.migrate');
const created = (from: number) => cycles.slice(from).flat().filter((x) => x.jobId !== undefined);

t.test('a cycle creates exactly one vm.migrate job: a movable VM of host a to host b, with its decision event', async (t) => {
  await cyclesUntil(() => held.length === 1, 20_000, 'the first vm.migrate job running');
  const first = cycles.findIndex((o) => o.some((x) => x.jobId !== undefined));
  t.same(cycles[first]!.filter((x) => x.jobId !== undefined).length, 1, 'that cycle created one job');
  t.ok(cycles.slice(0, first).every((o) => o.every((x) => x.jobId === undefined)), 'no cycle before it created one');
  const jobs = await migrateJobs();
  t.equal(jobs.length, 1, 'one vm.migrate job in the store');
  const job = jobs[0]!;
  t.same([job.targetKind, job.targetId, job.params['vmId'], job.params['hostId']], ['vm', job.params['vmId'], held[0]!.vmId, hostB.id], 'vm.migrate {vmId, hostId: b}');
  t.ok(movable.includes(job.targetId), 'a movable VM of host a');
  t.not(job.targetId, pinned, 'never the pinned VM (though of the lowest priority)');
  t.match(String(job.params['reason']), /vm_evenly_distributed: host .* runs 3 VM/, `its reason: ${job.params['reason']}`);
  const events = (await api.call('GET', '/api/v1/events?limit=1000')).body.events as Array<{ kind: string; correlationId: string; subjectId: string }>;
  const decided = events.find((e) => e.kind === 'balancing.migrate');
  t.ok(decided && decided.correlationId === job.correlationId && decided.subjectId === job.targetId, 'a balancing.migrate event with the job\'s correlation id names the VM');
});

t.test('no cycle creates another job while that one runs; each says why', async (t) => {
  const from = cycles.length;
  await cyclesUntil(() => cycles.length >= from + 3, 15_000, 'three more cycles');
  t.same(created(from), [], 'no job created');
  t.ok(cycles.slice(from).every((o) => o.length === 1 && o[0]!.skipped === 'a migration of this cluster is still running'), 'skipped: a migration of this cluster is still running');
  t.equal((await migrateJobs()).length, 1, 'still one vm.migrate job');
});

t.test('once it ended, the next cycle creates exactly one job again', async (t) => {
  const first = held[0]!;
  first.release();
  await until(`/api/v1/jobs/${first.jobId}`, (a) => a.body.state === 'succeeded', 10_000, 'the first job ended');
  const from = cycles.length;
  await cyclesUntil(() => held.length === 2, 15_000, 'a second vm.migrate job');
  const withJob = cycles.slice(from).filter((o) => o.some((x) => x.jobId !== undefined));
  t.equal(withJob.length, 1, 'one cycle created it');
  t.equal(withJob[0]!.filter((x) => x.jobId !== undefined).length, 1, 'one job in that cycle');
  t.equal((await migrateJobs()).length, 2, 'two vm.migrate jobs in all');
  held[1]!.release();
  await until(`/api/v1/jobs/${held[1]!.jobId}`, (a) => a.body.state === 'succeeded', 10_000, 'the second job ended');
  loop.onCycle = undefined;
  await loop.close();
});

t.test('installBalancing feeds its history from every answered health poll of each host', async (t) => {
  const n = (id: string) => installed.history.of(id).length;
  const before = [n(hostA.id), n(hostB.id)];
  await sleep(2_000);
  const after = [n(hostA.id), n(hostB.id)];
  t.ok(after[0]! > before[0]! && after[1]! > before[1]!, `samples grew with the 500 ms polls: ${before} -> ${after}`);
  const last = installed.history.of(hostA.id).at(-1)!;
  t.ok(Date.now() - last.at < 2_000 && last.memTotalMiB > 0, `the newest is fresh and real: ${JSON.stringify(last)}`);
});
