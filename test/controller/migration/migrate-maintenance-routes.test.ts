// POST /vms/{id}/migrate and host maintenance through the REST API, on a controller built as
// main.ts builds it (VM and migration parts on one runtime) with two real agents on libvirt's
// test driver. The test driver cannot migrate a domain (no peer-to-peer migration), so every
// migration here really fails in the agent: that is what proves the failure paths (the job fails
// with the agent's step and code; a host whose VM cannot move ends MaintenanceFailed naming it,
// and cancel returns it to Up). The success paths run on the lab hosts (migration-lab.test.ts).
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { installMigration } from '../../../controller/migration/install.js';
import { AgentProcess } from '../../api/client/agent-process.js';
import { credentialsOf } from '../agents/test-hosts.js';
import { addLocalHosts, startController } from '../vms/controller-harness.js';
import type { Host } from '../../../controller/model/hosts.js';
import { startApi } from '../http/harness.js';

t.setTimeout(240_000);
const settings = resolveDecisionSettings({
  pollIntervalMs: 500, pollTimeoutMs: 500, nonResponsiveGraceMs: 3_000, vmListIntervalMs: 1_000,
  agentKeepaliveMs: 1_000, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 2_000, agentCallTimeoutMs: 5_000,
  vmStartTimeoutMs: 20_000, hostFactsRefreshMs: 5_000, migrationStatusPollMs: 200, migrationTimeoutMs: 30_000,
  maintenanceMigrationAttempts: 2,
});

const agentA = await AgentProcess.start();
const agentB = await AgentProcess.start();
t.teardown(async () => { await agentA.stop(); await agentB.stop(); });
const theApi = await startApi();
t.teardown(() => theApi.close());
const c = await startController({ settings, credentials: credentialsOf(agentA), api: theApi,
  install: (runtime, vms, log) => installMigration(runtime, theApi.store, settings, log, vms, undefined, theApi.ctx) });
t.teardown(() => c.close());
const { api, until, jobEnd } = c;
const call = api.call;

const [hostA, hostB] = await addLocalHosts(c, [agentA.config['rpc.port'], agentB.config['rpc.port']]) as [Host, Host];

async function defineVm(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call('POST', '/api/v1/vms', { body: { name, spec: { memoryMiB: 64, domainType: 'qemu' }, ...extra } });
  if (r.status !== 201) throw new Error(`define ${name}: ${r.status} ${r.text}`);
  return r.body.id as string;
}
async function startOn(vmId: string, host: string): Promise<void> {
  const r = await call('POST', `/api/v1/vms/${vmId}/start`, { body: { host } });
  if (r.status !== 202) throw new Error(`start: ${r.status} ${r.text}`);
  const job = await jobEnd(r.headers.location as string);
  if (job.state !== 'succeeded') throw new Error(`start job ${job.state}: ${JSON.stringify(job.error)}`);
}
const hostStatus = async (id: string): Promise<string> => (await call('GET', `/api/v1/hosts/${id}`)).body.status;

t.test('migrate: 404, 409 for a VM not running, 409 to its own host; 202 + a vm.migrate job reserved on the other host, which fails with the agent\'s step and code', async (t) => {
  t.equal((await call('POST', '/api/v1/vms/00000000-0000-4000-8000-000000000000/migrate', { body: {} })).status, 404, 'an unknown VM: 404');
  const id = await defineVm('mig-1');
  const down = await call('POST', `/api/v1/vms/${id}/migrate`, { body: {} });
  t.same([down.status, down.body.code], [409, 'Conflict'], `a VM that is Down: 409 (${down.body.message})`);
  await startOn(id, 'a');
  const own = await call('POST', `/api/v1/vms/${id}/migrate`, { body: { host: 'a' } });
  t.equal(own.status, 409, `to the host it runs on: 409 (${own.body.message})`);
  t.equal((await call('POST', `/api/v1/vms/${id}/migrate`, { body: { host: 'nope' } })).status, 404, 'an unknown host: 404');
  const r = await call('POST', `/api/v1/vms/${id}/migrate`, { body: { reason: 'test' } });
  t.same([r.status, r.body.kind, r.headers.location], [202, 'vm.migrate', `/api/v1/jobs/${r.body.id}`], '202, a vm.migrate job, its Location');
  t.same([r.body.params.vmId, r.body.params.placement?.hostId, r.body.params.reason], [id, hostB.id, 'test'], 'params { vmId, hostId, reason } and the destination the scheduler reserved: the other host');
  t.equal((await call('POST', `/api/v1/vms/${id}/migrate`, { body: {} })).status, 409, 'a second migration while the first runs: 409');
  const job = await jobEnd(r.headers.location as string);
  t.equal(job.state, 'failed', `the test driver cannot migrate: the job failed (${job.error?.code}: ${job.error?.message})`);
  t.equal(job.error?.code, 'MigrationFailed', 'code MigrationFailed');
  t.ok(typeof job.error?.details['step'] === 'string' && typeof job.error?.details['agentCode'] === 'number', `with the agent's step and code: ${JSON.stringify(job.error?.details)}`);
  t.ok(job.steps.findIndex((s) => s.name === 'VM.migrate') < job.steps.findIndex((s) => s.name === 'follow the migration'), `steps: ${job.steps.map((s) => `${s.name} ${s.state}`).join(', ')}`);
  const vm = await until(`/api/v1/vms/${id}`, (a) => a.body.status === 'Up', 10_000, 'VM Up again');
  t.same([vm.body.status, vm.body.hostId], ['Up', hostA.id], 'the VM is still Up on A');
  t.equal(c.vms.reservations.get(id), undefined, 'the destination reservation went with the job');
  await call('POST', `/api/v1/vms/${id}/stop`);
  await until(`/api/v1/vms/${id}`, (a) => a.body.status === 'Down', 15_000, 'stopped');
});

t.test('hostvisor-ctl vms migrate posts the migration and follows its job with a progress bar to its end (here the agent\'s failure, exit 1)', async (t) => {
  const id = await defineVm('mig-cli');
  await startOn(id, 'a');
  const ctlBin = join(import.meta.dirname, '..', '..', '..', '..', 'bin', 'hostvisor-ctl');
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(ctlBin, ['--url', `https://localhost:${api.port}`, '--creds', join(api.dir, 'admin'), 'vms', 'migrate', 'mig-cli', '--host', 'b', '--timeout', '60'],
      { timeout: 90_000 }, (e, stdout, stderr) => resolve({ code: e ? (e as { code?: number }).code ?? -1 : 0, stdout, stderr }));
  });
  t.match(r.stdout, /\[[#-]{30}\]\s+\d+%/, `a progress bar: ${r.stdout.trim().split('\n').at(-1)}`);
  t.equal(r.code, 1, 'exit 1: the migration failed');
  t.match(r.stderr, /migrate mig-cli failed: MigrationFailed: .*migrateToURI3/, `the agent's step in the message: ${r.stderr.trim()}`);
  await call('POST', `/api/v1/vms/${id}/stop`);
  await until(`/api/v1/vms/${id}`, (a) => a.body.status === 'Down', 15_000, 'stopped');
});

t.test('migrate with no other host that fits: 422 NoPlacement naming each host\'s filter; a pinned VM: 409', async (t) => {
  const big = await defineVm('mig-big', { memoryReservationMiB: 4 * 1024 * 1024 - 1 });
  // Start it where it fits by force is not possible either: reserve through the registry instead. Use a pinned small VM.
  const pinned = await defineVm('mig-pinned', { pinnedHost: 'a' });
  await startOn(pinned, 'a');
  const r = await call('POST', `/api/v1/vms/${pinned}/migrate`, { body: {} });
  t.same([r.status, r.body.code], [409, 'Conflict'], `pinned: 409 (${r.body.message})`);
  t.match(r.body.message, /pinned/, 'the message says it is pinned');
  const small = await defineVm('mig-small', { memoryReservationMiB: 64 });
  await startOn(small, 'a');
  // B enters maintenance (no managed VM there; the test driver's own external domain keeps it
  // PreparingForMaintenance, as an external VM does in oVirt): no other host is Up.
  const m = await call('POST', `/api/v1/hosts/${hostB.id}/maintenance`, { body: {} });
  t.equal(m.status, 202, 'B (no VMs of ours) enters maintenance');
  t.equal(await hostStatus(hostB.id), 'PreparingForMaintenance', 'B PreparingForMaintenance');
  const n = await call('POST', `/api/v1/vms/${small}/migrate`, { body: {} });
  t.same([n.status, n.body.code], [422, 'NoPlacement'], `no other Up host: 422 (${n.body.message})`);
  t.match(n.body.details.hosts, [{ hostId: hostB.id, filter: 'hostUp' }], 'naming B and its filter');
  t.equal((await call('POST', `/api/v1/hosts/${hostB.id}/activate`, { body: {} })).status, 200, 'activate also ends a maintenance under way: 200');
  await until(`/api/v1/hosts/${hostB.id}`, (a) => a.body.status === 'Up', 10_000, 'B Up again');
  const mj = await jobEnd(m.headers.location as string, 20_000);
  t.same([mj.state, mj.error?.code], ['failed', 'Cancelled'], `B's maintenance job ends Cancelled: ${mj.error?.message}`);
  for (const id of [pinned, small]) { await call('POST', `/api/v1/vms/${id}/stop`); await until(`/api/v1/vms/${id}`, (a) => a.body.status === 'Down', 15_000, 'stopped'); }
  await call('DELETE', `/api/v1/vms/${big}`);
});

t.test('maintenance: blockers answer 409 naming each; an empty host goes Maintenance and activate brings it Up; a VM that cannot move makes the host MaintenanceFailed naming it, and cancel returns it to Up', async (t) => {
  const pinned = await defineVm('mt-pinned', { pinnedHost: 'a' });
  const free = await defineVm('mt-free', { priority: 7 });
  await startOn(pinned, 'a');
  await startOn(free, 'a');
  const r = await call('POST', `/api/v1/hosts/${hostA.id}/maintenance`, { body: {} });
  t.same([r.status, r.body.code], [409, 'Conflict'], `a pinned VM: 409 (${r.body.message})`);
  t.match(r.body.details.blockers, [{ code: 'pinnedVm', vmId: pinned }], 'the blocker names the pinned VM');
  t.match(r.body.message, /mt-pinned/, 'and the message its name');
  t.equal(await hostStatus(hostA.id), 'Up', 'the host stays Up');
  await call('POST', `/api/v1/vms/${pinned}/stop`);
  await until(`/api/v1/vms/${pinned}`, (a) => a.body.status === 'Down', 15_000, 'pinned VM stopped');

  t.equal((await call('POST', `/api/v1/hosts/${hostA.id}/activate`, { body: {} })).status, 409, 'activate a host that is Up: 409');
  t.equal((await call('POST', `/api/v1/hosts/${hostA.id}/maintenance/cancel`, { body: {} })).status, 409, 'cancel with no maintenance: 409');

  const m = await call('POST', `/api/v1/hosts/${hostA.id}/maintenance`, { body: { reason: 'kernel update' } });
  t.same([m.status, m.body.kind], [202, 'host.maintenance'], 'the VM can be placed elsewhere: 202 + a host.maintenance job');
  t.equal(await hostStatus(hostA.id), 'PreparingForMaintenance', 'PreparingForMaintenance at once');
  t.equal((await call('POST', `/api/v1/hosts/${hostA.id}/maintenance`, { body: {} })).status, 409, 'a second request: 409');
  const job = await jobEnd(m.headers.location as string, 120_000);
  t.equal(job.state, 'failed', `the job failed: ${job.error?.code}: ${job.error?.message}`);
  t.equal(job.error?.code, 'MaintenanceFailed', 'MaintenanceFailed');
  const tries = job.steps.filter((s) => s.name.startsWith('migrate VM mt-free'));
  t.equal(tries.length, 2, `tried maintenanceMigrationAttempts (2) times: ${tries.map((s) => `${s.name}: ${s.state}`).join('; ')}`);
  const h = (await call('GET', `/api/v1/hosts/${hostA.id}`)).body;
  t.equal(h.status, 'MaintenanceFailed', 'the host is MaintenanceFailed');
  t.match(h.reasons.join('\n'), /VM mt-free could not be migrated after 2 tries/, `with the reason per VM: ${h.reasons.join(' | ')}`);
  t.equal((await call('GET', `/api/v1/vms/${free}`)).body.status, 'Up', 'the VM still runs on A');
  t.equal((await call('POST', `/api/v1/hosts/${hostA.id}/maintenance`, { body: {} })).status, 409, 'maintenance again before cancel: 409');
  const cancel = await call('POST', `/api/v1/hosts/${hostA.id}/maintenance/cancel`, { body: {} });
  t.equal(cancel.status, 200, 'cancel: 200');
  await until(`/api/v1/hosts/${hostA.id}`, (a) => a.body.status === 'Up', 10_000, 'A Up after cancel');
  t.pass('cancel returned the host to Up');

  await call('POST', `/api/v1/vms/${free}/stop`);
  await until(`/api/v1/vms/${free}`, (a) => a.body.status === 'Down', 15_000, 'stopped');
  const e = await call('POST', `/api/v1/hosts/${hostA.id}/maintenance`, { body: {} });
  t.equal(e.status, 202, 'a host with no VM of ours: 202');
  const vmOnMaint = await call('POST', `/api/v1/vms/${free}/start`, { body: { host: 'a' } });
  t.equal(vmOnMaint.status, 422, 'nothing starts on a host in maintenance (422)');
  t.equal((await call('POST', `/api/v1/hosts/${hostA.id}/maintenance/cancel`, { body: {} })).status, 200, 'cancel: 200');
  await until(`/api/v1/hosts/${hostA.id}`, (a) => a.body.status === 'Up', 10_000, 'A Up after cancel');
  const ej = await jobEnd(e.headers.location as string, 20_000);
  t.same([ej.state, ej.error?.code], ['failed', 'Cancelled'], `its job ends Cancelled (${ej.steps.map((s) => s.name).join(', ')})`);
});
