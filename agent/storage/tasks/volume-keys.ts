// The lock keys SPM tasks take, and the check that a volume id is free on a domain.
import { access } from 'node:fs/promises';
import type { AnyDomain } from '../pool.js';

export const imageLock = (sd: string, img: string): string => `image:${sd}:${img}`;
// LV and file names are per domain: two images must not create (or delete) one volume id at once.
export const volumeLock = (sd: string, vol: string): string => `volume:${sd}:${vol}`;

/** Anything by this name on the domain: a volume, or a stray LV or data file that is not one. */
export async function volumeIdTaken(dom: AnyDomain, img: string, vol: string): Promise<boolean> {
  if ((await dom.listVolumes()).some((r) => r.volUUID === vol)) return true;
  return dom.type === 'file' ? access(dom.volumePath(img, vol)).then(() => true, () => false) : (await dom.lvm.lvs(dom.vg, vol)).length > 0;
}
