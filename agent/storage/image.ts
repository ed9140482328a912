// Images are chains of volumes: each volume names its parent (PUUID) in the
// same image, the base has none. These helpers work on the listing records of
// a domain, whatever its type.
import { IllegalChainError, ImageNotFoundError, VolumeNotFoundError } from './errors.js';
import { BLANK_UUID, type VolumeRecord } from './types.js';

export function imageVolumes(records: readonly VolumeRecord[], imgUUID: string): VolumeRecord[] {
  return records.filter((r) => r.imgUUID === imgUUID);
}

export function childrenOf(records: readonly VolumeRecord[], volUUID: string): string[] {
  return records.filter((r) => r.parentUUID === volUUID).map((r) => r.volUUID);
}

/**
 * The chain of an image from its base to `leafUUID` (the base may be a
 * template volume of another image: a thin clone) (default: the image's
 * only leaf, the volume nobody has as parent). Throws ImageNotFoundError for
 * an empty image and IllegalChainError for a missing parent, a loop, or an
 * image with several leaves when none was named.
 */
export function buildChain(sdUUID: string, records: readonly VolumeRecord[], imgUUID: string, leafUUID?: string): VolumeRecord[] {
  const vols = imageVolumes(records, imgUUID);
  if (vols.length === 0) throw new ImageNotFoundError(sdUUID, imgUUID);
  const byId = new Map(vols.map((v) => [v.volUUID, v]));
  let leaf: VolumeRecord | undefined;
  if (leafUUID) {
    leaf = byId.get(leafUUID);
    if (!leaf) throw new VolumeNotFoundError(sdUUID, leafUUID, imgUUID);
  } else {
    const parents = new Set(vols.map((v) => v.parentUUID));
    const leaves = vols.filter((v) => !parents.has(v.volUUID));
    if (leaves.length !== 1) throw new IllegalChainError(sdUUID, imgUUID, `${leaves.length} leaves (${leaves.map((l) => l.volUUID).join(', ')})`);
    leaf = leaves[0]!;
  }
  const chain: VolumeRecord[] = [];
  const seen = new Set<string>();
  for (let v: VolumeRecord | undefined = leaf; v; ) {
    if (seen.has(v.volUUID)) throw new IllegalChainError(sdUUID, imgUUID, `loop at volume ${v.volUUID}`);
    seen.add(v.volUUID);
    chain.push(v);
    if (v.parentUUID === BLANK_UUID || v.parentUUID === '') break;
    // A thin clone's base is a template volume of another image (whether it is SHARED is the caller's check).
    const parentUUID: string = v.parentUUID;
    const p: VolumeRecord | undefined = byId.get(parentUUID) ?? records.find((r) => r.volUUID === parentUUID && r.imgUUID !== imgUUID);
    if (!p) throw new IllegalChainError(sdUUID, imgUUID, `volume ${v.volUUID} has parent ${v.parentUUID}, which is not in the image`);
    v = p;
  }
  return chain.reverse();
}

/** An order to delete every volume of an image in: children before their parents. */
export function deletionOrder(records: readonly VolumeRecord[], imgUUID: string): string[] {
  const left = new Map(imageVolumes(records, imgUUID).map((v) => [v.volUUID, v]));
  const order: string[] = [];
  while (left.size) {
    const parents = new Set([...left.values()].map((v) => v.parentUUID));
    const leaves = [...left.keys()].filter((id) => !parents.has(id));
    // A loop leaves no leaf: delete what is left in any order rather than never.
    const batch = leaves.length ? leaves : [...left.keys()];
    for (const id of batch) { order.push(id); left.delete(id); }
  }
  return order;
}
