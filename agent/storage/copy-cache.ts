// The cache modes of a qemu-img copy or commit (VDSM copies with `-t none -T
// none`): O_DIRECT on the images, so qemu-img's progress follows the writes
// that reach the device instead of the page cache, and the copy is on the
// device when qemu-img ends. Where an image cannot be opened with O_DIRECT
// (a file system without it, e.g. tmpfs before Linux 6.6, some FUSE ones) the
// copy falls back to `writeback`, which flushes at the end: slower progress
// truth, the same durability. qemu-img convert's own default for the target
// is `unsafe` (no flush at all), which is never used.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Logger } from '../log.js';

export type CacheMode = 'none' | 'writeback';

/** qemu-img's -T (sources, the whole chain) and -t (target) cache modes. */
export interface CopyCache { source: CacheMode; target: CacheMode }

/**
 * Why `path` cannot be opened with O_DIRECT, or undefined when it can. The
 * file system refuses O_DIRECT at open (EINVAL); opening read-only is enough
 * to see it and touches nothing. Bounded by timeoutMs (a hung mount).
 */
export async function directIoRefusal(path: string, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const opening = open(path, constants.O_RDONLY | constants.O_DIRECT);
  const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
  try {
    const r = await Promise.race([opening, timeout]);
    if (r === 'timeout') {
      opening.then((fh) => fh.close(), () => {}); // closed whenever it opens
      return `opening it with O_DIRECT took over ${timeoutMs} ms`;
    }
    await r.close();
    return undefined;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return `open with O_DIRECT failed: ${err.code ?? ''} ${err.message}`.trim();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The cache modes for a copy from the chain `sources` (base first) into
 * `target`: `none` on each side whose every image takes O_DIRECT, else
 * `writeback` on that side, with the reason logged.
 */
export async function copyCacheModes(sources: readonly string[], target: string, o: { timeoutMs: number; log: Logger; what: Record<string, unknown> }): Promise<CopyCache> {
  const side = async (name: 'source' | 'target', paths: readonly string[]): Promise<CacheMode> => {
    for (const path of paths) {
      const why = await directIoRefusal(path, o.timeoutMs);
      if (why) {
        o.log.warn('qemu-img without O_DIRECT: progress runs ahead of the writes, the data is flushed at the end', { ...o.what, side: name, path, reason: why, cache: 'writeback' });
        return 'writeback';
      }
    }
    return 'none';
  };
  return { source: await side('source', sources), target: await side('target', [target]) };
}
