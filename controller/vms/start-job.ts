// The vm.start job: on the host placed at request time (the reservation the job carries),
// create the VM with the controller's VM id and follow it to Up. Never twice: every run first
// lists the VM on every host (a run resumed after a controller kill finds a create that
// landed), the start goes through the start guard and is persisted with the job before
// VM.create is sent, and a retry only ever goes to the same host, whose agent (and libvirt, by
// the domain uuid) refuses a second VM of that id.
import { HostvisorClientError, NotConnectedError, RpcCallError } from '../../api/client/errors.js';
import type { ParamsOf } from '../../api/schema.js';
import type { JobContext, JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import { reconcileVm } from '../reconcile/reconcile-vm.js';
import { beginStart, recordStartOutcome, VmStateError, type StartOutcome } from '../reconcile/start-guard.js';
import { placementOf, type PersistedPlacement } from '../scheduler/reservations.js';
import { agentSpecFor, type AgentVmSpec } from './agent-spec.js';
import { listEveryHost, sightings, type FreshLists } from './find-vm.js';
import { destroyOn, jobVm, nowOf, recordJobEvents, type VmJobDeps } from './vm-job-deps.js';

type RestoreState = ParamsOf<'VM.create'>['restoreState'];

/** Agent answers to VM.create that leave the VM possibly created: the agent's list decides. */
const MAYBE_CREATED = new Set([4 /* exists */, 1002 /* timeout */, 1007 /* no answer in time */]);

export function startJob(d: VmJobDeps): JobHandler {
  return async (ctx) => {
    const vmId = ctx.job.targetId;
    // The reservation the request made goes with the job, whatever ends it.
    const vm = await jobVm(d, ctx).catch((e: unknown) => { d.reservations.release(vmId, ctx.job.id); throw e; });
    let placement = placementOf(ctx.job);
    if (placement === undefined) {
      placement = await ctx.step('place the VM', () => d.starts.placeForJob(vm, (ctx.job.params['hostId'] as string | null) ?? null, ctx.correlationId));
      await ctx.remember('placement', placement);
    }
    d.reservations.attach(vmId, ctx.job.id);
    let done = false;
    try {
      await run(d, ctx, vm.name, placement);
      done = true;
      await d.restore?.resumed(ctx, vmId);
    } finally {
      d.reservations.release(vmId, ctx.job.id);
      if (!done && !ctx.signal.aborted) await settleFailure(d, ctx, vmId);
    }
  };
}

async function run(d: VmJobDeps, ctx: JobContext, name: string, placement: PersistedPlacement): Promise<void> {
  const vmId = ctx.job.targetId;
  const hostId = placement.hostId;
  if ((await d.store.vms.get(vmId)).desiredState !== 'up') throw new JobFailure('Cancelled', `VM ${name} was stopped before it was started`, { vmId });

  const lists = await ctx.step('look for the VM on every host', () => listEveryHost(d.links, d.monitor, d.settings, ctx.correlationId));
  const seen = sightings(lists, vmId);
  const runningOn = seen.filter((x) => x.status !== 'Down');
  if (runningOn.length > 0) return adopt(d, ctx, lists, runningOn.map((x) => x.hostId));

  // Where it could be without being listed: where it was sent, or last seen. Those must answer.
  const rec = d.registry.record(vmId)!;
  const could = new Set([hostId, rec.hostId, rec.startInFlight?.hostId].filter((h): h is string => h != null));
  const silent = [...could].filter((h) => h in lists.unanswered);
  if (silent.length > 0) {
    throw new JobFailure('HostUnreachable', `host ${silent.join(', ')} did not answer (${silent.map((h) => lists.unanswered[h]).join('; ')}): `
      + 'whether the VM is there is not known, so it is neither created again nor elsewhere', { hosts: silent });
  }
  if (seen.some((x) => x.hostId === hostId)) await forgetLeftover(d, ctx, hostId);

  const vm = await d.store.vms.get(vmId);
  const spec = await ctx.step('resolve disks and networks for the host', () => agentSpecFor(vm, hostId, d.store, d.facts), { hostId });
  const restoreState = await d.restore?.stateFor(ctx, vmId);
  const since = await create(d, ctx, lists, hostId, spec, restoreState);
  await ctx.progress(60);
  await ctx.step('wait for Up', () => waitUp(d, ctx, hostId, since), { hostId });
}

/**
 * The fresh lists show the VM on no host: a start an earlier run recorded never landed (or is
 * still arriving at that same host, whose agent refuses a second create). The start guard
 * decides on these lists; the start is persisted with the job before VM.create is sent.
 */
async function create(d: VmJobDeps, ctx: JobContext, lists: FreshLists, hostId: string, spec: AgentVmSpec, restoreState?: RestoreState): Promise<number> {
  const vmId = ctx.job.targetId;
  const base = { ...d.registry.record(vmId)!, startInFlight: null };
  let begun;
  try {
    begun = beginStart(base, lists.reports, hostId, nowOf(d), d.settings, ctx.job.id);
  } catch (e) {
    if (e instanceof VmStateError) throw new JobFailure('Conflict', e.message, { blockers: e.blockers }, { cause: e });
    throw e;
  }
  await ctx.remember('startInFlight', begun.record.startInFlight);
  d.registry.update(begun.record);
  await recordJobEvents(d, ctx, begun.events);

  const outcome = await ctx.step(restoreState ? 'VM.create from the saved state' : 'VM.create', () => callCreate(d, ctx, hostId, spec, restoreState), { hostId });
  const after = recordStartOutcome(d.registry.record(vmId)!, outcome, nowOf(d));
  d.registry.update(after.record);
  await recordJobEvents(d, ctx, after.events);
  if (outcome.result === 'refused') throw new JobFailure('AgentRefused', `host ${hostId} refused to create the VM: ${outcome.error}`, { hostId });
  return begun.record.startInFlight!.since;
}

async function callCreate(d: VmJobDeps, ctx: JobContext, hostId: string, spec: AgentVmSpec, restoreState?: RestoreState): Promise<StartOutcome> {
  try {
    await d.links.call(hostId, 'VM.create', { vmID: ctx.job.targetId, spec, ...(restoreState && { restoreState }) }, { correlationId: ctx.correlationId });
    return { hostId, result: 'created' };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    // Never sent, or answered with an error that created nothing: refused. No answer, or "exists": unknown.
    if (e instanceof NotConnectedError) return { hostId, result: 'refused', error };
    if (e instanceof RpcCallError && !MAYBE_CREATED.has(e.code)) return { hostId, result: 'refused', error: `${error} (${e.code})` };
    if (e instanceof HostvisorClientError || e instanceof RpcCallError) return { hostId, result: 'unknown', error };
    throw e;
  }
}

/** The VM already runs (a resumed start whose create landed, or a start made past this job): the agents' state stands. */
async function adopt(d: VmJobDeps, ctx: JobContext, lists: FreshLists, hosts: string[]): Promise<void> {
  const vmId = ctx.job.targetId;
  const r = reconcileVm(d.registry.record(vmId)!, lists.reports, nowOf(d), d.settings);
  d.registry.update({ ...r.record, desired: 'running' });
  await recordJobEvents(d, ctx, r.events);
  ctx.log('info', 'the VM already runs: followed, not created again', { hosts });
  if (hosts.length > 1) throw new JobFailure('RunningTwice', `the VM runs on ${hosts.length} hosts: ${hosts.join(', ')}`, { hosts });
  await ctx.step('wait for Up', () => waitUp(d, ctx, hosts[0]!, nowOf(d)), { hostId: hosts[0]! });
}

/** A Down VM of this id on the host (a launch that failed before) would make VM.create answer 4: the agent forgets it first. */
async function forgetLeftover(d: VmJobDeps, ctx: JobContext, hostId: string): Promise<void> {
  if (ctx.memo('startInFlight') !== undefined) {
    throw new JobFailure('LaunchFailed', `the VM was created on host ${hostId} by this job before the controller restarted, and is Down there`, { hostId });
  }
  await ctx.step('forget the Down VM an earlier start left', () => destroyOn(d, ctx, hostId), { hostId });
}

/** Up on the host, as reconcile records it from the agent's events and lists; a launch that fails ends it at once. */
async function waitUp(d: VmJobDeps, ctx: JobContext, hostId: string, from: number): Promise<void> {
  const vmId = ctx.job.targetId;
  await d.registry.waitFor(() => {
    const r = d.registry.record(vmId);
    if (r === undefined) return new JobFailure('NotFound', 'the VM was deleted meanwhile');
    if (r.hostId === hostId && r.status === 'Up' && r.startInFlight === null) return true;
    const down = d.reconciler.wentDown(vmId, hostId, from);
    if (down) return new JobFailure('LaunchFailed', `the VM went Down on host ${hostId}: ${down.exitMessage ?? 'no reason given'}`, { hostId });
    if (r.startInFlight === null && r.status === 'Down') return new JobFailure('StartFailed', `host ${hostId} does not run the VM`, { hostId });
    return false;
  }, d.settings.vmStartTimeoutMs, () => {
    const r = d.registry.record(vmId);
    return new JobFailure('StartTimeout', `the VM is not Up on host ${hostId} after ${Math.round(d.settings.vmStartTimeoutMs / 1000)} s (${r?.status ?? 'gone'})`, { hostId, status: r?.status });
  }, ctx.signal);
}

/**
 * After a failure: a launch that failed is forgotten by its agent (a later start is not
 * refused with 4), and a VM that runs nowhere is meant down again, so it can be started again.
 */
async function settleFailure(d: VmJobDeps, ctx: JobContext, vmId: string): Promise<void> {
  try {
    let r = d.registry.record(vmId);
    const f = r?.startInFlight;
    if (r && f) {
      const down = d.reconciler.wentDown(vmId, f.hostId, f.since);
      if (down) {
        const after = recordStartOutcome(r, { hostId: f.hostId, result: 'refused', error: down.exitMessage ?? 'the launch failed' }, nowOf(d));
        d.registry.update(after.record);
        await recordJobEvents(d, ctx, after.events);
        await destroyOn(d, ctx, f.hostId).catch(() => undefined);
      }
    }
    r = d.registry.record(vmId);
    if (r && r.status === 'Down' && r.startInFlight === null) {
      await d.store.vms.transitionDesired(vmId, 'up', 'down');
      d.registry.update({ ...r, desired: 'stopped', noted: null });
    }
  } catch (e) {
    ctx.log('warn', 'could not settle the VM after its start failed', { error: String(e) });
  }
}
