// A storage domain: the operations both types share (file: a directory, see
// file-domain.ts; block: an LVM VG, see block-domain.ts). Image operations are
// built here on each type's volume primitives.
import { silentLogger, type Logger } from '../log.js';
import { SharedVolumeNonWritableError, StorageParamsError, VolumeHasChildrenError, VolumeNonShareableError, WrongLegalityError } from './errors.js';
import type { Runner } from './exec.js';
import { buildChain, childrenOf, deletionOrder, imageVolumes } from './image.js';
import { checkDescription } from './volume-metadata.js';
import {
  BLANK_UUID, checkUUID, type CreateVolumeParams, type DomainInfo, type DomainMetadata, type DomainStats, type DomainType,
  type Legality, type OperationControl, type PreparedImage, type SpecialVolume, type VolumeInfo, type VolumeRecord, type VolumeSize,
} from './types.js';

/** Timeouts and plumbing every domain takes. */
export interface DomainCommon {
  /** qemu-img create/resize/info (preallocation of a large file can take a while). */
  qemuImgTimeoutMs: number;
  /** Small I/O: dd of a metadata slot, truncate, losetup. */
  ioTimeoutMs: number;
  runner?: Runner;
  log?: Logger;
}

export type MetadataChange = Partial<Pick<DomainMetadata, 'description' | 'poolUUID' | 'role'>>;

export abstract class StorageDomain {
  abstract readonly type: DomainType;
  protected readonly log: Logger;

  constructor(readonly sdUUID: string, log: Logger | undefined) {
    checkUUID('sdUUID', sdUUID);
    this.log = (log ?? silentLogger).child({ sdUUID });
  }

  abstract getInfo(): Promise<DomainInfo>;
  abstract getStats(): Promise<DomainStats>;
  /** Changes the domain's description, pool or role (SPM). */
  abstract updateMetadata(change: MetadataChange): Promise<DomainMetadata>;
  /** Every volume of the domain, from the cheapest source (LV tags, or the .meta files). */
  abstract listVolumes(): Promise<VolumeRecord[]>;
  /** SPM. A failed or stopped create removes what it made. */
  abstract createVolume(p: CreateVolumeParams, ctl?: OperationControl): Promise<VolumeInfo>;
  /** SPM. Refuses a volume that has children. */
  abstract deleteVolume(imgUUID: string, volUUID: string): Promise<void>;
  /**
   * SPM, task recovery: removes whatever exists of a volume (data, metadata,
   * LV, slot), whatever its state, half-created ones included. Refuses one
   * with children. Returns whether anything was there.
   */
  abstract purgeVolume(imgUUID: string, volUUID: string): Promise<boolean>;
  abstract getVolumeInfo(imgUUID: string, volUUID: string): Promise<VolumeInfo>;
  abstract getVolumeSize(imgUUID: string, volUUID: string): Promise<VolumeSize>;
  /** SPM: grows the virtual size (capacity). */
  abstract extendVolumeSize(imgUUID: string, volUUID: string, newCapacity: number): Promise<VolumeInfo>;
  abstract setVolumeLegality(imgUUID: string, volUUID: string, legality: Legality): Promise<void>;
  /** SPM: marks a volume SHARED (a template): read only from now on, a base for thin clones of other images. */
  abstract markShared(imgUUID: string, volUUID: string): Promise<void>;
  /**
   * After a live merge took the volume's parent out of the chain: its
   * metadata names the new parent (the host running the VM does this, as
   * VDSM's syncVolumeChain; the qcow2 header was rewritten by QEMU).
   */
  abstract setVolumeParent(imgUUID: string, volUUID: string, parentUUID: string): Promise<void>;
  /** The path a prepared volume is used through. */
  abstract volumePath(imgUUID: string, volUUID: string): string;
  /** The path of a special volume (ids, leases, inbox, outbox, metadata), activated on block domains. */
  abstract specialPath(name: SpecialVolume): Promise<string>;
  /** Destroys the domain and everything on it (format). */
  abstract remove(): Promise<void>;

  /** Releases what the domain object holds on this host (block: its metadata LV activation). */
  async close(): Promise<void> { /* nothing by default */ }

  /** Makes volumes usable on this host, in chain order (base first); returns their formats. */
  protected abstract activateVolumes(imgUUID: string, volUUIDs: readonly string[]): Promise<void>;
  protected abstract deactivateVolumes(imgUUID: string, volUUIDs: readonly string[]): Promise<void>;

  async getImages(): Promise<string[]> {
    return [...new Set((await this.listVolumes()).map((r) => r.imgUUID))].sort();
  }

  async getVolumes(imgUUID?: string): Promise<string[]> {
    const all = await this.listVolumes();
    return (imgUUID ? imageVolumes(all, checkUUID('imgUUID', imgUUID)) : all).map((r) => r.volUUID).sort();
  }

  /**
   * Activates every volume of the image's chain up to the leaf (or `leafUUID`)
   * and returns the leaf's path plus the chain, base first. ILLEGAL volumes are
   * refused (a half-created or half-deleted volume must not reach a VM), and
   * so is a SHARED (template) leaf unless `readOnly`: a template is never
   * written. A thin clone's chain includes its template volume (another
   * image's), reached through the clone's image (a link on file domains).
   * `o.undoOnly`: on failure only that volume is deactivated again (a live
   * snapshot's new leaf: the rest of the chain is in use by a running VM).
   */
  async prepareImage(imgUUID: string, leafUUID?: string, o: { readOnly?: boolean; undoOnly?: string } = {}): Promise<PreparedImage> {
    checkUUID('imgUUID', imgUUID);
    if (leafUUID) checkUUID('volUUID', leafUUID);
    const chain = buildChain(this.sdUUID, await this.listVolumes(), imgUUID, leafUUID);
    const ids = chain.map((v) => v.volUUID);
    await this.activateVolumes(imgUUID, ids);
    try {
      const infos = await Promise.all(chain.map((v) => this.getVolumeInfo(v.imgUUID, v.volUUID)));
      const bad = infos.find((i) => i.legality !== 'LEGAL');
      if (bad) throw new WrongLegalityError(this.sdUUID, bad.uuid, bad.legality);
      const foreign = infos.find((i) => i.image !== imgUUID && i.voltype !== 'SHARED');
      if (foreign) throw new VolumeNonShareableError(this.sdUUID, foreign.uuid, foreign.image);
      if (!o.readOnly && infos.at(-1)!.voltype === 'SHARED') throw new SharedVolumeNonWritableError(this.sdUUID, infos.at(-1)!.uuid, 'it cannot be prepared as a writable leaf (use a thin clone, or prepare it read only)');
      const prepared = infos.map((i) => ({
        volUUID: i.uuid, imgUUID: i.image, path: this.volumePath(imgUUID, i.uuid), format: i.format, ...(i.voltype === 'SHARED' ? { shared: true } : {}),
      }));
      this.log.info('image prepared', { imgUUID, leaf: ids.at(-1), chain: ids });
      return { imgUUID, path: prepared.at(-1)!.path, chain: prepared };
    } catch (e) {
      await this.deactivateVolumes(imgUUID, o.undoOnly ? ids.filter((id) => id === o.undoOnly) : [...ids].reverse()).catch(() => {});
      throw e;
    }
  }

  /**
   * Runs fn with the chain up to `leafUUID` prepared; afterwards deactivates
   * only what was not active before (a VM on this host may use the rest).
   */
  async withPrepared<T>(imgUUID: string, leafUUID: string, o: { readOnly?: boolean }, fn: (img: PreparedImage) => Promise<T>): Promise<T> {
    const chain = buildChain(this.sdUUID, await this.listVolumes(), imgUUID, leafUUID).map((v) => v.volUUID);
    const before = await Promise.all(chain.map((v) => this.volumeActive(v)));
    const prepared = await this.prepareImage(imgUUID, leafUUID, o);
    try {
      return await fn(prepared);
    } finally {
      await this.deactivateVolumes(imgUUID, chain.filter((_v, i) => !before[i]).reverse())
        .catch((err: unknown) => this.log.warn('deactivation after use failed', { imgUUID, err }));
    }
  }

  /**
   * SPM chain repair (a cold merge's recovery): runs fn with these volumes
   * active on this host whatever their legality, and deactivates afterwards
   * what was not active before.
   */
  async withVolumesActive<T>(imgUUID: string, volUUIDs: readonly string[], fn: () => Promise<T>): Promise<T> {
    const before = await Promise.all(volUUIDs.map((v) => this.volumeActive(v)));
    await this.activateVolumes(imgUUID, volUUIDs);
    try {
      return await fn();
    } finally {
      await this.deactivateVolumes(imgUUID, volUUIDs.filter((_v, i) => !before[i]))
        .catch((err: unknown) => this.log.warn('deactivation after use failed', { imgUUID, err }));
    }
  }

  /** Whether a volume is usable on this host now (files always are). */
  protected async volumeActive(_volUUID: string): Promise<boolean> { return true; }

  /** Deactivates one volume on this host (a live merge's removed volume, out of the VM's chain). */
  async deactivateVolume(imgUUID: string, volUUID: string): Promise<void> {
    await this.deactivateVolumes(checkUUID('imgUUID', imgUUID), [checkUUID('volUUID', volUUID)]);
  }

  /** Deactivates every volume of the image on this host (all of them: a torn-down image has nothing active). */
  async teardownImage(imgUUID: string): Promise<void> {
    checkUUID('imgUUID', imgUUID);
    const order = deletionOrder(await this.listVolumes(), imgUUID);
    await this.deactivateVolumes(imgUUID, order);
    this.log.info('image torn down', { imgUUID });
  }

  /** The volumes of an image in the order deleteImage removes them (children first). */
  async imageDeletionOrder(imgUUID: string): Promise<string[]> {
    return deletionOrder(await this.listVolumes(), checkUUID('imgUUID', imgUUID));
  }

  /**
   * SPM: deletes every volume of the image, children first. A stop takes
   * effect between volumes, so what is left is always the base of the chain.
   */
  async deleteImage(imgUUID: string, ctl?: OperationControl): Promise<void> {
    const order = await this.imageDeletionOrder(imgUUID);
    for (const vol of order) {
      ctl?.signal?.throwIfAborted();
      await this.deleteVolume(imgUUID, vol);
      ctl?.phase?.(`delete ${vol.slice(0, 8)}`);
    }
    this.log.info('image deleted', { imgUUID, volumes: order });
  }

  /**
   * Whether the parent may carry the new volume: a thin clone's (another
   * image's) must be SHARED; a template's own image takes no snapshot on it.
   */
  protected checkParentSharing(p: CreateVolumeParams, parent: { volUUID: string; imgUUID: string } | undefined, parentShared: boolean): void {
    if (!parent) return;
    if (parent.imgUUID !== p.imgUUID && !parentShared) throw new VolumeNonShareableError(this.sdUUID, parent.volUUID, parent.imgUUID);
    if (parent.imgUUID === p.imgUUID && parentShared) throw new SharedVolumeNonWritableError(this.sdUUID, parent.volUUID, 'no snapshot is taken on a template in its own image; make a thin clone (srcImgUUID)');
  }

  /** Checks shared by both types; returns the parent's record, if any. */
  protected validateCreate(p: CreateVolumeParams, records: readonly VolumeRecord[]): VolumeRecord | undefined {
    checkUUID('imgUUID', p.imgUUID);
    checkUUID('volUUID', p.volUUID);
    if (p.description !== undefined) checkDescription(p.description);
    if (!Number.isSafeInteger(p.capacity) || p.capacity <= 0 || p.capacity % 512) {
      throw new StorageParamsError(`capacity must be a positive multiple of 512 bytes, got ${p.capacity}`, 'volumeResizeValueError');
    }
    if (p.format !== 'COW' && p.format !== 'RAW') throw new StorageParamsError(`unknown volume format ${String(p.format)}`, 'incorrectFormat');
    if (p.allocation !== 'SPARSE' && p.allocation !== 'PREALLOCATED') throw new StorageParamsError(`unknown allocation ${String(p.allocation)}`, 'incorrectType');
    if (records.some((r) => r.volUUID === p.volUUID)) return undefined; // the caller raises VolumeExistsError
    const parentUUID = p.parentUUID && p.parentUUID !== BLANK_UUID ? checkUUID('parentUUID', p.parentUUID) : undefined;
    if (!parentUUID) return undefined;
    if (p.format !== 'COW') throw new StorageParamsError('a volume with a parent (a snapshot) must be COW', 'incorrectFormat');
    const parent = records.find((r) => r.volUUID === parentUUID);
    const parentImg = p.parentImgUUID && p.parentImgUUID !== p.imgUUID ? checkUUID('parentImgUUID', p.parentImgUUID) : p.imgUUID;
    if (!parent || parent.imgUUID !== parentImg) throw new StorageParamsError(`parent volume ${parentUUID} is not in image ${parentImg}`, 'volumeDoesNotExist');
    if (parentImg !== p.imgUUID) {
      // A thin clone starts a new image: the template may have any number of clones.
      if (records.some((r) => r.imgUUID === p.imgUUID)) throw new StorageParamsError(`a thin clone starts a new image; image ${p.imgUUID} already has volumes`);
      return parent;
    }
    const children = childrenOf(records, parentUUID);
    if (children.length) throw new VolumeHasChildrenError(this.sdUUID, parentUUID, children);
    return parent;
  }
}
