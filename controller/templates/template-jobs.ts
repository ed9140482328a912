// template.create and template.delete. A template's volumes are made one after another by the
// SPM (Volume.copy, volType SHARED: each source chain collapsed into one read-only volume), the
// job's progress following each copy's; a delete removes each volume's image, then the record.
// A create that fails deletes the volumes it made and leaves the template failed (made-volumes.ts).
// The route has already refused a delete while thin clones depend on the template.
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { StorageDeps } from '../storage/storage-deps.js';
import { TemplateInUseError } from './errors.js';
import { jobProgress } from './progress.js';
import { copyVolume, deleteImage } from './volume-tasks.js';
import { failedEarlier, undoOnFailure, willMake } from './made-volumes.js';

export function templateCreateJob(deps: StorageDeps) {
  return async (ctx: JobContext): Promise<void> => {
    const { store } = deps;
    const tpl = await store.templates.get(ctx.job.targetId);
    if (tpl.status === 'ready') return; // an earlier run got to the end
    if (tpl.status !== 'pending' && !failedEarlier(ctx)) throw new JobFailure('Conflict', `template ${tpl.name} is ${tpl.status}: not made`, { status: tpl.status });
    const n = tpl.volumes.length;
    await undoOnFailure(deps, ctx, {
      clusterId: tpl.clusterId,
      notOurs: tpl.volumes.map((v) => ({ storageDomainId: v.storageDomainId, imageId: v.source.imageId })),
      markFailed: async () => { await store.templates.transition(tpl.id, ['pending'], 'failed'); },
    }, async () => {
      for (const [i, v] of tpl.volumes.entries()) {
        await willMake(ctx, v);
        await copyVolume(deps, ctx, {
          clusterId: tpl.clusterId, src: { storageDomainId: v.storageDomainId, ...v.source }, dst: v, volType: 'SHARED',
          memoKey: `copyTask:${v.volumeId}`, description: `template ${tpl.name} ${v.name}`,
          onProgress: (p) => ctx.progress(jobProgress(i, n, p)),
        });
        await ctx.progress(jobProgress(i + 1, n, 0));
        ctx.log('info', 'template volume made', { template: tpl.id, drive: v.name, volume: v.volumeId });
      }
    });
    await store.templates.transition(tpl.id, ['pending'], 'ready');
    await store.event({ kind: 'template.ready', subjectKind: 'template', subjectId: tpl.id, correlationId: ctx.correlationId,
      message: `template ${tpl.name}: ${n} SHARED volume(s) made from VM ${tpl.sourceVmId}`, details: { volumes: tpl.volumes.map((v) => v.volumeId) } });
  };
}

export function templateDeleteJob(deps: StorageDeps) {
  return async (ctx: JobContext): Promise<void> => {
    const { store } = deps;
    const tpl = await store.templates.find(ctx.job.targetId);
    if (tpl === undefined) return; // an earlier run removed it
    // Checked again here: a clone's disk recorded between the route's check and now still needs the volumes.
    const dependents = await store.templates.dependents(tpl.id);
    if (dependents.length > 0) {
      await store.templates.setStatus(tpl.id, 'ready');
      const e = new TemplateInUseError(tpl.name, dependents);
      throw new JobFailure('TemplateInUse', e.message, e.details);
    }
    const n = tpl.volumes.length;
    try {
      for (const [i, v] of tpl.volumes.entries()) {
        await deleteImage(deps, ctx, { clusterId: tpl.clusterId, image: v, memoKey: `deleteTask:${v.imageId}` });
        await ctx.progress(jobProgress(i + 1, n, 0));
      }
    } catch (e) {
      if (!ctx.signal.aborted) await store.templates.setStatus(tpl.id, 'failed');
      throw e;
    }
    await store.templates.delete(tpl.id);
    await store.event({ kind: 'template.deleted', subjectKind: 'template', subjectId: tpl.id, correlationId: ctx.correlationId,
      message: `template ${tpl.name}: its ${n} volume(s) deleted`, details: { images: tpl.volumes.map((v) => v.imageId) } });
  };
}
