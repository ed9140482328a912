// A block storage domain: an LVM VG named sdUUID on shared devices (LUNs;
// loop-backed PVs in the lab). Domain metadata in VG tags (domain-metadata.ts),
// special LVs metadata/ids/leases/inbox/outbox, one LV per volume
// (block-volume.ts) with its metadata in a slot of the metadata LV
// (volume-metadata.ts). Data is reached through the activation driver.
import { PhaseTimer } from '../log.js';
import type { ActivationDriver } from './activation.js';
import {
  allocateLv, blockRecords, extendLv, formatCow, mapNoSpace, maxLvSize, recordOf, removeLv, INITIALIZING_TAG,
  type BlockCtx, type BlockVolumeRecord, type ExtendLvResult,
} from './block-volume.js';
import { buildChain } from './image.js';
import { StorageDomain, type DomainCommon, type MetadataChange } from './domain.js';
import { checkDomainDescription, decodeVgTags, encodeVgTags, metadataTags } from './domain-metadata.js';
import { DomainExistsError, DomainNotFoundError, StorageParamsError, VolumeExistsError, VolumeHasChildrenError, VolumeMetadataError, VolumeNotFoundError } from './errors.js';
import { KeyedLock } from './keyed-lock.js';
import { Lvm } from './lvm.js';
import { MetadataSlots } from './metadata-slots.js';
import { QemuImg } from './qemu-img.js';
import {
  BLANK_UUID, MiB, roundUp, SPECIAL_SIZES_MIB, SPECIAL_VOLUMES, type CreateVolumeParams, type DomainClass, type DomainInfo,
  type DomainMetadata, type DomainStats, type Legality, type OperationControl, type SpecialVolume, type VolumeInfo, type VolumeRecord, type VolumeSize,
} from './types.js';
import type { VolumeMetadata } from './volume-metadata.js';

export interface BlockDomainOptions extends DomainCommon {
  /** The VG's PVs (device paths); LVM looks at nothing else. */
  devices: readonly string[];
  driver: ActivationDriver;
  lvmTimeoutMs: number;
  /** Initial LV size of a new COW sparse volume. */
  thinInitialSizeMiB: number;
  /** An LV never grows past this × capacity. */
  maxSizeFactor: number;
}

export interface CreateBlockDomainOptions extends BlockDomainOptions {
  description?: string;
  domainClass?: DomainClass;
  extentSizeMiB: number;
  /** LVM metadata area per PV (VDSM: 128 MiB). */
  pvMetadataSizeMiB?: number;
  specialSizesMiB?: Partial<Record<SpecialVolume, number>>;
  /** pvcreate -ff: take devices that carry old signatures. */
  force?: boolean;
}

/** The LV where the SPM keeps its tasks when this is the master domain (made by the first SPM that needs it). */
export const TASKS_LV = 'tasks';
export const TASKS_LV_MIB = 8;

export class BlockStorageDomain extends StorageDomain {
  readonly type = 'block' as const;
  readonly lvm: Lvm;
  readonly ctx: BlockCtx;
  private readonly slots: MetadataSlots;

  private constructor(sdUUID: string, readonly o: BlockDomainOptions, extentSize: number) {
    super(sdUUID, o.log);
    this.lvm = new Lvm(o.devices, { activation: o.driver.kind === 'lvm', timeoutMs: o.lvmTimeoutMs, log: this.log, ...(o.runner ? { runner: o.runner } : {}) });
    const qemuImg = new QemuImg({ timeoutMs: o.qemuImgTimeoutMs, log: this.log, ...(o.runner ? { runner: o.runner } : {}) });
    this.ctx = {
      sdUUID, vg: sdUUID, lvm: this.lvm, driver: o.driver, qemuImg, extentSize, log: this.log,
      thinInitialSize: o.thinInitialSizeMiB * MiB, maxSizeFactor: o.maxSizeFactor, locks: new KeyedLock(),
      readSlot: (slot) => this.slots.read(slot), writeSlot: (slot, md) => this.slots.write(slot, md),
    };
    this.slots = new MetadataSlots({ vg: sdUUID, lvm: this.lvm, driver: o.driver, timeoutMs: o.ioTimeoutMs, log: this.log, ...(o.runner ? { runner: o.runner } : {}) });
  }

  get vg(): string { return this.sdUUID; }

  static async open(sdUUID: string, o: BlockDomainOptions): Promise<BlockStorageDomain> {
    const probe = new BlockStorageDomain(sdUUID, o, MiB);
    const vg = await probe.lvm.vgs(sdUUID);
    if (!vg) throw new DomainNotFoundError(sdUUID, `no VG on ${o.devices.join(', ')}`);
    decodeVgTags(sdUUID, vg.tags);
    return new BlockStorageDomain(sdUUID, o, vg.extentSize);
  }

  /** Makes the devices PVs, creates the VG and the special LVs. */
  static async create(sdUUID: string, o: CreateBlockDomainOptions): Promise<BlockStorageDomain> {
    const timer = new PhaseTimer();
    const md: DomainMetadata = {
      sdUUID, type: 'block', class: o.domainClass ?? 'Data', description: checkDomainDescription(o.description ?? ''),
      version: 1, poolUUID: BLANK_UUID, role: 'Regular',
    };
    const dom = new BlockStorageDomain(sdUUID, o, o.extentSizeMiB * MiB);
    if (await dom.lvm.vgs(sdUUID)) throw new DomainExistsError(sdUUID, 'its VG exists');
    await dom.lvm.pvcreate(o.devices, { metadataSizeMiB: o.pvMetadataSizeMiB ?? 128, ...(o.force ? { force: true } : {}) });
    try {
      await dom.lvm.vgcreate(sdUUID, o.devices, { extentSizeMiB: o.extentSizeMiB, tags: encodeVgTags(md) });
      timer.mark('vg');
      for (const name of SPECIAL_VOLUMES) {
        const size = roundUp((o.specialSizesMiB?.[name] ?? SPECIAL_SIZES_MIB[name]) * MiB, dom.ctx.extentSize);
        await dom.lvm.lvcreate(sdUUID, name, size / MiB, []).catch((e: unknown) => { throw mapNoSpace(dom.ctx, e); });
        await o.driver.created(dom.lvm, sdUUID, name, size);
      }
      timer.mark('specialLvs');
    } catch (e) {
      await dom.remove().catch((err: unknown) => dom.log.warn('cleanup after failed domain create failed', { err }));
      throw e;
    }
    dom.log.info('block domain created', { devices: o.devices, ...timer.fields() });
    return dom;
  }

  async getInfo(): Promise<DomainInfo> {
    const vg = await this.lvm.vgs(this.vg);
    if (!vg) throw new DomainNotFoundError(this.sdUUID);
    return { ...decodeVgTags(this.sdUUID, vg.tags), location: this.vg, pvs: vg.pvs, extentSize: vg.extentSize };
  }

  async getStats(): Promise<DomainStats> {
    const vg = await this.lvm.vgs(this.vg);
    if (!vg) throw new DomainNotFoundError(this.sdUUID);
    return { sdUUID: this.sdUUID, totalBytes: vg.size, freeBytes: vg.free, volumeCount: (await this.listVolumes()).length };
  }

  async updateMetadata(change: MetadataChange): Promise<DomainMetadata> {
    if (change.description !== undefined) checkDomainDescription(change.description);
    return this.ctx.locks.with(`domain:${this.sdUUID}`, async () => {
      const vg = await this.lvm.vgs(this.vg);
      if (!vg) throw new DomainNotFoundError(this.sdUUID);
      const next = { ...decodeVgTags(this.sdUUID, vg.tags), ...change };
      const oldTags = metadataTags(vg.tags);
      const newTags = metadataTags(encodeVgTags(next));
      await this.lvm.vgchangeTags(this.vg, { del: oldTags.filter((t) => !newTags.includes(t)), add: newTags.filter((t) => !oldTags.includes(t)) });
      return next;
    });
  }

  listVolumes(): Promise<BlockVolumeRecord[]> {
    return blockRecords(this.ctx);
  }

  volumePath(_imgUUID: string, volUUID: string): string {
    return this.o.driver.path(this.vg, volUUID);
  }

  async specialPath(name: SpecialVolume): Promise<string> {
    return (await this.o.driver.activate(this.lvm, this.vg, [name])).get(name)!;
  }

  /**
   * SPM: the tasks LV, activated on this host; created (zeroed: an empty task
   * area) on domains made before it existed. Its path.
   */
  async tasksArea(): Promise<string> {
    await this.ctx.locks.with(`domain:${this.sdUUID}`, async () => {
      if ((await this.lvm.lvs(this.vg, TASKS_LV)).length) return;
      const size = roundUp(TASKS_LV_MIB * MiB, this.ctx.extentSize);
      await this.lvm.lvcreate(this.vg, TASKS_LV, size / MiB, []).catch((e: unknown) => { throw mapNoSpace(this.ctx, e); });
      await this.o.driver.created(this.lvm, this.vg, TASKS_LV, size);
      this.log.info('tasks LV created', { sizeMiB: size / MiB });
    });
    return (await this.o.driver.activate(this.lvm, this.vg, [TASKS_LV])).get(TASKS_LV)!;
  }

  protected override async volumeActive(volUUID: string): Promise<boolean> {
    return this.o.driver.isActive(this.vg, volUUID);
  }

  protected async activateVolumes(_imgUUID: string, volUUIDs: readonly string[]): Promise<void> {
    await this.o.driver.activate(this.lvm, this.vg, volUUIDs);
  }

  protected async deactivateVolumes(_imgUUID: string, volUUIDs: readonly string[]): Promise<void> {
    await this.o.driver.deactivate(this.lvm, this.vg, volUUIDs);
  }

  async createVolume(p: CreateVolumeParams, ctl?: OperationControl): Promise<VolumeInfo> {
    const timer = new PhaseTimer();
    const records = await this.listVolumes();
    const parentRec = this.validateCreate(p, records) as BlockVolumeRecord | undefined;
    if (records.some((r) => r.volUUID === p.volUUID)) throw new VolumeExistsError(this.sdUUID, p.volUUID);
    const parentMd = parentRec ? await this.slots.read(parentRec.slot) : undefined;
    this.checkParentSharing(p, parentRec, parentMd?.shared === true);
    if (parentMd && p.capacity < parentMd.capacity) throw new StorageParamsError(`capacity ${p.capacity} is smaller than the parent's ${parentMd.capacity}`, 'volumeResizeValueError');
    ctl?.signal?.throwIfAborted();
    const { slot, size } = await allocateLv(this.ctx, p, parentRec?.volUUID, (fresh) => { this.validateCreate(p, fresh); });
    timer.mark('lvcreate');
    ctl?.phase?.('lvcreate');
    const md: VolumeMetadata = {
      domain: this.sdUUID, image: p.imgUUID, volume: p.volUUID, parent: parentRec?.volUUID ?? BLANK_UUID, capacity: p.capacity,
      format: p.format, type: p.allocation, diskType: p.diskType ?? 'DATA', description: p.description ?? '', legality: 'ILLEGAL',
      ctime: Math.floor(Date.now() / 1000), generation: 0,
    };
    try {
      await this.o.driver.created(this.lvm, this.vg, p.volUUID, size);
      await this.slots.write(slot, md);
      timer.mark('metadata');
      ctl?.phase?.('metadata');
      ctl?.signal?.throwIfAborted();
      if (p.format === 'COW') await formatCow(this.ctx, p.volUUID, p.capacity, parentMd && { volUUID: parentMd.volume, format: parentMd.format }, ctl?.signal);
      timer.mark('format');
      ctl?.phase?.('format');
      ctl?.signal?.throwIfAborted();
      await this.slots.write(slot, { ...md, legality: 'LEGAL' });
      await this.lvm.lvchangeTags(this.vg, p.volUUID, { del: [INITIALIZING_TAG] });
      timer.mark('commit');
      ctl?.phase?.('commit');
    } catch (e) {
      this.log.warn('volume create failed; removing it', { volUUID: p.volUUID, err: e });
      await removeLv(this.ctx, p.volUUID, slot).catch((err: unknown) => this.log.warn('rollback of volume create failed', { volUUID: p.volUUID, err }));
      throw e;
    }
    this.log.info('volume created', { imgUUID: p.imgUUID, volUUID: p.volUUID, format: p.format, allocation: p.allocation, capacity: p.capacity, lvSize: size, slot, ...timer.fields() });
    return this.getVolumeInfo(p.imgUUID, p.volUUID);
  }

  async deleteVolume(imgUUID: string, volUUID: string): Promise<void> {
    await this.ctx.locks.with(`domain:${this.sdUUID}`, async () => {
      const records = await this.listVolumes();
      const rec = this.find(records, imgUUID, volUUID);
      const children = records.filter((r) => r.parentUUID === volUUID).map((r) => r.volUUID);
      if (children.length) throw new VolumeHasChildrenError(this.sdUUID, volUUID, children);
      const md = await this.slots.read(rec.slot).catch(() => undefined);
      if (md?.volume === volUUID) await this.slots.write(rec.slot, { ...md, legality: 'ILLEGAL' });
      await removeLv(this.ctx, volUUID, rec.slot);
    });
    this.log.info('volume deleted', { imgUUID, volUUID });
  }

  async purgeVolume(imgUUID: string, volUUID: string): Promise<boolean> {
    const existed = await this.ctx.locks.with(`domain:${this.sdUUID}`, async () => {
      const lvs = await this.lvm.lvs(this.vg);
      const lv = lvs.find((l) => l.name === volUUID);
      if (!lv) return false;
      const rec = recordOf(lv);
      // Not one of this image's volumes (or a special LV): never ours to remove.
      if (!rec || rec.imgUUID !== imgUUID) throw new VolumeNotFoundError(this.sdUUID, volUUID, imgUUID);
      const children = lvs.map(recordOf).filter((r) => r?.parentUUID === volUUID).map((r) => r!.volUUID);
      if (children.length) throw new VolumeHasChildrenError(this.sdUUID, volUUID, children);
      // The slot named by the LV's tag is this volume's: no other volume can claim it while the tag exists.
      await removeLv(this.ctx, volUUID, rec.slot);
      return true;
    });
    if (existed) this.log.info('volume purged', { imgUUID, volUUID });
    return existed;
  }

  async getVolumeInfo(imgUUID: string, volUUID: string): Promise<VolumeInfo> {
    const records = await this.listVolumes();
    const rec = this.find(records, imgUUID, volUUID);
    const md = await this.slots.read(rec.slot);
    if (md.volume !== volUUID || md.image !== imgUUID) throw new VolumeMetadataError(`slot ${rec.slot} holds volume ${md.volume} of image ${md.image}`, { volUUID });
    return {
      uuid: volUUID, domain: this.sdUUID, image: imgUUID, parent: rec.parentUUID, capacity: md.capacity, format: md.format, type: md.type,
      voltype: md.shared ? 'SHARED' : records.some((r) => r.parentUUID === volUUID) ? 'INTERNAL' : 'LEAF', disktype: md.diskType, description: md.description,
      legality: rec.initializing ? 'ILLEGAL' : md.legality, generation: md.generation, ctime: md.ctime, apparentsize: rec.size, truesize: rec.size,
    };
  }

  async getVolumeSize(imgUUID: string, volUUID: string): Promise<VolumeSize> {
    const lv = (await this.lvm.lvs(this.vg, volUUID))[0];
    const rec = lv && recordOf(lv);
    if (!lv || !rec || rec.imgUUID !== imgUUID) throw new VolumeNotFoundError(this.sdUUID, volUUID, imgUUID);
    return { apparentsize: lv.size, truesize: lv.size };
  }

  async extendVolumeSize(imgUUID: string, volUUID: string, newCapacity: number): Promise<VolumeInfo> {
    const info = await this.getVolumeInfo(imgUUID, volUUID);
    if (!Number.isSafeInteger(newCapacity) || newCapacity % 512 || newCapacity < info.capacity) {
      throw new StorageParamsError(`new capacity ${newCapacity} must be a multiple of 512 and at least the current ${info.capacity}`, 'volumeResizeValueError');
    }
    if (newCapacity === info.capacity) return info;
    const rec = this.find(await this.listVolumes(), imgUUID, volUUID);
    let lvTarget = 0;
    if (info.format === 'RAW') lvTarget = roundUp(newCapacity, this.ctx.extentSize);
    else if (info.type === 'PREALLOCATED') lvTarget = roundUp(await this.ctx.qemuImg.measure('qcow2', newCapacity), this.ctx.extentSize);
    if (lvTarget > rec.size) await this.lvm.lvextend(this.vg, volUUID, lvTarget / MiB).catch((e: unknown) => { throw mapNoSpace(this.ctx, e); });
    if (info.format === 'COW') {
      // qemu-img opens the whole backing chain: activate it, and afterwards deactivate what was not active before.
      const chain = buildChain(this.sdUUID, await this.listVolumes(), imgUUID, volUUID).map((v) => v.volUUID);
      const before = await Promise.all(chain.map((v) => this.o.driver.isActive(this.vg, v)));
      const path = (await this.o.driver.activate(this.lvm, this.vg, chain)).get(volUUID)!;
      try {
        await this.o.driver.refresh(this.lvm, this.vg, volUUID);
        await this.ctx.qemuImg.resize(path, 'qcow2', newCapacity);
      } finally {
        await this.o.driver.deactivate(this.lvm, this.vg, chain.filter((_v, i) => !before[i]).reverse());
      }
    } else if (await this.o.driver.isActive(this.vg, volUUID)) {
      await this.o.driver.refresh(this.lvm, this.vg, volUUID);
    }
    const md = await this.slots.read(rec.slot);
    await this.slots.write(rec.slot, { ...md, capacity: newCapacity });
    this.log.info('volume capacity extended', { imgUUID, volUUID, from: info.capacity, to: newCapacity });
    return this.getVolumeInfo(imgUUID, volUUID);
  }

  async setVolumeLegality(imgUUID: string, volUUID: string, legality: Legality): Promise<void> {
    const rec = this.find(await this.listVolumes(), imgUUID, volUUID);
    const md = await this.slots.read(rec.slot);
    await this.slots.write(rec.slot, { ...md, legality });
  }

  /** SPM: marks a volume SHARED (a template): read only from now on, a base for thin clones of other images. */
  async markShared(imgUUID: string, volUUID: string): Promise<void> {
    const rec = this.find(await this.listVolumes(), imgUUID, volUUID);
    await this.slots.write(rec.slot, { ...(await this.slots.read(rec.slot)), shared: true });
  }

  /** The slot's parent, and the LV's PU_ tag that listings (and so chains) are built from. */
  async setVolumeParent(imgUUID: string, volUUID: string, parentUUID: string): Promise<void> {
    const rec = this.find(await this.listVolumes(), imgUUID, volUUID);
    const md = await this.slots.read(rec.slot);
    await this.slots.write(rec.slot, { ...md, parent: parentUUID });
    if (rec.parentUUID !== parentUUID) await this.lvm.lvchangeTags(this.vg, volUUID, { del: [`PU_${rec.parentUUID}`], add: [`PU_${parentUUID}`] });
  }

  /** SPM, thin provisioning: grows the LV to newSizeMiB (idempotent; capped at maxSizeFactor × capacity). */
  extendLV(volUUID: string, newSizeMiB: number): Promise<ExtendLvResult> {
    return extendLv(this.ctx, volUUID, newSizeMiB);
  }

  /** Any host: makes this host see the LV's current size; returns the size in bytes it sees. */
  refreshVolume(volUUID: string): Promise<number> {
    return this.o.driver.refresh(this.lvm, this.vg, volUUID);
  }

  /** The largest size extendLV would grow a volume of this capacity to. */
  maxLvSize(capacity: number): number {
    return maxLvSize(this.ctx, capacity);
  }

  /**
   * Leaving the pool (master domain): drops this host's activations of the
   * mailbox and tasks LVs, and of ids and leases when sanlock has left the
   * lockspace (it holds them open while joined). Run once the mailboxes and
   * the task store are closed. LVs not active here are skipped (lvchange
   * would refuse a tasks LV that an old domain does not have).
   */
  async dropPoolActivations(o: { lockspaceLeft: boolean }): Promise<void> {
    const lvs: string[] = ['inbox', 'outbox', TASKS_LV, ...(o.lockspaceLeft ? ['leases', 'ids'] : [])];
    const active = await Promise.all(lvs.map((lv) => this.o.driver.isActive(this.vg, lv)));
    await this.o.driver.deactivate(this.lvm, this.vg, lvs.filter((_lv, i) => active[i]));
  }

  /** spmStop: the tasks LV is the SPM's alone; drops this host's activation of it (the task store is closed). */
  async dropTasksArea(): Promise<void> {
    if (await this.o.driver.isActive(this.vg, TASKS_LV)) await this.o.driver.deactivate(this.lvm, this.vg, [TASKS_LV]);
  }

  /** Drops this host's activation of the metadata LV (used for slot I/O). Special LVs others asked for stay. */
  override async close(): Promise<void> {
    await this.slots.close();
  }

  async remove(): Promise<void> {
    const vg = await this.lvm.vgs(this.vg).catch(() => undefined);
    await this.o.driver.removeVg(this.lvm, this.vg);
    if (vg) await this.lvm.vgremove(this.vg);
    await this.lvm.pvremove(vg?.pvs.length ? vg.pvs : this.o.devices).catch(() => {});
    this.log.info('block domain removed');
  }

  private find(records: readonly BlockVolumeRecord[], imgUUID: string, volUUID: string): BlockVolumeRecord {
    const rec = records.find((r) => r.volUUID === volUUID);
    if (!rec || rec.imgUUID !== imgUUID) throw new VolumeNotFoundError(this.sdUUID, volUUID, imgUUID);
    return rec;
  }
}

export type { VolumeRecord };
