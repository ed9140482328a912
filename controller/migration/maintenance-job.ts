// The host.maintenance job: the host is already PreparingForMaintenance (the request moved it).
// 1. The SPM role moves first: the SPM loop stops a host that is not Up and elects another
//    (nextSpmStep); the job waits for it, so no VM leaves before the role did.
// 2. The VMs leave through vm.migrate jobs, decided by nextMaintenanceStep over what the store and
//    the registry say now (which vm.migrate jobs run, how many each VM had, why the last failed):
//    a resumed run after a controller restart decides from the same facts and starts nothing twice.
// 3. Drained: the monitor moves the host to Maintenance at its next poll; the pool connector then
//    disconnects it from the storage pool (and leaves it so), which the job waits to see.
// A VM that used up its tries makes the host MaintenanceFailed with the reason per VM.
import type { DecisionSettings } from '../decision-settings.js';
import { maintenanceFailed } from '../health/maintenance.js';
import type { JobContext, JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Job } from '../model/jobs.js';
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { StorageDeps } from '../storage/storage-deps.js';
import type { Store } from '../store/store.js';
import type { VmsPart } from '../vms/install.js';
import { nextMaintenanceStep, type DrainVm } from './maintenance-plan.js';

export interface MaintenanceJobDeps {
  runtime: ControllerRuntime;
  store: Store;
  settings: DecisionSettings;
  vms: VmsPart;
  storage?: Pick<StorageDeps, 'pool' | 'connector' | 'spm'>;
  clock?: () => number;
}

/** Per VM: the vm.migrate jobs this maintenance made for it. */
type Tries = Record<string, string[]>;

const TICK_MS = 1_000;

export function maintenanceJob(d: MaintenanceJobDeps): JobHandler {
  return async (ctx) => {
    const hostId = ctx.job.targetId;
    const now = d.clock ?? Date.now;
    const host = await d.store.hosts.get(hostId);
    let since = ctx.memo<number>('since');
    if (since === undefined) { since = now(); await ctx.remember('since', since); }
    const status = () => d.runtime.monitor.health(hostId)?.status ?? 'Installing';

    if (d.runtime.hostContext.isSpm(hostId)) {
      await ctx.step('hand the SPM role over', async () => {
        d.storage?.spm.loop.kick();
        await until(ctx, () => !d.runtime.hostContext.isSpm(hostId) || status() !== 'PreparingForMaintenance', d.settings.maintenanceSpmHandoverTimeoutMs + 5_000);
        const spm = (await d.store.clusters.get(host.clusterId)).spmHostId;
        ctx.log('info', 'the SPM role moved off the host', { spm });
      }, { hostId });
    }

    const tries: Tries = { ...(ctx.memo<Tries>('tries') ?? {}) };
    /** vm.migrate job id -> its step, ending with the job */
    const following = new Map<string, Promise<void>>();
    const drained = await ctx.step('migrate the VMs off the host', async () => {
      const limit = since + d.settings.maintenanceSpmHandoverTimeoutMs + d.settings.maintenanceMigrationAttempts * d.settings.migrationTimeoutMs;
      for (;;) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const vms = await drainVms(d, hostId, tries);
        const step = nextMaintenanceStep({ status: status(), isSpm: d.runtime.hostContext.isSpm(hostId), since, vms }, now(), d.settings);
        switch (step.kind) {
          case 'left':
            if (step.status === 'Maintenance') return true;
            throw new JobFailure('Cancelled', `host ${host.name} left PreparingForMaintenance (${step.status}): the maintenance was cancelled`, { status: step.status });
          case 'drained':
            return true;
          case 'fail': {
            await Promise.all(following.values()); // their jobs ended: their steps end too
            d.runtime.monitor.adminMove(hostId, (h, t) => maintenanceFailed(h, t, step.reasons));
            throw new JobFailure('MaintenanceFailed', `host ${host.name} is MaintenanceFailed: ${step.reasons.map((r) => r.message).join('; ')}`,
              { reasons: step.reasons });
          }
          case 'migrate':
            for (const v of step.vms) await startMigration(d, ctx, host.name, v, tries, following);
            break;
          default:
            break;
        }
        for (const v of vms) {
          const last = tries[v.vmId]?.at(-1);
          if (v.moving && last !== undefined && !following.has(last)) follow(d, ctx, v, last, following); // a resumed run's
        }
        if (now() > limit) throw new JobFailure('MaintenanceTimeout', `host ${host.name} is not drained after ${Math.round((now() - since) / 1000)} s`, {});
        await sleep(ctx, TICK_MS);
      }
    }, { hostId });

    if (drained) {
      // The monitor moves it once the host's agent reports no VM at all (external ones included, as oVirt's MaintenanceVdsIgnoreExternalVms=false).
      await ctx.step('wait for Maintenance', () => until(ctx, () => {
        const st = status();
        if (st !== 'Maintenance' && st !== 'PreparingForMaintenance') throw new JobFailure('Cancelled', `host ${host.name} left PreparingForMaintenance (${st}): the maintenance was cancelled`, { status: st });
        return st === 'Maintenance';
      }, 4 * d.settings.pollIntervalMs + 60_000), { hostId });
      const poolId = (await d.store.clusters.get(host.clusterId)).poolId;
      if (poolId !== null && d.storage) {
        const pool = d.storage.pool;
        await ctx.step('disconnect the storage pool', async () => {
          d.storage!.connector.loop.kick();
          await until(ctx, () => pool.get(hostId)?.state !== 'connected' && pool.get(hostId)?.state !== 'connecting', 6 * d.settings.pollIntervalMs + 60_000);
        }, { hostId });
      }
    }
  };
}

/** The VMs on the host now (the registry follows the agents), with their tries from the store. */
async function drainVms(d: MaintenanceJobDeps, hostId: string, tries: Tries): Promise<DrainVm[]> {
  const out: DrainVm[] = [];
  const defs = await d.store.vms.list({});
  for (const vm of defs) {
    d.vms.registry.define(vm);
    const r = d.vms.registry.record(vm.id);
    if (r === undefined || r.hostId !== hostId || r.status === 'Down') continue;
    const mine = tries[vm.id] ?? [];
    const active = await d.store.jobs.activeFor(vm.id, ['vm.migrate']);
    let lastError: string | null = null;
    const last = mine.at(-1);
    if (last !== undefined && active?.id !== last) {
      const j: Job | undefined = await d.store.jobs.find(last);
      lastError = j?.error ? `${j.error.message}` : j?.state === 'succeeded' ? 'the migration succeeded but the VM is still listed on the host' : null;
    }
    out.push({ vmId: vm.id, name: vm.name, priority: vm.priority, attempts: mine.length, moving: active !== undefined, lastError });
  }
  return out;
}

async function startMigration(d: MaintenanceJobDeps, ctx: JobContext, hostName: string, v: DrainVm, tries: Tries, following: Map<string, Promise<void>>): Promise<void> {
  const job = await d.store.jobs.create({
    kind: 'vm.migrate', targetKind: 'vm', targetId: v.vmId, correlationId: ctx.correlationId,
    params: { vmId: v.vmId, hostId: null, reason: `maintenance of host ${hostName} (try ${v.attempts + 1})` },
  });
  tries[v.vmId] = [...(tries[v.vmId] ?? []), job.id];
  await ctx.remember('tries', tries);
  await d.store.event({ kind: 'job.created', subjectKind: 'job', subjectId: job.id, correlationId: ctx.correlationId,
    message: `migrate VM ${v.name} off host ${hostName} (try ${v.attempts + 1})`, details: { kind: job.kind, targetKind: 'vm', targetId: v.vmId } });
  d.runtime.executor.submit(job);
  follow(d, ctx, { ...v, attempts: v.attempts + 1 }, job.id, following);
}

/** A step per try, in the job's steps, ending with its vm.migrate job (its failure is the VM's reason, not the maintenance's). */
function follow(d: MaintenanceJobDeps, ctx: JobContext, v: DrainVm, jobId: string, following: Map<string, Promise<void>>): void {
  const p = ctx.step(`migrate VM ${v.name} (try ${v.attempts}, job ${jobId})`, async () => {
    let j = await d.store.jobs.get(jobId);
    while (j.state !== 'succeeded' && j.state !== 'failed') {
      await sleep(ctx, TICK_MS);
      j = await d.store.jobs.get(jobId);
    }
    if (j.state === 'failed') throw new JobFailure(j.error?.code ?? 'MigrationFailed', j.error?.message ?? 'the migration failed', { job: jobId });
  }).catch(() => undefined);
  following.set(jobId, p);
}

function sleep(ctx: JobContext, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ctx.signal.aborted) { reject(ctx.signal.reason); return; }
    const t = setTimeout(() => { ctx.signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(ctx.signal.reason); };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function until(ctx: JobContext, ok: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new JobFailure('Timeout', `not reached within ${Math.round(timeoutMs / 1000)} s`, {});
    await sleep(ctx, 250);
  }
}
