// A start of a suspended VM resumes it (the vm.start job calls these, controller/vms): VM.create
// with restoreState on whatever host the scheduler placed it on, then, once it is Up from that
// state, its state volume is deleted (an SPM task). The record turns 'resumed' first, so a state
// volume whose delete fails is never restored from again; the next suspend deletes it.
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import { recordDecisionEvent } from '../runtime/record-event.js';
import { decisionEvent } from '../decision-event.js';
import { errorText } from '../storage/agent-answer.js';
import type { StartRestore } from '../vms/vm-job-deps.js';
import { deletePoolImage } from './pool-volumes.js';
import { agentRef, volumeHomeOf, type VmImageDeps } from './vm-image-deps.js';

export function startRestore(d: VmImageDeps): StartRestore {
  const { store } = d.vms;
  return {
    async stateFor(_ctx, vmId) {
      const restoring = await store.jobs.activeFor(vmId, ['vm.snapshot.restore']);
      if (restoring) throw new JobFailure('Conflict', `the VM's disks are being restored to a snapshot (job ${restoring.id}): it is not started meanwhile`, { job: restoring.id });
      const row = await store.hibernations.find(vmId);
      if (row === undefined || row.state === 'resumed') return undefined;
      if (row.state === 'saving') {
        throw new JobFailure('SuspendUnderWay', `the VM's suspend (job ${row.jobId}) has not finished, or its outcome is unknown (GET /vms/${vmId} says why): it is not started meanwhile; DELETE /vms/${vmId}/hibernation discards it`, { job: row.jobId });
      }
      const home = await volumeHomeOf(store, await store.vms.get(vmId));
      return agentRef(home.poolId, row.stateVolume);
    },

    async resumed(ctx: JobContext, vmId: string) {
      const row = await store.hibernations.find(vmId);
      if (row === undefined || row.state === 'saving') return;
      const vm = await store.vms.get(vmId);
      if (row.snapshotId !== null) {
        // A snapshot's RAM state: the volume stays the snapshot's, to restore it again.
        await store.hibernations.delete(vmId);
        await store.event({ kind: 'vm.resumed', subjectKind: 'vm', subjectId: vmId, correlationId: ctx.correlationId,
          message: `VM ${vm.name} resumed from snapshot ${row.snapshotId}'s RAM state`, details: { snapshotId: row.snapshotId } });
        return;
      }
      if (row.state === 'suspended') await store.hibernations.setState(vmId, 'resumed', row.hostId);
      try {
        const home = await volumeHomeOf(store, vm);
        await ctx.step('delete the state volume', () => deletePoolImage(d.storage, ctx, { clusterId: home.clusterId, ...row.stateVolume }, 'resumedStateTask'),
          { detail: `volume ${row.stateVolume.volumeId}` });
        await store.hibernations.delete(vmId);
        await store.event({ kind: 'vm.resumed', subjectKind: 'vm', subjectId: vmId, correlationId: ctx.correlationId,
          message: `VM ${vm.name} resumed from its saved state; the state volume ${row.stateVolume.volumeId} is deleted`, details: { stateVolume: row.stateVolume } });
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        // The VM runs: the start succeeded. The stale volume is left for the next suspend to delete.
        ctx.log('warn', 'the VM resumed, but its state volume could not be deleted', { error: errorText(e) });
        await recordDecisionEvent(store, decisionEvent(Date.now(), 'vm.state-volume-left', 'warning',
          `VM ${vm.name} resumed, but its state volume ${row.stateVolume.volumeId} could not be deleted (${errorText(e)}); the next suspend deletes it`,
          { vm: vmId, data: { stateVolume: row.stateVolume } }), ctx.correlationId).catch(() => undefined);
      }
    },
  };
}
