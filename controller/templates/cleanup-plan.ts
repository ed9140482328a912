// Which volumes a failed template or clone job deletes: those it recorded before asking the SPM
// to make them (each in a new image of its own), last made first, one deletion per image. A
// volume in an image the job only read (a source VM's disk, a template's volume) is never
// deleted, even if it were somehow recorded: the job keeps it and says why.

export interface MadeVolume { storageDomainId: string; imageId: string; volumeId: string }
export type ImageRef = Omit<MadeVolume, 'volumeId'>;

export interface CleanupPlan {
  /** images to delete, in this order (the last made first) */
  remove: MadeVolume[];
  /** recorded volumes not deleted: in an image the job did not make */
  keep: { volume: MadeVolume; reason: string }[];
}

const key = (v: ImageRef): string => `${v.storageDomainId}/${v.imageId}`;

/** `made`: in the order the job recorded them; `notOurs`: the images the job read from. */
export function cleanupPlan(made: readonly MadeVolume[], notOurs: readonly ImageRef[]): CleanupPlan {
  const protectedImages = new Set(notOurs.map(key));
  const seen = new Set<string>();
  const plan: CleanupPlan = { remove: [], keep: [] };
  for (const v of [...made].reverse()) {
    if (seen.has(key(v))) continue;
    seen.add(key(v));
    if (protectedImages.has(key(v))) plan.keep.push({ volume: v, reason: `image ${v.imageId} is one the job read from, not one it made` });
    else plan.remove.push(v);
  }
  return plan;
}
