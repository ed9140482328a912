// Volume.merge: the cold merge (VDSM's SDM.merge, storage/merge.py), an SPM
// task for an image no VM runs on: the top volume is committed into its
// parent (the base) with `qemu-img commit`, then the chain's metadata leaves
// the top out. What stays is what VM.merge leaves: the base keeps its id
// (and becomes the leaf when the top was the leaf), the top is marked
// ILLEGAL, out of the chain, and the caller deletes it (Volume.delete).
//
// Consistency. `qemu-img commit -d` copies the top's clusters into the base
// and leaves the top whole, so the chain read through the top (or its child)
// reads the same data at every moment; only the base alone is "part merged".
// The base is ILLEGAL while it is written (as VDSM's volume operation), so
// no VM starts on the image meanwhile. The commit point is the top marked
// ILLEGAL, after qemu-img ended well. The recovery step (registered before the
// base is touched, run after a failure, a stop or an agent restart) goes
// forward past the commit point and back before it:
//   top ILLEGAL: the child (if any) is rebased onto the base (header, -u)
//                and names it as parent; the base is LEGAL again. Done.
//   top LEGAL:   the base is LEGAL again; the chain through the top reads as
//                before (the base holds some of the top's clusters, which the
//                top masks). A new Volume.merge does the merge from the start.
// Either way a restarted agent finds one consistent chain. After a restart
// the base's leaked clusters (a killed qemu-img commit's) are freed first.
import { MiB, roundUp, type VolumeInfo } from '../types.js';
import { SharedVolumeNonWritableError, StorageParamsError, VolumeBusyError, WrongLegalityError } from '../errors.js';
import { copyCacheModes } from '../copy-cache.js';
import { buildChain, childrenOf } from '../image.js';
import { QemuImg } from '../qemu-img.js';
import type { AnyDomain } from '../pool.js';
import type { TaskOperation } from './manager.js';
import type { TaskPool } from './spm-operations.js';
import { imageLock } from './volume-keys.js';
import { killLeftoverHelpers } from './leftovers.js';
import type { Logger } from '../../log.js';

type P = Record<string, unknown>;

export interface MergeSpec { sd: string; img: string; base: string; top: string }

export const mergeSpec = (p: P): MergeSpec =>
  ({ sd: p.storagedomainID as string, img: p.imageID as string, base: p.baseVolUUID as string, top: p.topVolUUID as string });

export const mergeLocks = (p: P): string[] => [imageLock(p.storagedomainID as string, p.imageID as string)];

const qemuFormat = (f: 'COW' | 'RAW') => (f === 'COW' ? 'qcow2' as const : 'raw' as const);

/**
 * What a merge would do, or why it is refused (before anything is touched):
 * the top must be in the image with the base as its parent, both LEGAL, the
 * base not SHARED (a template is never written), and no VM here runs on the image.
 */
export async function checkMerge(pool: TaskPool, dom: AnyDomain, m: MergeSpec): Promise<{ base: VolumeInfo; top: VolumeInfo; child?: string }> {
  const users = pool.imageUsers(m.sd, m.img);
  if (users.length) throw new VolumeBusyError(m.sd, m.img, users, 'a cold merge needs the VM stopped (a running VM is merged live, VM.merge)');
  const records = await dom.listVolumes();
  const chain = buildChain(m.sd, records, m.img);
  const at = chain.findIndex((v) => v.volUUID === m.top);
  if (at < 0 || chain[at]!.imgUUID !== m.img) throw new StorageParamsError(`volume ${m.top} is not in image ${m.img}'s chain`, 'volumeDoesNotExist');
  if (at === 0 || chain[at - 1]!.volUUID !== m.base) throw new StorageParamsError(`${m.base} is not the parent of ${m.top} in image ${m.img}`);
  const [base, top] = await Promise.all([dom.getVolumeInfo(chain[at - 1]!.imgUUID, m.base), dom.getVolumeInfo(m.img, m.top)]);
  if (base.voltype === 'SHARED' || base.image !== m.img) {
    throw new SharedVolumeNonWritableError(m.sd, m.base, 'it is not merged into (the top of a thin clone stays above its template)');
  }
  if (top.voltype === 'SHARED') throw new SharedVolumeNonWritableError(m.sd, m.top, 'a template volume is not merged away (its clones depend on it)');
  for (const v of [base, top]) if (v.legality !== 'LEGAL') throw new WrongLegalityError(m.sd, v.uuid, v.legality);
  if (base.format === 'RAW' && base.capacity < top.capacity) throw new StorageParamsError(`raw base ${m.base} (${base.capacity} bytes) is smaller than the top (${top.capacity})`);
  const children = childrenOf(records, m.top);
  if (children.length > 1) throw new StorageParamsError(`volume ${m.top} has ${children.length} children (${children.join(', ')}); a merge keeps one chain`);
  const child = children[0];
  return { base, top, ...(child ? { child } : {}) };
}

export function mergeOperation(pool: TaskPool, p: P): TaskOperation {
  const m = mergeSpec(p);
  return {
    locks: mergeLocks(p),
    run: async (ctx) => {
      await pool.assertSpm();
      const dom = await pool.domain(m.sd);
      const { base, top, child } = await checkMerge(pool, dom, m);
      const qemuImg = new QemuImg({ timeoutMs: pool.copyTimeouts.qemuImgMs, log: pool.copyLog });
      ctx.phase('check');
      return dom.withPrepared(m.img, m.top, {}, async (img) => {
        const topPath = img.chain.at(-1)!.path;
        const basePath = img.chain.at(-2)!.path;
        let measuredBytes: number | undefined;
        if (base.format === 'COW' && base.capacity < top.capacity) await dom.extendVolumeSize(m.img, m.base, top.capacity);
        if (dom.type === 'block' && base.format === 'COW') {
          // What a qcow2 holding the top over the base needs (VDSM's measure with baseID; no VM writes, so it is exact).
          measuredBytes = await qemuImg.measureCommit({ path: topPath, block: true }, { path: basePath, block: true, format: 'qcow2' });
          const wantedMiB = roundUp(measuredBytes, pool.chunkMiB * MiB) / MiB;
          const r = await dom.extendLV(m.base, wantedMiB);
          const seen = await dom.refreshVolume(m.base);
          if (seen < Math.min(r.size, wantedMiB * MiB)) throw new StorageParamsError(`base ${m.base} is ${seen} bytes after its extension to ${wantedMiB} MiB`);
          ctx.phase('extend');
        }
        await ctx.addRecovery({ kind: 'settleMerge', when: 'always', sdUUID: m.sd, imgUUID: m.img, volUUID: m.top, baseVolUUID: m.base });
        ctx.signal.throwIfAborted();
        await dom.setVolumeLegality(m.img, m.base, 'ILLEGAL'); // written from here on: no VM starts on it
        ctx.progress(0);
        const t0 = performance.now();
        const cache = await copyCacheModes([topPath], basePath, { timeoutMs: pool.copyTimeouts.qemuImgMs, log: pool.copyLog, what: { sd: m.sd, img: m.img, merge: m.top } });
        await qemuImg.commit({ path: topPath, format: 'qcow2' }, {
          timeoutMs: pool.copyTimeouts.convertMs, signal: ctx.signal, onProgress: (pct) => ctx.progress(Math.min(99, Math.floor(pct))),
          cache: cache.source === 'none' && cache.target === 'none' ? 'none' : 'writeback',
        });
        ctx.phase('commit');
        ctx.signal.throwIfAborted();
        await dom.setVolumeLegality(m.img, m.top, 'ILLEGAL'); // the commit point
        const note = await finishMerge(dom, qemuImg, m, child);
        ctx.phase('chain');
        ctx.progress(100);
        pool.copyLog.info('cold merge done', {
          sd: m.sd, img: m.img, base: m.base, top: m.top, leaf: !child, seconds: Math.round((performance.now() - t0) / 10) / 100, measuredBytes, note,
        });
        return dom.getVolumeInfo(m.img, m.base);
      });
    },
  };
}

/**
 * Past the commit point (the top ILLEGAL): the child, if any, is backed by
 * the base (qcow2 header and metadata), and the base is LEGAL. Idempotent.
 */
export async function finishMerge(dom: AnyDomain, qemuImg: QemuImg, m: MergeSpec, child: string | undefined): Promise<string> {
  if (child) {
    const base = await dom.getVolumeInfo(m.img, m.base);
    // -u: the header only; the backing file is not opened, so only the child need be active.
    await dom.withVolumesActive(m.img, [child], () => qemuImg.rebaseUnsafe(dom.volumePath(m.img, child), { name: m.base, format: qemuFormat(base.format) }));
    await dom.setVolumeParent(m.img, child, m.base);
  }
  await dom.setVolumeLegality(m.img, m.base, 'LEGAL');
  return child ? `${child} is backed by ${m.base}` : `${m.base} is the leaf`;
}

/** The recovery of a merge: forward past the commit point, back before it (see the top of this file). */
export async function settleMerge(pool: TaskPool, m: MergeSpec, restart: boolean, log: Logger): Promise<string> {
  // A killed agent's qemu-img commit runs on in its own process group: it must not write the base after this.
  if (restart) await killLeftoverHelpers(m.top, log);
  const dom = await pool.domain(m.sd);
  const top = await dom.getVolumeInfo(m.img, m.top);
  const qemuImg = new QemuImg({ timeoutMs: pool.copyTimeouts.qemuImgMs, log: pool.copyLog });
  const base = await dom.getVolumeInfo(m.img, m.base);
  // A commit killed mid-write leaves clusters allocated in the base that nothing references.
  if (restart && base.format === 'COW') await dom.withVolumesActive(m.img, [m.base], () => qemuImg.repairLeaks(dom.volumePath(m.img, m.base)));
  if (top.legality === 'LEGAL') {
    await dom.setVolumeLegality(m.img, m.base, 'LEGAL');
    return `the merge of ${m.top} into ${m.base} had not ended: the chain is as before (the base LEGAL again; merge again to finish)`;
  }
  const child = childrenOf(await dom.listVolumes(), m.top)[0];
  return `the merge of ${m.top} into ${m.base} had committed: ${await finishMerge(dom, qemuImg, m, child)}`;
}
