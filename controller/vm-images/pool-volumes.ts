// Volumes a VM's image operations make and remove on the pool (a hibernation's state volume, a
// snapshot's new leaves and memory volume), each as an SPM task followed by runSpmTask under
// its own memo key, so a job that runs several tasks resumes each where it was. "Done" is read
// on storage: a create is done when the volume is there and LEGAL (a create that did not finish
// leaves none, or an ILLEGAL one), a delete when it is gone.
import type { JobContext } from '../jobs/executor.js';
import { ERRORS } from '../../api/errors.js';
import { agentCode } from '../storage/agent-answer.js';
import { runSpmTask } from '../storage/spm-task.js';
import type { StorageDeps } from '../storage/storage-deps.js';

const NOT_THERE = new Set<number>([ERRORS.volumeDoesNotExist.code, ERRORS.imageDoesNotExist.code]);

export interface PoolVolume {
  clusterId: string;
  domainId: string;
  imageId: string;
  volumeId: string;
}

export interface NewVolume extends PoolVolume {
  sizeBytes: number;
  format: 'COW' | 'RAW';
  preallocate: 'SPARSE' | 'PREALLOCATED';
  /** the parent in the same image: a snapshot's new leaf on the current one */
  srcVolUUID?: string;
  description: string;
}

/** The volume's legality on the SPM; null when it is not there. */
export async function legality(deps: StorageDeps, ctx: JobContext, spm: string, v: PoolVolume): Promise<string | null> {
  try {
    const info = await deps.runtime.links.call(spm, 'Volume.getInfo', { storagedomainID: v.domainId, imageID: v.imageId, volumeID: v.volumeId }, { correlationId: ctx.correlationId });
    return info.legality;
  } catch (e) {
    if (NOT_THERE.has(agentCode(e) ?? 0)) return null;
    throw e;
  }
}

export async function createPoolVolume(deps: StorageDeps, ctx: JobContext, v: NewVolume, memoKey: string): Promise<void> {
  await runSpmTask(deps, ctx, {
    clusterId: v.clusterId, verb: 'Volume.create', memoKey,
    params: {
      storagedomainID: v.domainId, imageID: v.imageId, volumeID: v.volumeId, size: v.sizeBytes, volFormat: v.format, preallocate: v.preallocate,
      description: v.description.slice(0, 210), ...(v.srcVolUUID !== undefined && { srcVolUUID: v.srcVolUUID }),
    },
    done: async (spm) => (await legality(deps, ctx, spm, v)) === 'LEGAL',
  });
}

/** Deletes one volume (it must have no children); a volume or image that is not there is deleted already. */
export async function deletePoolVolume(deps: StorageDeps, ctx: JobContext, v: PoolVolume, memoKey: string): Promise<void> {
  try {
    await runSpmTask(deps, ctx, {
      clusterId: v.clusterId, verb: 'Volume.delete', memoKey,
      params: { storagedomainID: v.domainId, imageID: v.imageId, volumeID: v.volumeId },
      done: async (spm) => (await legality(deps, ctx, spm, v)) === null,
    });
  } catch (e) {
    if (!NOT_THERE.has(agentCodeOf(e) ?? 0)) throw e;
  }
}

/** Deletes a whole image (a state or memory volume is an image of its own). */
export async function deletePoolImage(deps: StorageDeps, ctx: JobContext, v: Omit<PoolVolume, 'volumeId'>, memoKey: string): Promise<void> {
  try {
    await runSpmTask(deps, ctx, {
      clusterId: v.clusterId, verb: 'Image.delete', memoKey,
      params: { storagedomainID: v.domainId, imageID: v.imageId },
      done: async (spm) => {
        try {
          const r = await deps.runtime.links.call(spm, 'StorageDomain.getVolumes', { storagedomainID: v.domainId, imageID: v.imageId }, { correlationId: ctx.correlationId });
          return r.volumes.length === 0;
        } catch (e) {
          if (NOT_THERE.has(agentCode(e) ?? 0)) return true;
          throw e;
        }
      },
    });
  } catch (e) {
    if (!NOT_THERE.has(agentCodeOf(e) ?? 0)) throw e;
  }
}

/** The agent's code in an error or in a failed task (JobFailure details.agentCode). */
function agentCodeOf(e: unknown): number | undefined {
  const d = (e as { details?: Record<string, unknown> } | null)?.details;
  return typeof d?.['agentCode'] === 'number' ? d['agentCode'] : agentCode(e);
}

/** VDSM's rule for a RAM state volume (api/ StateVolume): the VM's memory, plus 10 % and 64 MiB. */
export function stateVolumeBytes(memoryMiB: number): number {
  return (Math.ceil(memoryMiB * 1.1) + 64) * 1024 * 1024;
}
