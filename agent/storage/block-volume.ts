// Volumes of a block domain: one LV each, named volUUID, with tags
//   IU_<imgUUID>      the image it belongs to
//   PU_<parentUUID>   its parent (the blank UUID for a base)
//   MD_<slot>         its metadata slot in the `metadata` LV (volume-metadata.ts)
//   HV_INITIALIZING   while it is being created (a leftover marks garbage)
// LV sizes: RAW preallocated = capacity; COW preallocated = qemu-img measure;
// COW sparse = a small initial size, grown by extendLV as the guest writes
// (thin provisioning), never past maxSizeFactor × capacity. RAW sparse does
// not exist on block storage.
import type { Logger } from '../log.js';
import { PhaseTimer } from '../log.js';
import type { ActivationDriver } from './activation.js';
import { NoSpaceError, StorageCommandError, StorageParamsError, VolumeExistsError, VolumeMetadataError, VolumeNotFoundError } from './errors.js';
import type { KeyedLock } from './keyed-lock.js';
import type { LvInfo, Lvm } from './lvm.js';
import type { QemuImg } from './qemu-img.js';
import { BLANK_UUID, MiB, roundUp, SPECIAL_VOLUMES, type CreateVolumeParams, type VolumeRecord } from './types.js';
import { slotCount, type VolumeMetadata } from './volume-metadata.js';

export const INITIALIZING_TAG = 'HV_INITIALIZING';

/** What the block volume procedures need from their domain. */
export interface BlockCtx {
  sdUUID: string;
  vg: string;
  lvm: Lvm;
  driver: ActivationDriver;
  qemuImg: QemuImg;
  extentSize: number;
  thinInitialSize: number;
  maxSizeFactor: number;
  locks: KeyedLock;
  log: Logger;
  readSlot(slot: number): Promise<VolumeMetadata>;
  /** undefined clears the slot. */
  writeSlot(slot: number, md: VolumeMetadata | undefined): Promise<void>;
}

export interface BlockVolumeRecord extends VolumeRecord {
  slot: number;
  size: number;
  initializing: boolean;
}

export function recordOf(lv: LvInfo): BlockVolumeRecord | undefined {
  if ((SPECIAL_VOLUMES as readonly string[]).includes(lv.name)) return undefined;
  const tag = (p: string) => lv.tags.find((t) => t.startsWith(p))?.slice(p.length);
  const imgUUID = tag('IU_');
  const slot = tag('MD_');
  if (!imgUUID || slot === undefined || !/^\d+$/.test(slot)) return undefined;
  return {
    volUUID: lv.name, imgUUID, parentUUID: tag('PU_') ?? BLANK_UUID, slot: Number(slot), size: lv.size,
    initializing: lv.tags.includes(INITIALIZING_TAG),
  };
}

export async function blockRecords(ctx: BlockCtx): Promise<BlockVolumeRecord[]> {
  return (await ctx.lvm.lvs(ctx.vg)).map(recordOf).filter((r): r is BlockVolumeRecord => r !== undefined);
}

/** The largest an LV of this capacity may grow to. */
export function maxLvSize(ctx: BlockCtx, capacity: number): number {
  return roundUp(Math.ceil(capacity * ctx.maxSizeFactor), ctx.extentSize);
}

async function lvSizeFor(ctx: BlockCtx, p: CreateVolumeParams): Promise<number> {
  if (p.allocation === 'SPARSE' && p.format === 'RAW') {
    throw new StorageParamsError('block storage has no RAW sparse volumes: use COW sparse or RAW preallocated', 'incorrectType');
  }
  if (p.format === 'RAW') return roundUp(p.capacity, ctx.extentSize);
  if (p.allocation === 'PREALLOCATED') return roundUp(await ctx.qemuImg.measure('qcow2', p.capacity), ctx.extentSize);
  const initial = p.initialSize ?? ctx.thinInitialSize;
  if (!Number.isSafeInteger(initial) || initial <= 0) throw new StorageParamsError(`bad initial size ${initial}`);
  return Math.max(ctx.extentSize, Math.min(roundUp(initial, ctx.extentSize), maxLvSize(ctx, p.capacity)));
}

/** Creates the LV and claims a metadata slot (under the domain lock); returns slot and size. */
export async function allocateLv(ctx: BlockCtx, p: CreateVolumeParams, parentUUID: string | undefined,
  validate: (records: readonly VolumeRecord[]) => void): Promise<{ slot: number; size: number }> {
  const size = await lvSizeFor(ctx, p);
  return ctx.locks.with(`domain:${ctx.sdUUID}`, async () => {
    const lvs = await ctx.lvm.lvs(ctx.vg);
    const records = lvs.map(recordOf).filter((r): r is BlockVolumeRecord => r !== undefined);
    validate(records);
    if (lvs.some((l) => l.name === p.volUUID)) throw new VolumeExistsError(ctx.sdUUID, p.volUUID);
    const mdLv = lvs.find((l) => l.name === 'metadata');
    const used = new Set(records.map((r) => r.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    if (!mdLv || slot >= slotCount(mdLv.size)) throw new NoSpaceError(ctx.sdUUID, 'no free volume metadata slot');
    const tags = [`IU_${p.imgUUID}`, `PU_${parentUUID ?? BLANK_UUID}`, `MD_${slot}`, INITIALIZING_TAG];
    try {
      await ctx.lvm.lvcreate(ctx.vg, p.volUUID, size / MiB, tags);
    } catch (e) {
      throw mapNoSpace(ctx, e);
    }
    return { slot, size };
  });
}

export function mapNoSpace(ctx: BlockCtx, e: unknown): unknown {
  if (e instanceof StorageCommandError && /insufficient free space|not enough free/i.test(e.stderr)) {
    return new NoSpaceError(ctx.sdUUID, 'the VG has too few free extents', { cause: e });
  }
  return e;
}

/** Formats a new COW volume through this host's activation of it. */
export async function formatCow(ctx: BlockCtx, volUUID: string, capacity: number, parent?: { volUUID: string; format: 'COW' | 'RAW' }, signal?: AbortSignal): Promise<void> {
  const path = (await ctx.driver.activate(ctx.lvm, ctx.vg, [volUUID])).get(volUUID)!;
  try {
    await ctx.qemuImg.create(path, {
      format: 'qcow2', size: capacity,
      ...(parent ? { backing: { name: parent.volUUID, format: parent.format === 'COW' ? 'qcow2' : 'raw' } } : {}),
      ...(signal ? { signal } : {}),
    });
  } finally {
    await ctx.driver.deactivate(ctx.lvm, ctx.vg, [volUUID]);
  }
}

/** Best-effort removal of a volume's LV, data and slot. */
export async function removeLv(ctx: BlockCtx, volUUID: string, slot: number | undefined): Promise<void> {
  await ctx.driver.deactivate(ctx.lvm, ctx.vg, [volUUID]);
  await ctx.lvm.lvremove(ctx.vg, [volUUID]);
  await ctx.driver.removed(ctx.lvm, ctx.vg, [volUUID]);
  if (slot !== undefined) await ctx.writeSlot(slot, undefined);
}

export interface ExtendLvResult {
  volUUID: string;
  /** The LV size in bytes after the call. */
  size: number;
  /** false: it already was large enough (lvextend is idempotent). */
  extended: boolean;
  /** true: the request was cut to maxSizeFactor × capacity. */
  capped: boolean;
  phasesMs: Record<string, number>;
}

/**
 * SPM: grows the volume's LV to at least newSizeMiB (rounded up to whole
 * extents), never past maxSizeFactor × capacity. A no-op when the LV is
 * already large enough, so a repeated request is harmless. Only the LVM
 * metadata changes; hosts see the new size after refreshVolume.
 */
export async function extendLv(ctx: BlockCtx, volUUID: string, newSizeMiB: number): Promise<ExtendLvResult> {
  if (!Number.isSafeInteger(newSizeMiB) || newSizeMiB <= 0) throw new StorageParamsError(`bad LV size ${newSizeMiB} MiB`, 'volumeResizeValueError');
  const timer = new PhaseTimer();
  // One extension of a volume at a time, so the size check below stays true until lvextend runs.
  return ctx.locks.with(`lv:${volUUID}`, () => { timer.mark('wait'); return extendLocked(ctx, volUUID, newSizeMiB, timer); });
}

async function extendLocked(ctx: BlockCtx, volUUID: string, newSizeMiB: number, timer: PhaseTimer): Promise<ExtendLvResult> {
  const lv = (await ctx.lvm.lvs(ctx.vg, volUUID))[0];
  const rec = lv && recordOf(lv);
  if (!lv || !rec) throw new VolumeNotFoundError(ctx.sdUUID, volUUID);
  timer.mark('lvs');
  let md: VolumeMetadata;
  try {
    md = await ctx.readSlot(rec.slot);
  } catch (e) {
    throw e instanceof VolumeMetadataError ? e : new VolumeMetadataError(`cannot read slot ${rec.slot} of ${volUUID}`, { cause: String(e) });
  }
  timer.mark('metadata');
  const limit = maxLvSize(ctx, md.capacity);
  let target = roundUp(newSizeMiB * MiB, ctx.extentSize);
  const capped = target > limit;
  if (capped) target = Math.max(limit, lv.size);
  if (lv.size >= target) {
    ctx.log.info('extendLV: already large enough', { volUUID, requestedMiB: newSizeMiB, sizeMiB: lv.size / MiB, capped, ...timer.fields() });
    return { volUUID, size: lv.size, extended: false, capped, phasesMs: timer.phases };
  }
  try {
    await ctx.lvm.lvextend(ctx.vg, volUUID, target / MiB);
  } catch (e) {
    throw mapNoSpace(ctx, e);
  }
  timer.mark('lvextend');
  ctx.log.info('extendLV', { volUUID, fromMiB: lv.size / MiB, toMiB: target / MiB, requestedMiB: newSizeMiB, capped, ...timer.fields() });
  return { volUUID, size: target, extended: true, capped, phasesMs: timer.phases };
}
