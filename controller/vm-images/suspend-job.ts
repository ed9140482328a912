// The vm.suspend job (POST /vms/{id}/suspend): the VM's RAM and device state goes to a RAW
// volume of the pool, made first as an SPM task, by the agent's VM.hibernate; the VM stops
// (Down, exit reason 10) and its agent forgets it. The store then says the VM is suspended, with
// its state volume, and the next start resumes it from there (resume.ts). A save that fails
// leaves the guest running, and the unused volume is deleted.
// Every run first looks at the real state: a run resumed after a controller kill finds the VM
// still Up (the hibernate never went, or failed: sent again), Saving State (followed), or gone
// from the host it was sent to (saved: an agent forgets a VM only after a good save).
import { randomUUID } from 'node:crypto';
import { HostvisorClientError } from '../../api/client/errors.js';
import type { JobContext, JobHandler } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { Vm } from '../model/vms.js';
import { agentCode, errorText } from '../storage/agent-answer.js';
import { sleepOrAbort } from '../storage/sleep.js';
import { listEveryHost, sightings } from '../vms/find-vm.js';
import { jobVm, nowOf } from '../vms/vm-job-deps.js';
import { createPoolVolume, deletePoolImage, stateVolumeBytes } from './pool-volumes.js';
import { agentRef, volumeHomeOf, type VmImageDeps, type VolumeHome } from './vm-image-deps.js';

/** Failures after which the save may still be going on, or may have worked: the volume stays. */
const OUTCOME_UNKNOWN = new Set(['SuspendTimeout', 'HostUnreachable']);
const SAVABLE = new Set(['Up', 'Paused', 'Saving State']);

type SaveOutcome = { saved: true } | { saved: false; status: string };

export function suspendJob(d: VmImageDeps): JobHandler {
  return async (ctx) => {
    const { store } = d.vms;
    const vm = await jobVm(d.vms, ctx);
    const home = await volumeHomeOf(store, vm);
    let row = await store.hibernations.find(vm.id);
    const lists = await ctx.step('look for the VM on every host', () => listEveryHost(d.vms.links, d.vms.monitor, d.vms.settings, ctx.correlationId));
    const seen = sightings(lists, vm.id);
    const running = seen.filter((x) => x.status !== 'Down');
    if (row?.state === 'suspended' && running.length === 0) { ctx.log('info', 'the VM is suspended already: an earlier run got to the end', {}); return; }
    if (row && row.state !== 'saving') {
      // A state volume whose VM runs again (resumed, or started past the controller): it is stale.
      if (row.snapshotId === null) await ctx.step('delete a stale state volume', () => deletePoolImage(d.storage, ctx, { clusterId: home.clusterId, ...row!.stateVolume }, 'staleStateTask'));
      await store.hibernations.delete(vm.id);
      row = undefined;
    }
    if (row && row.jobId !== ctx.job.id) throw new JobFailure('Conflict', `VM ${vm.name} has another suspend (job ${row.jobId}) under way`, { job: row.jobId });

    const sentTo = ctx.memo<string>('hibernateSentTo');
    if (running.length === 0) {
      if (sentTo !== undefined && row) {
        if (sentTo in lists.unanswered) throw new JobFailure('HostUnreachable', `host ${sentTo} did not answer: whether the VM's state was saved is not known`, { hostId: sentTo });
        // Forgotten by its agent: saved. Listed Down there: it stopped some other way.
        if (!seen.some((x) => x.hostId === sentTo)) return finish(d, ctx, vm, sentTo);
      }
      if (row) await abandon(d, ctx, home, vm);
      throw new JobFailure('NotRunning', `VM ${vm.name} is not running (${seen.map((x) => `${x.hostId}: ${x.status}`).join(', ') || 'listed nowhere'}): there is no state to save`, { vmId: vm.id });
    }
    if (running.length > 1) throw new JobFailure('RunningTwice', `VM ${vm.name} is listed on ${running.map((x) => x.hostId).join(', ')}`, { hosts: running.map((x) => x.hostId) });
    const { hostId, status } = running[0]!;
    if (!SAVABLE.has(status)) {
      if (row) await abandon(d, ctx, home, vm);
      throw new JobFailure('WrongState', `VM ${vm.name} is ${status} on ${hostId}: only an Up or Paused VM is suspended`, { status, hostId });
    }
    row ??= await store.hibernations.begin(vm.id, ctx.job.id,
      { domainId: home.domainId, imageId: randomUUID(), volumeId: randomUUID(), sizeBytes: stateVolumeBytes(vm.spec.memoryMiB) }, hostId);
    const vol = { clusterId: home.clusterId, ...row.stateVolume };
    try {
      if (status !== 'Saving State') {
        await ctx.step('create the state volume', () => createPoolVolume(d.storage, ctx, {
          ...vol, format: 'RAW', preallocate: home.block ? 'PREALLOCATED' : 'SPARSE', description: `hibernation state of VM ${vm.name}`,
        }, 'stateVolumeTask'), { detail: `${vol.sizeBytes} bytes on domain ${vol.domainId}` });
        await ctx.progress(30);
        setDesired(d, vm.id, 'stopped'); // a Down VM is what is meant from here: reconcile notes no difference
        await ctx.remember('hibernateSentTo', hostId);
        await ctx.step('VM.hibernate', () => hibernate(d, ctx, hostId, agentRef(home.poolId, vol)), { hostId });
      }
      await ctx.progress(50);
      const out = await ctx.step('wait for the state to be saved', () => followSave(d, ctx, hostId), { hostId });
      if (out.saved) return await finish(d, ctx, vm, hostId);
      throw new JobFailure('HibernateFailed', `the VM's state was not saved on ${hostId}; the VM is ${out.status} there`, { hostId, status: out.status });
    } catch (e) {
      if (ctx.signal.aborted || (e instanceof JobFailure && OUTCOME_UNKNOWN.has(e.code))) throw e;
      setDesired(d, vm.id, 'running');
      await abandon(d, ctx, home, vm).catch((err: unknown) => ctx.log('warn', 'could not delete the unused state volume', { error: errorText(err) }));
      throw e;
    }
  };
}

/** VM.hibernate; an answer that refuses it (wrong state, a hook) is a failure, no answer is followed. */
async function hibernate(d: VmImageDeps, ctx: JobContext, hostId: string, stateVolume: ReturnType<typeof agentRef>): Promise<void> {
  try {
    await d.vms.links.call(hostId, 'VM.hibernate', { vmID: ctx.job.targetId, stateVolume }, { correlationId: ctx.correlationId });
  } catch (e) {
    if (agentCode(e) !== undefined) throw new JobFailure('HibernateRefused', `host ${hostId} refused to hibernate the VM: ${errorText(e)}`, { hostId, agentCode: agentCode(e) }, { cause: e });
    if (!(e instanceof HostvisorClientError)) throw e;
    ctx.log('warn', 'VM.hibernate got no answer: following the VM on its host', { hostId, error: errorText(e) });
  }
}

/** The VM on its host until the save ends: gone from the list (the agent forgets a VM it saved), or back to another status. */
async function followSave(d: VmImageDeps, ctx: JobContext, hostId: string): Promise<SaveOutcome> {
  const s = d.vms.settings;
  const until = nowOf(d.vms) + s.vmSuspendTimeoutMs;
  let last = 'not asked yet';
  for (;;) {
    try {
      const r = await d.vms.links.call(hostId, 'Host.getVMList', {}, { correlationId: ctx.correlationId, timeoutMs: s.pollTimeoutMs });
      const v = r.vmList.find((x) => x.vmId === ctx.job.targetId);
      if (v === undefined) return { saved: true };
      if (v.status !== 'Saving State') return { saved: false, status: v.status };
      last = v.status;
    } catch (e) {
      last = `no answer: ${errorText(e)}`;
    }
    if (nowOf(d.vms) > until) {
      throw new JobFailure('SuspendTimeout', `the VM's state is not saved on ${hostId} after ${Math.round(s.vmSuspendTimeoutMs / 1000)} s (${last}); the state volume is kept`, { hostId });
    }
    await sleepOrAbort(s.vmStatePollMs, ctx.signal);
  }
}

async function finish(d: VmImageDeps, ctx: JobContext, vm: Vm, hostId: string): Promise<void> {
  const { store } = d.vms;
  await store.hibernations.setState(vm.id, 'suspended', hostId);
  await store.vms.transitionDesired(vm.id, 'up', 'down');
  setDesired(d, vm.id, 'stopped');
  const row = await store.hibernations.get(vm.id);
  await store.event({ kind: 'vm.suspended', subjectKind: 'vm', subjectId: vm.id, correlationId: ctx.correlationId,
    message: `VM ${vm.name} suspended on ${hostId}: its state is on volume ${row.stateVolume.volumeId}; the next start resumes it`, details: { hostId, stateVolume: row.stateVolume } });
  await ctx.progress(100);
}

/** The suspend did not happen: its state volume (made or not) and its record go. */
async function abandon(d: VmImageDeps, ctx: JobContext, home: VolumeHome, vm: Vm): Promise<void> {
  const row = await d.vms.store.hibernations.find(vm.id);
  if (!row) return;
  await ctx.step('delete the unused state volume', () => deletePoolImage(d.storage, ctx, { clusterId: home.clusterId, ...row.stateVolume }, 'unusedStateTask'));
  await d.vms.store.hibernations.delete(vm.id);
}

function setDesired(d: VmImageDeps, vmId: string, desired: 'running' | 'stopped'): void {
  const r = d.vms.registry.record(vmId);
  if (r && r.desired !== desired) d.vms.registry.update({ ...r, desired });
}
