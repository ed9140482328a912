// vm.clone: the volumes of a VM defined from a template (POST /vms {template, clone}), made by
// the SPM one after another. thin: Volume.create with the template's SHARED volume as backing
// file (srcImgUUID/srcVolUUID), at once and sharing its data; full: Volume.copy (volType LEAF),
// an independent copy whose progress the job follows. Each disk turns ready when its volume is
// made; the VM can be started once all are (the start job refuses a disk that is not ready).
// A failed clone deletes the volumes it made (never the template's) and marks all its disks
// failed; the VM stays defined, with the job's error saying what happened (made-volumes.ts).
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { CloneKind } from '../model/templates.js';
import type { StorageDeps } from '../storage/storage-deps.js';
import { jobProgress } from './progress.js';
import { copyVolume, thinCloneVolume } from './volume-tasks.js';
import { undoOnFailure, willMake } from './made-volumes.js';

export interface CloneJobParams { templateId: string; clone: CloneKind; disks: { diskId: string; drive: string }[] }

export function vmCloneJob(deps: StorageDeps) {
  return async (ctx: JobContext): Promise<void> => {
    const { store } = deps;
    const p = ctx.job.params as unknown as CloneJobParams;
    const tpl = await store.templates.get(p.templateId);
    const n = p.disks.length;
    await undoOnFailure(deps, ctx, {
      clusterId: tpl.clusterId,
      notOurs: tpl.volumes.map((v) => ({ storageDomainId: v.storageDomainId, imageId: v.imageId })),
      // Every disk of the clone: one made before the failure has lost its volume to the clean-up.
      markFailed: async () => {
        for (const ref of p.disks) {
          const disk = await store.disks.find(ref.diskId);
          if (disk?.status === 'pending' || disk?.status === 'ready') await store.disks.setStatus(disk.id, 'failed');
        }
      },
    }, async () => {
      for (const [i, ref] of p.disks.entries()) {
        const disk = await store.disks.get(ref.diskId);
        if (disk.status === 'ready') continue; // an earlier run made it
        const tv = tpl.volumes.find((v) => v.name === ref.drive);
        if (tv === undefined) throw new JobFailure('TemplateVolumeMissing', `template ${tpl.name} has no volume for drive ${ref.drive}`, { templateId: tpl.id, drive: ref.drive });
        const dst = { storageDomainId: disk.storageDomainId, imageId: disk.imageId, volumeId: disk.volumeId };
        const description = `${p.clone} clone of template ${tpl.name} ${ref.drive}`;
        await willMake(ctx, dst);
        if (p.clone === 'thin') {
          await thinCloneVolume(deps, ctx, { clusterId: tpl.clusterId, template: tv, dst, sizeBytes: tv.sizeBytes, memoKey: `cloneTask:${disk.id}`, description });
        } else {
          await copyVolume(deps, ctx, { clusterId: tpl.clusterId, src: tv, dst, volType: 'LEAF', memoKey: `cloneTask:${disk.id}`, description,
            onProgress: (pc) => ctx.progress(jobProgress(i, n, pc)) });
        }
        await store.disks.setStatus(disk.id, 'ready');
        await ctx.progress(jobProgress(i + 1, n, 0));
        await store.event({ kind: 'disk.ready', subjectKind: 'disk', subjectId: disk.id, correlationId: ctx.correlationId,
          message: `disk ${disk.name}: ${description}`, details: { imageId: disk.imageId, volumeId: disk.volumeId, templateId: tpl.id } });
      }
    });
  };
}
