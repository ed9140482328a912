// Live merge (VDSM's VM.merge, lib/vdsm/virt/livemerge.py): blockCommit of a
// volume of a running VM's drive into its parent. Answers at once; the job
// runs in the background, its state kept in the VM's domain XML metadata (an
// agent restart finds it there and reconciles it with libvirt's block job).
// Progress and the outcome come from VM.getJobs and VM_job_status events.
import { Type, type Static } from '@sinclair/typebox';
import { method } from '../method.js';
import { Uuid, withVmId } from '../types.js';

const MERGE_SINCE = '0.7';

export const MergeDrive = Type.Object({
  domainID: Uuid,
  imageID: Uuid,
  volumeID: Type.String({ ...Uuid, description: "the drive's current leaf (checked: a merge of a drive that moved on is refused)" }),
}, { additionalProperties: false });


export const MergeJob = Type.Object({
  id: Uuid,
  type: Type.Literal('merge'),
  drive: Type.Object({ domainID: Uuid, imageID: Uuid }),
  baseVolUUID: Uuid,
  topVolUUID: Uuid,
  state: Type.Union([Type.Literal('running'), Type.Literal('ready'), Type.Literal('pivoting'), Type.Literal('cleanup'), Type.Literal('done'), Type.Literal('failed')], {
    description: 'running: extending the base, then copying; ready: an active commit caught up, its pivot is due; pivoting: switching the drive to the base; cleanup: updating the chain; done / failed: ended (listed for jobs.keepEndedSec)',
  }),
  progress: Type.Integer({ minimum: 0, maximum: 100, description: "%: libvirt's block job cur/end; 100 once done" }),
  removedVolUUID: Type.Optional(Type.String({ ...Uuid, description: 'once done: the volume now out of the chain, marked ILLEGAL; the caller deletes it (Volume.delete, an SPM task)' })),
  measuredBytes: Type.Optional(Type.Number({ description: 'block COW base: what `qemu-img measure` said the base needs to hold the top over it' })),
  extendedToMiB: Type.Optional(Type.Number({ description: "block COW base: the base's LV size the merge left (the measure, plus the thin watermark for an active merge, and any extension while the commit ran)" })),
  error: Type.Optional(Type.Object({ code: Type.Integer(), message: Type.String() })),
});
export type MergeJobT = Static<typeof MergeJob>;

export const MERGE_METHODS = {
  'VM.merge': method({
    summary: "Live merge: commits topVolUUID of a running VM's drive into its parent baseVolUUID. Top the leaf: an active commit, pivoted to the base once it caught up (the VM's metadata then names the base as the drive's volume). Top internal: the overlay above it gets the base as backing file. On block domains a COW base is first extended to what `qemu-img measure` says the merge needs (rounded up to the chunk), through the SPM. The removed volume is marked ILLEGAL; the caller deletes it. A base that is a template's (SHARED) volume is refused with 219 before anything is touched. Answers at once with the job id.",
    params: withVmId({
      drive: MergeDrive,
      baseVolUUID: Uuid,
      topVolUUID: Uuid,
      bandwidth: Type.Optional(Type.Integer({ minimum: 0, maximum: 1024 * 1024, description: 'MiB/s for the copy; 0 or absent: unlimited' })),
      jobUUID: Uuid,
    }),
    result: Type.Object({ jobUUID: Uuid }),
    errors: ['noVM', 'externalVM', 'wrongState', 'invalidParams', 'mergeErr', 'volumeDoesNotExist', 'sharedVolumeNonWritable', 'libvirtError', 'libvirtUnavailable'],
    since: MERGE_SINCE,
    mutating: true,
  }),
  'VM.getJobs': method({
    summary: "The VM's block jobs (live merges) as the agent tracks them in the VM's metadata: running ones, and ended ones for a while so a caller sees the outcome.",
    params: withVmId({}),
    result: Type.Object({ jobs: Type.Array(MergeJob) }),
    errors: ['noVM'],
    since: MERGE_SINCE,
    mutating: false,
  }),
};

export const JobStatusEventBody = Type.Object({ jobs: Type.Array(MergeJob) });
