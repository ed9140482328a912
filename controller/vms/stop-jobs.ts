// The vm.stop and vm.shutdown jobs. Both first let a start of the VM that is under way end (it
// sees the VM meant down and does not create it, or it has created it and the stop follows),
// then act on every host whose fresh list shows the VM running: vm.stop powers it off
// (VM.destroy); vm.shutdown asks the guest (VM.shutdown, each step bounded), then powers off
// what did not stop, and destroys what did so its agent forgets it. The record then follows a
// fresh list: the agent says Down, the controller does not assume it.
import { RpcCallError } from '../../api/client/errors.js';
import type { JobContext, JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import { reconcileVm } from '../reconcile/reconcile-vm.js';
import { listEveryHost, sightings } from './find-vm.js';
import { destroyOn, jobVm, nowOf, recordJobEvents, type VmJobDeps } from './vm-job-deps.js';

const START_POLL_MS = 250;

export function stopJob(d: VmJobDeps, how: 'stop' | 'shutdown'): JobHandler {
  return async (ctx) => {
    const vmId = (await jobVm(d, ctx)).id;
    if (await d.store.jobs.activeFor(vmId, ['vm.start'])) await ctx.step('let the start under way end', () => startEnded(d, ctx));

    const rec = d.registry.record(vmId)!;
    d.registry.update({ ...rec, desired: 'stopped' });
    const lists = await ctx.step('look for the VM on every host', () => listEveryHost(d.links, d.monitor, d.settings, ctx.correlationId));
    const on = sightings(lists, vmId).filter((x) => x.status !== 'Down').map((x) => x.hostId);
    const could = [rec.hostId, rec.startInFlight?.hostId].filter((h): h is string => h != null);
    const silent = [...new Set(could)].filter((h) => h in lists.unanswered && !on.includes(h));
    await ctx.progress(30);

    for (const hostId of on) {
      if (how === 'shutdown') await shutdownOn(d, ctx, hostId);
      await ctx.step('VM.destroy', () => destroyOn(d, ctx, hostId), { hostId });
    }
    // Down leftovers (a failed launch, a guest that shut itself down) are forgotten too.
    for (const x of sightings(lists, vmId).filter((s) => s.status === 'Down')) await destroyOn(d, ctx, x.hostId).catch(() => undefined);

    const after = await ctx.step('confirm with the agents', () => listEveryHost(d.links, d.monitor, d.settings, ctx.correlationId));
    // A start this stop followed is over: when every host it could be on answered, nothing is in flight any more.
    const base = d.registry.record(vmId)!;
    const r = reconcileVm(silent.length === 0 ? { ...base, startInFlight: null } : base, after.reports, nowOf(d), d.settings);
    d.registry.update({ ...r.record, desired: 'stopped' });
    await recordJobEvents(d, ctx, r.events);
    if (silent.length > 0) {
      throw new JobFailure('HostUnreachable', `host ${silent.join(', ')} did not answer (${silent.map((h) => lists.unanswered[h]).join('; ')}): the VM may still run there (${r.record.status})`, { hosts: silent });
    }
    const still = sightings(after, vmId).filter((x) => x.status !== 'Down');
    if (still.length > 0) throw new JobFailure('StillRunning', `the VM still runs on ${still.map((x) => `${x.hostId} (${x.status})`).join(', ')}`, { hosts: still.map((x) => x.hostId) });
  };
}

/** VM.shutdown with the guest's time per step; a guest that does not stop is powered off by the destroy that follows. */
async function shutdownOn(d: VmJobDeps, ctx: JobContext, hostId: string): Promise<void> {
  const asked = ctx.job.params['timeoutSeconds'];
  const stepS = typeof asked === 'number' ? asked : Math.max(1, Math.round(d.settings.vmShutdownTimeoutMs / 1000));
  await ctx.step('VM.shutdown', async () => {
    try {
      const r = await d.links.call(hostId, 'VM.shutdown', { vmID: ctx.job.targetId, timeout: stepS },
        { correlationId: ctx.correlationId, timeoutMs: 2 * stepS * 1000 + d.settings.agentCallTimeoutMs });
      ctx.log('info', 'VM shut down by the guest', { hostId, method: r.method, status: r.status });
    } catch (e) {
      // Not stopped in time (1002), already Down (1003), gone (1): the destroy that follows settles each.
      if (!(e instanceof RpcCallError)) throw e;
      ctx.log('info', 'the guest did not shut down; powering it off', { hostId, error: e.message, code: e.code });
    }
  }, { hostId });
}

/** Waits (bounded by the start's own timeout) until no start job of the VM is unfinished. */
async function startEnded(d: VmJobDeps, ctx: JobContext): Promise<void> {
  const until = nowOf(d) + d.settings.vmStartTimeoutMs + d.settings.agentCallTimeoutMs;
  while (await d.store.jobs.activeFor(ctx.job.targetId, ['vm.start'])) {
    if (nowOf(d) > until) throw new JobFailure('StartUnderWay', 'a start of the VM did not end in time; stop it again later', {});
    if (ctx.signal.aborted) throw ctx.signal.reason;
    await new Promise((r) => setTimeout(r, START_POLL_MS));
  }
}
