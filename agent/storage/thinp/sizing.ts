// Thin-provisioning arithmetic (VDSM's model): a chunked drive keeps at least
// `watermark` free bytes beyond its allocation; when it has less, it grows by
// a chunk, never past maxFactor × its virtual size.
export interface ThinpPolicy {
  chunkMiB: number;
  /** % of a chunk that may be used before extending: watermark = (100 − percent)% of the chunk. */
  percent: number;
  /** Never extend past this × capacity (qcow2 metadata needs a little more than the virtual size). */
  maxFactor: number;
}

export const MiB = 1024 * 1024;

export function watermarkBytes(p: ThinpPolicy): number {
  return Math.round(((100 - p.percent) / 100) * p.chunkMiB * MiB);
}

/** The block threshold to arm: at least 1 byte. */
export function thresholdFor(physical: number, p: ThinpPolicy): number {
  return Math.max(1, physical - watermarkBytes(p));
}

export function maxSizeBytes(capacity: number, p: ThinpPolicy): number {
  return Math.ceil((p.maxFactor * capacity) / MiB) * MiB;
}

/** The size (MiB) to extend to, or undefined when the drive is already at its maximum. */
export function nextSizeMiB(physical: number, capacity: number, p: ThinpPolicy): number | undefined {
  const max = maxSizeBytes(capacity, p);
  if (physical >= max) return undefined;
  return Math.min(Math.ceil((physical + p.chunkMiB * MiB) / MiB), max / MiB);
}

export function needsExtension(allocation: number, physical: number, p: ThinpPolicy): boolean {
  return physical - allocation < watermarkBytes(p);
}

/**
 * libvirt reports a qcow2's highest written offset as its allocation. More
 * than the next size would be impossible for a healthy image: do not act on it.
 */
export function improbableAllocation(allocation: number, physical: number, capacity: number, p: ThinpPolicy): boolean {
  return allocation > Math.max(physical, maxSizeBytes(capacity, p)) + p.chunkMiB * MiB;
}
