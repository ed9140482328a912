// The vm.migrate job (params { vmId, hostId?, reason? }, and the destination reserved at request
// time in params.placement; a job made without one, by the balancing loop, is placed when it
// runs). VM.migrate on the source agent with the destination agent's address (the host record),
// then the migration followed (VM_migration_status events and VM.getMigrationStatus) to its end:
// the destination Up and the source Down with "migration succeeded", whose Down VM is then
// destroyed; or the agent's failed step and code. Every run first lists the VM on every host, so
// a run resumed after a controller restart follows a migration under way or already done, and
// never sends VM.migrate twice.
import { RpcCallError } from '../../api/client/errors.js';
import type { MigrationStatsT } from '../../api/schema.js';
import { decisionEvent } from '../decision-event.js';
import type { JobContext, JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Host } from '../model/hosts.js';
import { placementOf, type PersistedPlacement } from '../scheduler/reservations.js';
import { listEveryHost, sightings, type FreshLists } from '../vms/find-vm.js';
import { destroyOn, jobVm, nowOf, recordJobEvents, type VmJobDeps } from '../vms/vm-job-deps.js';
import type { MigrationPlacement } from './migrate-placement.js';

export interface MigrateJobDeps extends VmJobDeps {
  placer: MigrationPlacement;
}

/** What a finished migration measured, kept with the job (params.memo.outcome) and in its last step. */
export interface MigrationOutcome {
  sourceHostId: string;
  destinationHostId: string;
  /** ms the guest was paused, libvirt's figure (null when the source agent could not say) */
  downtimeMs: number | null;
  /** ms from VM.migrate to the end, the agent's figure */
  totalMs: number | null;
  /** the source VM's status and exit message before it was destroyed */
  sourceStatus: string | null;
  sourceExitMessage: string | null;
}

/** Agent codes for "no such migration / VM here": the lists decide what happened. */
const NO_MIGRATION = new Set([1 /* noVM */, 81 /* migNotInProgress */]);

export function migrateJob(d: MigrateJobDeps): JobHandler {
  return async (ctx) => {
    const vmId = ctx.job.targetId;
    const vm = await jobVm(d, ctx).catch((e: unknown) => { d.reservations.release(vmId, ctx.job.id); throw e; });
    try {
      const lists = await ctx.step('look for the VM on every host', () => listEveryHost(d.links, d.monitor, d.settings, ctx.correlationId));
      const seen = sightings(lists, vmId).filter((x) => x.status !== 'Down');
      let source = ctx.memo<string>('source');
      if (source === undefined) {
        const src = seen.find((x) => x.status === 'Up' || x.status === 'Migration Source');
        if (src === undefined) throw new JobFailure('NotRunning', `VM ${vm.name} is not running on any host (${seen.map((x) => `${x.hostId}: ${x.status}`).join(', ') || 'listed nowhere'})`, { vmId });
        source = src.hostId;
        await ctx.remember('source', source);
      }
      let placement = placementOf(ctx.job);
      if (placement === undefined) {
        placement = await ctx.step('place the destination', () => d.placer.placeNow(vm, (ctx.job.params['hostId'] as string | null | undefined) ?? null, ctx.correlationId, true));
        await ctx.remember('placement', placement);
      }
      d.reservations.attach(vmId, ctx.job.id);
      await run(d, ctx, vm.name, source, placement, lists);
    } finally {
      d.reservations.release(vmId, ctx.job.id);
    }
  };
}

async function run(d: MigrateJobDeps, ctx: JobContext, name: string, source: string, placement: PersistedPlacement, lists: FreshLists): Promise<void> {
  const vmId = ctx.job.targetId;
  const dest = placement.hostId;
  const dstHost = await d.store.hosts.get(dest);
  const where = new Map(sightings(lists, vmId).map((x) => [x.hostId, x.status]));
  const onSrc = where.get(source);
  const onDst = where.get(dest);
  const started = nowOf(d);
  let stats: MigrationStatsT | null = null;
  if (onDst === 'Up' && (onSrc === undefined || onSrc === 'Down')) {
    ctx.log('info', 'the VM already runs on the destination: the migration an earlier run started is done', { source, dest });
  } else if (onSrc === 'Migration Source' || (ctx.memo('sent') !== undefined && onSrc === 'Up' && await inProgress(d, ctx, source))) {
    ctx.log('info', 'a migration an earlier run started is under way: followed, not sent again', { source, dest });
    stats = await follow(d, ctx, source, dest, started);
  } else if (onSrc === 'Up') {
    if (ctx.memo('sent') !== undefined) {
      // Sent by an earlier run, and the source has it Up with no migration running: it failed meanwhile.
      const last = await lastStatus(d, ctx, source);
      if (last?.status === 'failed') throw failure(last, source, dest);
    }
    await ctx.remember('sent', nowOf(d));
    await ctx.step('VM.migrate', () => d.links.call(source, 'VM.migrate', { vmID: vmId, params: { dst: agentAddress(dstHost) } }, { correlationId: ctx.correlationId }),
      { hostId: source, detail: `to ${dstHost.name} (${agentAddress(dstHost)})` });
    await ctx.progress(5);
    stats = await follow(d, ctx, source, dest, started);
  } else {
    throw new JobFailure('NotRunning', `VM ${name} is ${onSrc ?? 'not listed'} on its source ${source}: nothing to migrate`, { vmId, source, status: onSrc ?? null });
  }
  await ctx.step('wait for Up on the destination', () => waitUpOn(d, ctx, dest), { hostId: dest });
  const outcome = await ctx.step('end the VM on the source', () => endOnSource(d, ctx, source, dest, stats), { hostId: source });
  await ctx.remember('outcome', outcome);
  await ctx.progress(100);
  const why = (ctx.job.params['reason'] as string | undefined) ?? 'requested';
  await recordJobEvents(d, ctx, [decisionEvent(nowOf(d), 'vm.migrated', 'info',
    `migrated from ${source} to ${dest} (${why}): downtime ${outcome.downtimeMs ?? '?'} ms, total ${outcome.totalMs ?? '?'} ms; source ${outcome.sourceStatus ?? '?'} "${outcome.sourceExitMessage ?? ''}"`,
    { vm: vmId, host: dest, data: { ...outcome } })]);
}

/** host[:port] of the destination agent, as the controller reaches it. */
export function agentAddress(h: Pick<Host, 'address' | 'port'>): string {
  const host = h.address.includes(':') && !h.address.startsWith('[') ? `[${h.address}]` : h.address;
  return `${host}:${h.port}`;
}

async function lastStatus(d: MigrateJobDeps, ctx: JobContext, source: string): Promise<MigrationStatsT | null> {
  try {
    return await d.links.call(source, 'VM.getMigrationStatus', { vmID: ctx.job.targetId }, { correlationId: ctx.correlationId, timeoutMs: d.settings.pollTimeoutMs });
  } catch (e) {
    if (e instanceof RpcCallError && NO_MIGRATION.has(e.code)) return null;
    throw e;
  }
}

async function inProgress(d: MigrateJobDeps, ctx: JobContext, source: string): Promise<boolean> {
  return (await lastStatus(d, ctx, source))?.status === 'in_progress';
}

function failure(st: MigrationStatsT, source: string, dest: string): JobFailure {
  const e = st.error;
  return new JobFailure('MigrationFailed', `the migration from ${source} to ${dest} failed at ${e?.step ?? 'an unknown step'}: ${e?.message ?? 'no reason given'}`,
    { step: e?.step ?? null, agentCode: e?.code ?? null, source, destination: dest });
}

/**
 * Follows the migration on the source to its end: progress from the events as they come and
 * from VM.getMigrationStatus every migrationStatusPollMs (an event lost with a reconnect is
 * caught). A source that no longer knows of it (its agent restarted) is judged by the lists.
 */
async function follow(d: MigrateJobDeps, ctx: JobContext, source: string, dest: string, since: number): Promise<MigrationStatsT | null> {
  const vmId = ctx.job.targetId;
  let shown = -1;
  const show = (p: number): void => {
    const pct = Math.min(95, 5 + Math.round(p * 0.9));
    if (pct > shown) { shown = pct; void ctx.progress(pct).catch(() => undefined); }
  };
  let wake: (() => void) | null = null;
  const off = d.links.get(source)?.on('VM_migration_status', (id, body) => {
    if (id !== vmId) return;
    show(body.progress);
    if (body.status !== 'in_progress') wake?.();
  });
  try {
    return await ctx.step('follow the migration', async () => {
      const deadline = since + d.settings.migrationTimeoutMs;
      for (;;) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        let st: MigrationStatsT | null = null;
        try {
          st = await lastStatus(d, ctx, source);
        } catch (e) {
          ctx.log('debug', 'VM.getMigrationStatus gave no answer; asked again', { error: String(e) });
        }
        if (st !== null) {
          show(st.progress);
          if (st.status === 'done') return st;
          if (st.status === 'failed') throw failure(st, source, dest);
        } else if (await doneByLists(d, ctx, source, dest)) {
          return null;
        }
        if (nowOf(d) > deadline) {
          throw new JobFailure('MigrationTimeout', `the migration from ${source} to ${dest} has not ended after ${Math.round(d.settings.migrationTimeoutMs / 1000)} s`,
            { source, destination: dest, progress: st?.progress ?? null });
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, d.settings.migrationStatusPollMs);
          wake = () => { clearTimeout(t); resolve(); };
        });
        wake = null;
      }
    }, { hostId: source });
  } finally {
    off?.();
  }
}

/** The source knows no migration: done if the destination runs the VM and the source does not. */
async function doneByLists(d: MigrateJobDeps, ctx: JobContext, source: string, dest: string): Promise<boolean> {
  const lists = await listEveryHost(d.links, d.monitor, d.settings, ctx.correlationId);
  const where = new Map(sightings(lists, ctx.job.targetId).map((x) => [x.hostId, x.status]));
  if (where.get(dest) === 'Up' && (where.get(source) ?? 'Down') === 'Down') return true;
  if (where.get(source) === 'Up' && where.get(dest) === undefined && !(source in lists.unanswered)) {
    throw new JobFailure('MigrationFailed', `the source ${source} runs the VM and reports no migration; the destination ${dest} does not have it`, { source, destination: dest, step: null, agentCode: null });
  }
  return false;
}

/** Up on the destination, as reconcile records it from the agents' events and lists. */
async function waitUpOn(d: MigrateJobDeps, ctx: JobContext, dest: string): Promise<void> {
  const vmId = ctx.job.targetId;
  await d.registry.waitFor(() => {
    const r = d.registry.record(vmId);
    if (r === undefined) return new JobFailure('NotFound', 'the VM was deleted meanwhile');
    return r.hostId === dest && r.status === 'Up';
  }, d.settings.vmStartTimeoutMs, () => {
    const r = d.registry.record(vmId);
    return new JobFailure('DestinationTimeout', `the migration ended but the VM is not Up on ${dest} after ${Math.round(d.settings.vmStartTimeoutMs / 1000)} s (${r?.status ?? 'gone'} on ${r?.hostId ?? 'no host'})`, { destination: dest });
  }, ctx.signal);
}

/** The source's Down VM ("migration succeeded") is read, then destroyed: the agent keeps it listed until the engine does. */
async function endOnSource(d: MigrateJobDeps, ctx: JobContext, source: string, dest: string, st: MigrationStatsT | null): Promise<MigrationOutcome> {
  let sourceStatus: string | null = null;
  let sourceExitMessage: string | null = null;
  try {
    const s = (await d.links.call(source, 'VM.getStats', { vmID: ctx.job.targetId }, { correlationId: ctx.correlationId, timeoutMs: d.settings.pollTimeoutMs })).statsList[0];
    sourceStatus = s?.status ?? null;
    sourceExitMessage = s?.exitMessage ?? null;
  } catch (e) {
    if (!(e instanceof RpcCallError && e.code === 1)) throw e; // 1: an earlier run destroyed it already
  }
  if (sourceStatus !== null && sourceStatus !== 'Down') {
    throw new JobFailure('RunningTwice', `the VM is Up on ${dest} and ${sourceStatus} on ${source}`, { source, destination: dest, sourceStatus });
  }
  if (st === null) st = await lastStatus(d, ctx, source).catch(() => null);
  if (sourceStatus !== null) await destroyOn(d, ctx, source);
  return { sourceHostId: source, destinationHostId: dest, downtimeMs: st?.downtime ?? null, totalMs: st?.totalMs ?? null, sourceStatus, sourceExitMessage };
}
