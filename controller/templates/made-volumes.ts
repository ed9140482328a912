// What a template or clone job made on storage, and its undoing when the job fails (as oVirt's
// engine deletes the images of a failed AddVmTemplate or AddVm from a template).
//   - Before each volume is asked of the SPM, the job records it with the job (remember), so a
//     controller restarted at any point knows what its earlier run may have made.
//   - On a failure (not the controller stopping: that job resumes), the failure is recorded
//     first, then the records are marked failed, then each recorded image is deleted with
//     Image.delete, best-effort and logged. A restart during the clean-up finishes it.
//   - The job then fails with its first error, its details naming what was deleted and what
//     could not be (`cleanup`), so nothing is left behind silently.
// The SPM rolls back the volume of a task that failed itself; the clean-up finds it gone.
import type { JobContext } from '../jobs/executor.js';
import { JobFailure, jobErrorOf } from '../jobs/job-failure.js';
import type { JobError } from '../model/jobs.js';
import { errorFields } from '../agents/log-fn.js';
import type { StorageDeps } from '../storage/storage-deps.js';
import { cleanupPlan, type ImageRef, type MadeVolume } from './cleanup-plan.js';
import { deleteImage } from './volume-tasks.js';

const MADE = 'madeVolumes';
const FAILED = 'failure';

export interface CleanupOutcome {
  deleted: MadeVolume[];
  notDeleted: (MadeVolume & { error: string })[];
  kept: { volume: MadeVolume; reason: string }[];
}

export interface Undo {
  clusterId: string;
  /** the images the job reads from: never deleted */
  notOurs: ImageRef[];
  /** marks the job's records failed (a failed template is no clone source; a clone's disks are not started) */
  markFailed(): Promise<void>;
}

/** Records that the job is about to ask for this volume (before the SPM task is sent). */
export async function willMake(ctx: JobContext, v: MadeVolume): Promise<void> {
  const made = ctx.memo<MadeVolume[]>(MADE) ?? [];
  if (made.some((m) => m.storageDomainId === v.storageDomainId && m.imageId === v.imageId && m.volumeId === v.volumeId)) return;
  await ctx.remember(MADE, [...made, { storageDomainId: v.storageDomainId, imageId: v.imageId, volumeId: v.volumeId }]);
}

/** An earlier run of this job failed and began its clean-up (a restart came before it ended). */
export function failedEarlier(ctx: JobContext): boolean {
  return ctx.memo<JobError>(FAILED) !== undefined;
}

/** Runs the job's work; on its failure deletes what the job made and fails with what was done. */
export async function undoOnFailure(deps: StorageDeps, ctx: JobContext, undo: Undo, work: () => Promise<void>): Promise<void> {
  const earlier = ctx.memo<JobError>(FAILED);
  if (earlier !== undefined) {
    ctx.log('info', 'the job had failed before the controller stopped: finishing its clean-up', { code: earlier.code });
    return failAfterCleanup(deps, ctx, undo, earlier, undefined);
  }
  try {
    await work();
  } catch (e) {
    if (ctx.signal.aborted) throw e; // the controller is stopping: the job resumes at the next start
    await failAfterCleanup(deps, ctx, undo, jobErrorOf(e), e);
  }
}

async function failAfterCleanup(deps: StorageDeps, ctx: JobContext, undo: Undo, error: JobError, cause: unknown): Promise<never> {
  await ctx.remember(FAILED, error);
  // The volumes go even if the records could not be marked (a store fault is logged, not fatal here).
  await undo.markFailed().catch((e: unknown) => ctx.log('error', 'could not mark the failed job\'s records failed', errorFields(e)));
  const out = await removeMade(deps, ctx, undo);
  const said = out.notDeleted.length + out.kept.length > 0
    ? `; ${out.notDeleted.length + out.kept.length} volume(s) it made could not be deleted: ${[...out.notDeleted.map((v) => `${v.imageId} (${v.error})`), ...out.kept.map((k) => `${k.volume.imageId} (${k.reason})`)].join(', ')}`
    : out.deleted.length > 0 ? `; the ${out.deleted.length} volume(s) it made were deleted` : '';
  throw new JobFailure(error.code, `${error.message}${said}`, { ...error.details, cleanup: out }, { cause });
}

/** Deletes each image the job recorded, last first; one that fails is logged and the others still go. */
export async function removeMade(deps: StorageDeps, ctx: JobContext, undo: Pick<Undo, 'clusterId' | 'notOurs'>): Promise<CleanupOutcome> {
  const plan = cleanupPlan(ctx.memo<MadeVolume[]>(MADE) ?? [], undo.notOurs);
  const out: CleanupOutcome = { deleted: [], notDeleted: [], kept: plan.keep };
  for (const k of plan.keep) ctx.log('error', 'a volume recorded as made is in an image the job read from: not deleted', { ...k.volume, reason: k.reason });
  for (const v of plan.remove) {
    try {
      await deleteImage(deps, ctx, { clusterId: undo.clusterId, image: v, memoKey: `undoTask:${v.imageId}` });
      out.deleted.push(v);
      ctx.log('info', 'deleted an image the failed job made', { ...v });
    } catch (e) {
      if (ctx.signal.aborted) throw e; // resumed later: the clean-up is finished then
      out.notDeleted.push({ ...v, error: jobErrorOf(e).message });
      ctx.log('warn', 'could not delete an image the failed job made: it is left on storage', { ...v, ...errorFields(e) });
    }
  }
  return out;
}
