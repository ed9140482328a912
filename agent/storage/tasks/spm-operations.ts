// What each SPM task does, and how its recovery steps restore consistency.
//
//   Volume.create      registers "remove volume" before anything is written:
//                      a failure, a stop or a restart leaves no half volume.
//   Volume.delete,     register "finish deletes": after a restart, a volume
//   Image.delete       the task had begun to delete (marked ILLEGAL, perhaps
//                      partly removed) is removed; untouched ones stay. A stop
//                      takes effect between volumes, so the base of the chain
//                      is left whole.
//   Volume.extendSize  registers "complete extend": after a restart the
//                      capacity change is applied again (idempotent), so the
//                      image and its metadata agree. Shrinking back is never
//                      safe (a guest may have seen the new size).
//   Volume.copy,       see copy-operations.ts.
//   Image.move
//   Volume.merge       see merge-operation.ts.
import type { AnyDomain } from '../pool.js';
import { VolumeExistsError, VolumeNotFoundError } from '../errors.js';
import type { Logger } from '../../log.js';
import { killLeftoverHelpers } from './leftovers.js';
import type { TaskOperation } from './manager.js';
import type { RecoveryStep, SpmTaskVerb, TaskRecord } from './record.js';
import { copyOperation, copyRecoveryLocks, moveOperation, sourceStillWhole } from './copy-operations.js';
import { imageLock, volumeIdTaken, volumeLock } from './volume-keys.js';
import { mergeOperation, settleMerge } from './merge-operation.js';

/** What the operations need from the pool. */
export interface TaskPool {
  domain(sdUUID: string): Promise<AnyDomain>;
  /** Throws 40 unless this host holds the SPM lease at its lver (checked before every SPM write). */
  assertSpm(): Promise<void>;
  /** Copies: the qemu-img timeouts (storage.copyTimeoutMs for convert, storage.qemuImgTimeoutMs for measure). */
  readonly copyTimeouts: { convertMs: number; qemuImgMs: number };
  /** VMs running on this host that use the image (a move is refused under them). */
  imageUsers(sdUUID: string, imgUUID: string): string[];
  readonly copyLog: Logger;
  /** Thin provisioning's chunk: a cold merge's block COW base is extended to its measure rounded up to it. */
  readonly chunkMiB: number;
}

type P = Record<string, unknown>;
const str = (p: P, k: string): string => p[k] as string;

export function spmOperation(pool: TaskPool, verb: SpmTaskVerb, p: P): TaskOperation {
  const sd = str(p, 'storagedomainID');
  const img = str(p, 'imageID');
  switch (verb) {
    case 'Volume.create': {
      const vol = str(p, 'volumeID');
      return {
        locks: [imageLock(sd, img), volumeLock(sd, vol)],
        run: async (ctx) => {
          await pool.assertSpm();
          const dom = await pool.domain(sd);
          // Under the locks, so the recovery step below can only ever remove what this task makes.
          if (await volumeIdTaken(dom, img, vol)) throw new VolumeExistsError(sd, vol);
          ctx.phase('check');
          await ctx.addRecovery({ kind: 'removeVolume', when: 'always', sdUUID: sd, imgUUID: img, volUUID: vol });
          const info = await dom.createVolume({
            imgUUID: img, volUUID: vol, capacity: p.size as number, format: p.volFormat as 'COW' | 'RAW', allocation: p.preallocate as 'SPARSE' | 'PREALLOCATED',
            ...(p.srcVolUUID ? { parentUUID: str(p, 'srcVolUUID') } : {}), ...(p.description ? { description: str(p, 'description') } : {}),
            ...(p.srcImgUUID ? { parentImgUUID: str(p, 'srcImgUUID') } : {}),
            ...(p.initialSize ? { initialSize: p.initialSize as number } : {}),
          }, { signal: ctx.signal, phase: ctx.phase });
          return { ...info };
        },
      };
    }
    case 'Volume.delete': {
      const vol = str(p, 'volumeID');
      return {
        locks: [imageLock(sd, img), volumeLock(sd, vol)],
        run: async (ctx) => {
          await pool.assertSpm();
          const dom = await pool.domain(sd);
          await ctx.addRecovery({ kind: 'finishDeletes', when: 'restart', sdUUID: sd, imgUUID: img, volUUIDs: [vol] });
          ctx.signal.throwIfAborted();
          await dom.deleteVolume(img, vol);
          ctx.phase('delete');
          return {};
        },
      };
    }
    case 'Image.delete':
      return {
        locks: [imageLock(sd, img)],
        run: async (ctx) => {
          await pool.assertSpm();
          const dom = await pool.domain(sd);
          const order = await dom.imageDeletionOrder(img);
          ctx.phase('list');
          await ctx.addRecovery({ kind: 'finishDeletes', when: 'restart', sdUUID: sd, imgUUID: img, volUUIDs: order });
          await dom.deleteImage(img, { signal: ctx.signal, phase: ctx.phase });
          return {};
        },
      };
    case 'Volume.extendSize': {
      const vol = str(p, 'volumeID');
      const newSize = p.newSize as number;
      return {
        locks: [imageLock(sd, img)],
        run: async (ctx) => {
          await pool.assertSpm();
          const dom = await pool.domain(sd);
          await ctx.addRecovery({ kind: 'completeExtend', when: 'restart', sdUUID: sd, imgUUID: img, volUUID: vol, newSize });
          ctx.signal.throwIfAborted();
          const info = await dom.extendVolumeSize(img, vol, newSize);
          ctx.phase('extend');
          return { ...info };
        },
      };
    }
    case 'Volume.copy': return copyOperation(pool, p);
    case 'Image.move': return moveOperation(pool, p);
    case 'Volume.merge': return mergeOperation(pool, p);
  }
}

/** The locks recovery of a loaded task takes: the same as the task's own. */
export function recoveryLocks(r: TaskRecord): string[] {
  const sd = str(r.params, 'storagedomainID');
  const img = str(r.params, 'imageID');
  if (r.verb === 'Volume.copy' || r.verb === 'Image.move') return copyRecoveryLocks(r.verb, r.params);
  const vol = r.params.volumeID as string | undefined;
  return [imageLock(sd, img), ...(vol && (r.verb === 'Volume.create' || r.verb === 'Volume.delete') ? [volumeLock(sd, vol)] : [])];
}

/**
 * Runs one recovery step as the SPM; returns what it did. Every step is
 * idempotent. After a restart, helpers the dead agent left working on the
 * volume are killed first (they would finish after the undo otherwise).
 */
export async function runRecoveryStep(pool: TaskPool, step: RecoveryStep, restart: boolean, log: Logger): Promise<string> {
  await pool.assertSpm();
  const dom = await pool.domain(step.sdUUID);
  switch (step.kind) {
    case 'undoCopy':
      if (!(await sourceStillWhole(pool, step.srcSdUUID, step.srcImgUUID))) {
        return `the move had begun to delete the source image ${step.srcImgUUID}: its copy ${step.volUUID} is the disk now and stays`;
      }
      // falls through: the source is whole, so the copy goes
    case 'removeVolume': {
      const killed = restart ? await killLeftoverHelpers(step.volUUID, log) : 0;
      const note = killed ? ` (after killing ${killed} helper(s) the dead agent left running on it)` : '';
      return (await dom.purgeVolume(step.imgUUID, step.volUUID))
        ? `removed the partly created volume ${step.volUUID}${note}`
        : `nothing of volume ${step.volUUID} was left to remove${note}`;
    }
    case 'finishDeletes': {
      const removed: string[] = [];
      const kept: string[] = [];
      let gone = 0;
      for (const vol of step.volUUIDs) {
        const legality = await dom.getVolumeInfo(step.imgUUID, vol).then((i) => i.legality, (e: unknown) => {
          if (e instanceof VolumeNotFoundError) return 'gone' as const;
          return 'unreadable' as const; // a half-deleted volume may have lost its metadata first
        });
        if (legality === 'gone') { gone++; continue; }
        if (legality === 'LEGAL') { kept.push(vol); continue; }
        if (await dom.purgeVolume(step.imgUUID, vol)) removed.push(vol); else gone++;
      }
      return [
        `${gone} volume(s) had been deleted`,
        removed.length ? `finished deleting ${removed.join(', ')}` : '',
        kept.length ? `${kept.length} volume(s) were not touched and remain (${kept.join(', ')})` : '',
      ].filter(Boolean).join(', ');
    }
    case 'settleMerge':
      return settleMerge(pool, { sd: step.sdUUID, img: step.imgUUID, base: step.baseVolUUID, top: step.volUUID }, restart, log);
    case 'completeExtend': {
      const info = await dom.extendVolumeSize(step.imgUUID, step.volUUID, step.newSize);
      return `volume ${step.volUUID} capacity is ${info.capacity} bytes, consistent with its image`;
    }
  }
}
