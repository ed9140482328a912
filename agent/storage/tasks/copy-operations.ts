// Volume.copy (VDSM's copyImage) and Image.move as SPM tasks.
//
//   Volume.copy  collapses the chain ending at the source volume into one new
//                volume of a new image, in this or another domain (file or
//                block), with `qemu-img convert -p -n -t none -T none` (O_DIRECT
//                where the storage takes it, copy-cache.ts); the task's progress
//                is qemu-img's, which then follows the writes. It registers "remove volume" before the new
//                volume exists, so a failure, a Task.stop (qemu-img is killed)
//                or a restart leaves nothing behind. The copy is ILLEGAL until
//                every byte is there; volType SHARED then marks it a template.
//   Image.move   copies the image (same image and leaf ids) to another
//                domain, then deletes the source. Its undo step removes the
//                copy only while the source is whole; the source's volumes
//                are all marked ILLEGAL before the first is deleted (the
//                commit point), so after a restart the deletion is finished
//                and the copy kept. Past that point a stop has nothing to undo.
import { MiB } from '../types.js';
import { StorageParamsError, VolumeBusyError, VolumeExistsError, VolumeHasChildrenError } from '../errors.js';
import { copyCacheModes, type CopyCache } from '../copy-cache.js';
import { buildChain } from '../image.js';
import { QemuImg } from '../qemu-img.js';
import type { VolumeAllocation, VolumeFormat, VolumeInfo } from '../types.js';
import type { TaskContext, TaskOperation } from './manager.js';
import type { RecoveryStep } from './record.js';
import type { TaskPool } from './spm-operations.js';
import { imageLock, volumeIdTaken, volumeLock } from './volume-keys.js';

type P = Record<string, unknown>;
const str = (p: P, k: string): string => p[k] as string;

interface CopySpec {
  srcSd: string; srcImg: string; srcVol: string;
  dstSd: string; dstImg: string; dstVol: string;
  format: VolumeFormat; allocation: VolumeAllocation; shared: boolean; description?: string;
  /** MiB/s for qemu-img convert; none: no limit */
  bandwidth?: number;
}

const bandwidthOf = (p: P): { bandwidth?: number } => (typeof p.bandwidth === 'number' ? { bandwidth: p.bandwidth } : {});

export function copyOperation(pool: TaskPool, p: P): TaskOperation {
  const c: CopySpec = {
    srcSd: str(p, 'storagedomainID'), srcImg: str(p, 'imageID'), srcVol: str(p, 'volumeID'),
    dstSd: (p.dstSdUUID as string | undefined) ?? str(p, 'storagedomainID'), dstImg: str(p, 'dstImgUUID'), dstVol: str(p, 'dstVolUUID'),
    format: p.volFormat as VolumeFormat, allocation: p.preallocate as VolumeAllocation, shared: p.volType === 'SHARED',
    ...(p.description ? { description: str(p, 'description') } : {}), ...bandwidthOf(p),
  };
  return {
    locks: copyRecoveryLocks('Volume.copy', p),
    run: async (ctx) => {
      await pool.assertSpm();
      const dst = await pool.domain(c.dstSd);
      if (c.dstImg === c.srcImg && c.dstSd === c.srcSd) throw new StorageParamsError('a copy goes into a new image: dstImgUUID must differ from imageID on the same domain');
      if ((await dst.listVolumes()).some((r) => r.imgUUID === c.dstImg)) throw new StorageParamsError(`image ${c.dstImg} already exists on domain ${c.dstSd}; a copy makes a new image`);
      return copyChain(pool, ctx, c, { kind: 'removeVolume', when: 'always', sdUUID: c.dstSd, imgUUID: c.dstImg, volUUID: c.dstVol });
    },
  };
}

export function moveOperation(pool: TaskPool, p: P): TaskOperation {
  const [sd, img, dstSd] = [str(p, 'storagedomainID'), str(p, 'imageID'), str(p, 'dstSdUUID')];
  return {
    locks: copyRecoveryLocks('Image.move', p),
    run: async (ctx) => {
      await pool.assertSpm();
      if (dstSd === sd) throw new StorageParamsError('Image.move needs another destination domain');
      refuseIfInUse(pool, sd, img);
      const src = await pool.domain(sd);
      const records = await src.listVolumes();
      const chain = buildChain(sd, records, img);
      const own = chain.filter((v) => v.imgUUID === img).map((v) => v.volUUID);
      const clones = records.filter((r) => r.imgUUID !== img && own.includes(r.parentUUID)).map((r) => r.volUUID);
      if (clones.length) throw new VolumeHasChildrenError(sd, chain.at(-1)!.volUUID, clones);
      const leaf = chain.at(-1)!.volUUID;
      const info = await src.getVolumeInfo(img, leaf);
      const dst = await pool.domain(dstSd);
      const format = (p.volFormat as VolumeFormat | undefined) ?? info.format;
      // Block storage has no RAW sparse volumes: a sparse file becomes a preallocated LV.
      const wanted = (p.preallocate as VolumeAllocation | undefined) ?? info.type;
      const allocation = dst.type === 'block' && format === 'RAW' ? 'PREALLOCATED' : wanted;
      const result = await copyChain(pool, ctx, {
        srcSd: sd, srcImg: img, srcVol: leaf, dstSd, dstImg: img, dstVol: leaf, format, allocation, shared: info.voltype === 'SHARED', description: info.description, ...bandwidthOf(p),
      }, { kind: 'undoCopy', when: 'always', sdUUID: dstSd, imgUUID: img, volUUID: leaf, srcSdUUID: sd, srcImgUUID: img });
      refuseIfInUse(pool, sd, img); // a VM may have started on it during the copy: the copy goes, the source stays
      const order = await src.imageDeletionOrder(img);
      await ctx.addRecovery({ kind: 'finishDeletes', when: 'restart', sdUUID: sd, imgUUID: img, volUUIDs: order });
      for (const v of order) await src.setVolumeLegality(img, v, 'ILLEGAL');
      ctx.phase('commit');
      await src.deleteImage(img); // no signal: past the commit point the copy is the disk
      ctx.phase('delete source');
      return result;
    },
  };
}

function refuseIfInUse(pool: TaskPool, sd: string, img: string): void {
  const users = pool.imageUsers(sd, img);
  if (users.length) throw new VolumeBusyError(sd, img, users, 'a disk under a running VM is not moved (live storage migration is not supported); stop the VM or copy the disk');
}

/** The locks a copy or move takes (and its recovery): both images, and the new volume's id. */
export function copyRecoveryLocks(verb: 'Volume.copy' | 'Image.move', p: P): string[] {
  const sd = str(p, 'storagedomainID');
  const img = str(p, 'imageID');
  if (verb === 'Image.move') return [imageLock(sd, img), imageLock(str(p, 'dstSdUUID'), img)];
  const dstSd = (p.dstSdUUID as string | undefined) ?? sd;
  return [imageLock(sd, img), imageLock(dstSd, str(p, 'dstImgUUID')), volumeLock(dstSd, str(p, 'dstVolUUID'))];
}

/** A move's source image exists and every volume of it is LEGAL (its deletion has not begun). */
export async function sourceStillWhole(pool: TaskPool, sd: string, img: string): Promise<boolean> {
  const dom = await pool.domain(sd);
  const vols = (await dom.listVolumes()).filter((r) => r.imgUUID === img);
  if (!vols.length) return false;
  const legal = await Promise.all(vols.map((v) => dom.getVolumeInfo(img, v.volUUID).then((i) => i.legality === 'LEGAL', () => false)));
  return legal.every(Boolean);
}

const qemuFormat = (f: VolumeFormat) => (f === 'COW' ? 'qcow2' as const : 'raw' as const);

/** Creates the destination volume and fills it from the source chain; returns its info. */
async function copyChain(pool: TaskPool, ctx: TaskContext, c: CopySpec, undo: RecoveryStep): Promise<VolumeInfo> {
  const src = await pool.domain(c.srcSd);
  const dst = await pool.domain(c.dstSd);
  const info = await src.getVolumeInfo(c.srcImg, c.srcVol);
  // Under the locks, so the undo step can only ever remove what this task makes.
  if (await volumeIdTaken(dst, c.dstImg, c.dstVol)) throw new VolumeExistsError(c.dstSd, c.dstVol);
  const qemuImg = new QemuImg({ timeoutMs: pool.copyTimeouts.qemuImgMs, log: pool.copyLog });
  ctx.phase('check');
  return src.withPrepared(c.srcImg, c.srcVol, { readOnly: true }, async (from) => {
    const srcFormat = qemuFormat(info.format);
    // A thin block copy starts with room for all the data it will get.
    const initialSize = dst.type === 'block' && c.format === 'COW' && c.allocation === 'SPARSE'
      ? (await qemuImg.measureImage(from.path, srcFormat, 'qcow2')) + MiB : undefined;
    ctx.phase('measure');
    await ctx.addRecovery(undo);
    ctx.signal.throwIfAborted();
    await dst.createVolume({
      imgUUID: c.dstImg, volUUID: c.dstVol, capacity: info.capacity, format: c.format, allocation: c.allocation,
      ...(c.description !== undefined ? { description: c.description } : {}), ...(initialSize ? { initialSize } : {}),
    }, { signal: ctx.signal, phase: (n) => ctx.phase(`create ${n}`) });
    ctx.progress(0);
    const t0 = performance.now();
    let cache: CopyCache | undefined;
    await dst.withPrepared(c.dstImg, c.dstVol, {}, async (to) => {
      await dst.setVolumeLegality(c.dstImg, c.dstVol, 'ILLEGAL'); // until every byte is there
      cache = await copyCacheModes(from.chain.map((v) => v.path), to.path, {
        timeoutMs: pool.copyTimeouts.qemuImgMs, log: pool.copyLog, what: { from: `${c.srcSd}/${c.srcImg}/${c.srcVol}`, to: `${c.dstSd}/${c.dstImg}/${c.dstVol}` },
      });
      await qemuImg.convert({ path: from.path, format: srcFormat }, { path: to.path, format: qemuFormat(c.format) }, {
        timeoutMs: pool.copyTimeouts.convertMs, signal: ctx.signal, onProgress: (pct) => ctx.progress(Math.floor(pct)), cache,
        // A new qcow2 or file reads as zeros; a new LV may hold old data.
        targetIsZero: c.format === 'COW' || dst.type === 'file',
        ...(c.bandwidth ? { rateLimitMiBs: c.bandwidth } : {}),
      });
    });
    const seconds = (performance.now() - t0) / 1000;
    ctx.phase('convert');
    ctx.signal.throwIfAborted();
    if (c.shared) await dst.markShared(c.dstImg, c.dstVol);
    await dst.setVolumeLegality(c.dstImg, c.dstVol, 'LEGAL');
    ctx.progress(100);
    ctx.phase('commit copy');
    const out = await dst.getVolumeInfo(c.dstImg, c.dstVol);
    pool.copyLog.info('volume copied', {
      from: `${c.srcSd}/${c.srcImg}/${c.srcVol}`, to: `${c.dstSd}/${c.dstImg}/${c.dstVol}`, chain: from.chain.length, capacity: info.capacity,
      seconds: Math.round(seconds * 100) / 100, mibPerSec: Math.round((info.capacity / MiB / Math.max(seconds, 0.001)) * 10) / 10, shared: c.shared, cache,
    });
    return out;
  });
}
