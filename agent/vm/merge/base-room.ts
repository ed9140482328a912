// Room in a live merge's block COW base while libvirt's commit writes into it.
// The measure taken before the commit is a floor, not the need: the active
// layer's qcow2 metadata on disk lags QEMU's (clusters the guest allocated
// since its last flush are missing from it), and an active commit also copies
// what the guest writes meanwhile. Adding an estimate of those to the measure
// counted twice whatever the guest rewrote over data the base already held,
// so the base grew more than a chunk past its need. Instead the base is
// watched while the commit runs, as a thin drive is: libvirt's stats for the
// backing layer "vda[N]" (QEMU's highest write offset into it) and a block
// threshold on that layer, whose event wakes the merge's loop.
import type { Logger } from '../../log.js';
import type { Domain, TypedParamsRecord } from '../../libvirt/index.js';
import { nextSizeMiB, watermarkBytes, type ThinpPolicy } from '../../storage/thinp/sizing.js';
import { MiB } from '../../storage/types.js';
import { layerName, type LiveLayer } from './live-chain.js';
import type { MergeJob } from './job.js';

export interface BaseRoomDeps {
  requestExtend(sdUUID: string, volUUID: string, sizeMiB: number): Promise<unknown>;
  refreshVolume(sdUUID: string, volUUID: string): Promise<number>;
  /** The drive monitor: a claimed layer's threshold events are the merge's, not the active drive's. */
  monitor: { claimLayer(vmId: string, dev: string): void; releaseLayer(vmId: string, dev: string): void };
  policy: ThinpPolicy;
  log: Logger;
}

export interface LayerStats {
  /** QEMU's highest write offset into the layer since the VM started (0 until its first write). */
  allocation: number;
  physical: number;
  capacity: number;
  /** The armed block threshold, if any (libvirt drops it once it fires). */
  threshold?: number;
}

/** Backing layer `index` of disk `target` in one domain's bulk stats (taken with the backing flag), or undefined. */
export function backingLayerStats(stats: TypedParamsRecord, target: string, index: number): LayerStats | undefined {
  const n = Number(stats['block.count'] ?? 0);
  for (let i = 0; i < n; i++) {
    if (stats[`block.${i}.name`] !== target || Number(stats[`block.${i}.backingIndex`]) !== index) continue;
    const num = (k: string): number => Number(stats[`block.${i}.${k}`] ?? NaN);
    const threshold = stats[`block.${i}.threshold`];
    return { allocation: num('allocation'), physical: num('physical'), capacity: num('capacity'), ...(threshold !== undefined ? { threshold: Number(threshold) } : {}) };
  }
  return undefined;
}

/**
 * Free bytes at or below which the base is extended during the commit: half
 * the thin watermark. An active merge's base already got a watermark above
 * the measure, so the base is extended again only for real growth past the
 * measure, not for the measure's own rounding.
 */
export function baseMarginBytes(p: ThinpPolicy): number {
  return Math.floor(watermarkBytes(p) / 2);
}

/** The size (MiB) to extend the base to now, or undefined when it has room (or is at its maximum). */
export function baseExtension(s: LayerStats, p: ThinpPolicy): number | undefined {
  if (s.physical - s.allocation > baseMarginBytes(p)) return undefined;
  return nextSizeMiB(s.physical, s.capacity, p);
}

export class BaseRoom {
  constructor(private readonly d: BaseRoomDeps) {}

  /** Extends the base if the commit is near its end, and arms its threshold; a base libvirt does not report is left alone. */
  async ensure(job: MergeJob, dom: Domain, base: LiveLayer): Promise<void> {
    const dev = layerName(job.target, base);
    this.d.monitor.claimLayer(dom.uuid, dev);
    const rec = (await dom.conn.domainStats({ groups: ['block'], states: ['running', 'paused'], backing: true })).find((r) => r.uuid === dom.uuid);
    const s = rec && backingLayerStats(rec.stats, job.target, base.index);
    if (!s || !Number.isFinite(s.allocation) || !Number.isFinite(s.physical) || s.physical <= 0) {
      this.d.log.debug('merge base not in libvirt stats; not watched', { job: job.id, dev });
      return;
    }
    let physical = s.physical;
    const size = baseExtension(s, this.d.policy);
    if (size !== undefined) {
      const t0 = performance.now();
      await this.d.requestExtend(job.domainID, job.baseVolUUID, size);
      const t1 = performance.now();
      physical = await this.d.refreshVolume(job.domainID, job.baseVolUUID);
      job.extendedToMiB = Math.max(job.extendedToMiB ?? 0, physical / MiB);
      this.d.log.info('merge base extended during the commit', {
        job: job.id, dev, allocation: s.allocation, fromMiB: s.physical / MiB, toMiB: physical / MiB,
        requestMs: Math.round(t1 - t0), refreshMs: Math.round(performance.now() - t1),
      });
    }
    if (size !== undefined || s.threshold === undefined || s.threshold === 0) {
      await dom.setBlockThreshold(dev, Math.max(1, physical - baseMarginBytes(this.d.policy)));
    }
  }

  /** The commit is over (or no longer followed here): the base's threshold goes, and the drive monitor gets the layer's events back. */
  async release(job: MergeJob, dom: Domain, base: LiveLayer): Promise<void> {
    const dev = layerName(job.target, base);
    await dom.setBlockThreshold(dev, 0).catch((e: unknown) => this.d.log.debug('merge base threshold not cleared', { job: job.id, dev, err: e }));
    this.d.monitor.releaseLayer(dom.uuid, dev);
  }
}
