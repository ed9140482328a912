// The vm.hibernation.discard job: a hibernation record and its state volume go, so that the
// next start boots the VM afresh. Made by DELETE /vms/{id}/hibernation (an admin's way out of a
// suspend whose outcome is unknown) and by the hibernation reconciler when the VM is seen running
// (its save did not complete: the volume was never a resume point). The job carries the state
// volume's image id, so a record that changed meanwhile (a new suspend) is left alone; a
// snapshot's RAM state volume stays the snapshot's. Resumed after a kill it simply goes on: the
// volume delete is an SPM task that reads "done" on storage.
import type { JobHandler } from '../jobs/executor.js';
import { listEveryHost, sightings } from '../vms/find-vm.js';
import { jobVm } from '../vms/vm-job-deps.js';
import { deletePoolImage } from './pool-volumes.js';
import { volumeHomeOf, type VmImageDeps } from './vm-image-deps.js';

export interface DiscardParams {
  /** the state volume's image: the record this job was made for */
  imageId: string;
  /** why: an admin's request (forced or not), or what the reconciler saw */
  reason: string;
}

export function hibernationDiscardJob(d: VmImageDeps): JobHandler {
  return async (ctx) => {
    const { store } = d.vms;
    const vm = await jobVm(d.vms, ctx);
    const p = ctx.job.params as unknown as DiscardParams;
    const row = await store.hibernations.find(vm.id);
    if (!row || row.stateVolume.imageId !== p.imageId) {
      ctx.log('info', 'the hibernation record is gone or another one took its place: nothing to discard', { imageId: p.imageId });
      return;
    }
    if (row.snapshotId === null) {
      const home = await volumeHomeOf(store, vm);
      await ctx.step('delete the state volume', () => deletePoolImage(d.storage, ctx, { clusterId: home.clusterId, domainId: row.stateVolume.domainId, imageId: row.stateVolume.imageId }, 'discardStateTask'),
        { detail: `volume ${row.stateVolume.volumeId} on domain ${row.stateVolume.domainId}` });
    }
    await store.hibernations.delete(vm.id);
    // The VM's desired state follows what runs: up where it runs, down where it runs nowhere (a start is then a fresh boot).
    const lists = await ctx.step('look for the VM on every host', () => listEveryHost(d.vms.links, d.vms.monitor, d.vms.settings, ctx.correlationId));
    const running = sightings(lists, vm.id).some((s) => s.status !== 'Down');
    if (!running) {
      await store.vms.transitionDesired(vm.id, 'up', 'down');
      const r = d.vms.registry.record(vm.id);
      if (r && r.desired !== 'stopped') d.vms.registry.update({ ...r, desired: 'stopped' });
    } else {
      const r = d.vms.registry.record(vm.id);
      if (r && r.desired !== 'running') d.vms.registry.update({ ...r, desired: 'running' });
    }
    await store.event({ kind: 'vm.hibernation.discarded', subjectKind: 'vm', subjectId: vm.id, correlationId: ctx.correlationId,
      message: `VM ${vm.name}: its hibernation (${row.state}) is discarded${row.snapshotId === null ? ` and its state volume ${row.stateVolume.volumeId} deleted` : ''}: ${p.reason}`,
      details: { state: row.state, stateVolume: row.stateVolume, reason: p.reason } });
    await ctx.progress(100);
  };
}
