// A file storage domain: a directory on a local file system, NFS or any POSIX mount.
//   <root>/<sdUUID>/dom_md/metadata               domain metadata (domain-metadata.ts)
//   <root>/<sdUUID>/dom_md/{ids,leases,inbox,outbox}  sparse files, sized as on block domains
//   <root>/<sdUUID>/images/<imgUUID>/<volUUID>    volume data (qcow2 or raw)
//   <root>/<sdUUID>/images/<imgUUID>/<volUUID>.meta  volume metadata (volume-metadata.ts)
// A domain is built in a hidden folder and renamed into place, so it exists
// whole or not at all. A qcow2 names its parent by volUUID, relative to its
// own folder (the image's). A thin clone's folder holds hard links to its
// template volume and its .meta (which names the template's image), as VDSM
// shares a template into a clone's image; they go with the clone's last volume.
import { access, link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { PhaseTimer } from '../log.js';
import { StorageDomain, type DomainCommon, type MetadataChange } from './domain.js';
import { checkDomainDescription, decodeFileDomainMetadata, encodeFileDomainMetadata } from './domain-metadata.js';
import { DomainExistsError, DomainNotFoundError, StorageParamsError, VolumeExistsError, VolumeHasChildrenError, VolumeMetadataError, VolumeNotFoundError } from './errors.js';
import { run as defaultRunner } from './exec.js';
import { KeyedLock } from './keyed-lock.js';
import { QemuImg } from './qemu-img.js';
import {
  BLANK_UUID, checkUUID, MiB, SPECIAL_SIZES_MIB, SPECIAL_VOLUMES, type CreateVolumeParams, type DomainClass, type DomainInfo,
  type DomainMetadata, type DomainStats, type Legality, type OperationControl, type SpecialVolume, type VolumeInfo, type VolumeRecord, type VolumeSize,
} from './types.js';
import { decodeVolumeMetadata, encodeVolumeMetadata, type VolumeMetadata } from './volume-metadata.js';

export interface FileDomainOptions extends DomainCommon {
  /** The folder (mount point) that holds domains. */
  root: string;
  /** How PREALLOCATED volumes are allocated: falloc (fast where the file system has fallocate), full (writes zeros). Default falloc. */
  preallocation?: 'falloc' | 'full';
}

export interface CreateFileDomainOptions extends FileDomainOptions {
  description?: string;
  domainClass?: DomainClass;
  specialSizesMiB?: Partial<Record<SpecialVolume, number>>;
}

interface FileRecord extends VolumeRecord { md: VolumeMetadata }

/** Writes a file whole: temp file, fsync, rename. */
async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export class FileStorageDomain extends StorageDomain {
  readonly type = 'file' as const;
  private readonly qemuImg: QemuImg;
  private readonly locks = new KeyedLock();

  private constructor(sdUUID: string, readonly o: FileDomainOptions) {
    super(sdUUID, o.log);
    this.qemuImg = new QemuImg({ timeoutMs: o.qemuImgTimeoutMs, log: this.log, ...(o.runner ? { runner: o.runner } : {}) });
  }

  get path(): string { return join(this.o.root, this.sdUUID); }
  private get mdFile(): string { return join(this.path, 'dom_md', 'metadata'); }
  private imageDir(imgUUID: string): string { return join(this.path, 'images', imgUUID); }

  static async open(sdUUID: string, o: FileDomainOptions): Promise<FileStorageDomain> {
    const dom = new FileStorageDomain(sdUUID, o);
    await dom.readMetadata();
    return dom;
  }

  static async create(sdUUID: string, o: CreateFileDomainOptions): Promise<FileStorageDomain> {
    const timer = new PhaseTimer();
    const dom = new FileStorageDomain(sdUUID, o);
    const md: DomainMetadata = {
      sdUUID, type: 'file', class: o.domainClass ?? 'Data', description: checkDomainDescription(o.description ?? ''),
      version: 1, poolUUID: BLANK_UUID, role: 'Regular',
    };
    if (await access(dom.path).then(() => true, () => false)) throw new DomainExistsError(sdUUID, `${dom.path} exists`);
    const tmp = join(o.root, `.${sdUUID}.creating.${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    try {
      await mkdir(join(tmp, 'dom_md'), { recursive: true });
      await mkdir(join(tmp, 'images'));
      for (const name of SPECIAL_VOLUMES) {
        if (name === 'metadata') continue;
        const size = (o.specialSizesMiB?.[name] ?? SPECIAL_SIZES_MIB[name]) * MiB;
        await (o.runner ?? defaultRunner)(['truncate', '-s', String(size), join(tmp, 'dom_md', name)], { timeoutMs: o.ioTimeoutMs });
      }
      await writeAtomic(join(tmp, 'dom_md', 'metadata'), encodeFileDomainMetadata(md));
      await rename(tmp, dom.path);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true }).catch(() => {});
      if ((e as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (e as NodeJS.ErrnoException).code === 'EEXIST') throw new DomainExistsError(sdUUID, `${dom.path} exists`);
      throw e;
    }
    dom.log.info('file domain created', { path: dom.path, ...timer.fields() });
    return dom;
  }

  private async readMetadata(): Promise<DomainMetadata> {
    const text = await readFile(this.mdFile, 'utf8').catch((e: unknown) => { throw new DomainNotFoundError(this.sdUUID, `cannot read ${this.mdFile}`, { cause: e }); });
    return decodeFileDomainMetadata(this.sdUUID, text);
  }

  async getInfo(): Promise<DomainInfo> {
    return { ...(await this.readMetadata()), location: this.path };
  }

  async getStats(): Promise<DomainStats> {
    const fs = await statfs(this.path);
    return { sdUUID: this.sdUUID, totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize, volumeCount: (await this.listVolumes()).length };
  }

  async updateMetadata(change: MetadataChange): Promise<DomainMetadata> {
    if (change.description !== undefined) checkDomainDescription(change.description);
    return this.locks.with('domain', async () => {
      const next = { ...(await this.readMetadata()), ...change };
      await writeAtomic(this.mdFile, encodeFileDomainMetadata(next));
      return next;
    });
  }

  async listVolumes(): Promise<FileRecord[]> {
    const imgs = await readdir(join(this.path, 'images')).catch(() => [] as string[]);
    return (await Promise.all(imgs.filter((i) => !i.startsWith('.')).map((i) => this.imageRecords(i)))).flat();
  }

  private async imageRecords(imgUUID: string): Promise<FileRecord[]> {
    const names = await readdir(this.imageDir(imgUUID)).catch(() => [] as string[]);
    const metas = names.filter((n) => n.endsWith('.meta') && !n.startsWith('.'));
    const out = await Promise.all(metas.map(async (n) => {
      const volUUID = n.slice(0, -'.meta'.length);
      if (await this.isTemplateLink(imgUUID, volUUID)) return undefined; // listed in its own image
      const md = await this.readVolumeMetadata(imgUUID, volUUID).catch((err: unknown) => {
        this.log.warn('unreadable volume metadata skipped', { imgUUID, volUUID, err });
        return undefined;
      });
      return md && { volUUID, imgUUID, parentUUID: md.parent, md };
    }));
    return out.filter((r): r is FileRecord => r !== undefined);
  }

  private async readVolumeMetadata(imgUUID: string, volUUID: string): Promise<VolumeMetadata> {
    const file = `${this.volumePath(imgUUID, volUUID)}.meta`;
    const text = await readFile(file, 'utf8').catch(() => { throw new VolumeNotFoundError(this.sdUUID, volUUID, imgUUID); });
    const md = decodeVolumeMetadata(text, { file });
    if (md.volume !== volUUID || md.image !== imgUUID) throw new VolumeMetadataError(`${file} names volume ${md.volume} of image ${md.image}`);
    return md;
  }

  /** A thin clone's link to its template volume: a SHARED volume's .meta in another image's folder. */
  private async isTemplateLink(imgUUID: string, volUUID: string): Promise<boolean> {
    const text = await readFile(`${this.volumePath(imgUUID, volUUID)}.meta`, 'utf8').catch(() => '');
    try {
      const md = decodeVolumeMetadata(text);
      return md.image !== imgUUID && md.shared === true;
    } catch {
      return false;
    }
  }

  /** Removes an image's folder once no volume of its own is left (the template links a thin clone had go with it). */
  private async dropImageDirIfEmpty(imgUUID: string): Promise<void> {
    const dir = this.imageDir(imgUUID);
    const names = await readdir(dir).catch(() => [] as string[]);
    const vols = [...new Set(names.filter((n) => !n.startsWith('.')).map((n) => n.replace(/\.meta$/, '')))];
    const links = await Promise.all(vols.map((v) => this.isTemplateLink(imgUUID, v)));
    if (links.some((l) => !l)) return; // volumes of its own left
    for (const v of vols) {
      await rm(join(dir, v), { force: true });
      await rm(join(dir, `${v}.meta`), { force: true });
    }
    await rmdir(dir).catch(() => { /* something new appeared */ });
  }

  /** SPM: marks a volume SHARED (a template): read only from now on, a base for thin clones of other images. */
  async markShared(imgUUID: string, volUUID: string): Promise<void> {
    await this.writeVolumeMetadata({ ...(await this.readVolumeMetadata(imgUUID, volUUID)), shared: true });
  }

  private writeVolumeMetadata(md: VolumeMetadata): Promise<void> {
    return writeAtomic(`${this.volumePath(md.image, md.volume)}.meta`, encodeVolumeMetadata(md));
  }

  volumePath(imgUUID: string, volUUID: string): string {
    return join(this.imageDir(checkUUID('imgUUID', imgUUID)), checkUUID('volUUID', volUUID));
  }

  async specialPath(name: SpecialVolume): Promise<string> {
    return join(this.path, 'dom_md', name);
  }

  /** Where the SPM keeps its tasks when this is the master domain (VDSM: the master file system's tasks/). */
  get tasksDir(): string {
    return join(this.path, 'master', 'tasks');
  }

  protected async activateVolumes(imgUUID: string, volUUIDs: readonly string[]): Promise<void> {
    for (const v of volUUIDs) await access(this.volumePath(imgUUID, v)).catch(() => { throw new VolumeNotFoundError(this.sdUUID, v, imgUUID); });
  }

  protected async deactivateVolumes(): Promise<void> { /* files need no activation */ }

  async createVolume(p: CreateVolumeParams, ctl?: OperationControl): Promise<VolumeInfo> {
    const timer = new PhaseTimer();
    const path = this.volumePath(p.imgUUID, p.volUUID);
    let parentImg: string | undefined;
    const md = await this.locks.with('domain', async () => {
      const records = await this.listVolumes();
      const parent = this.validateCreate(p, records) as FileRecord | undefined;
      if (records.some((r) => r.volUUID === p.volUUID) || await access(path).then(() => true, () => false)) throw new VolumeExistsError(this.sdUUID, p.volUUID);
      this.checkParentSharing(p, parent, parent?.md.shared === true);
      parentImg = parent?.imgUUID;
      if (parent && p.capacity < parent.md.capacity) throw new StorageParamsError(`capacity ${p.capacity} is smaller than the parent's ${parent.md.capacity}`, 'volumeResizeValueError');
      const md: VolumeMetadata = {
        domain: this.sdUUID, image: p.imgUUID, volume: p.volUUID, parent: parent?.volUUID ?? BLANK_UUID, capacity: p.capacity,
        format: p.format, type: p.allocation, diskType: p.diskType ?? 'DATA', description: p.description ?? '', legality: 'ILLEGAL',
        ctime: Math.floor(Date.now() / 1000), generation: 0,
      };
      await mkdir(this.imageDir(p.imgUUID), { recursive: true });
      await this.writeVolumeMetadata(md); // claims the name; ILLEGAL until the data exists
      if (parent && parent.imgUUID !== p.imgUUID) {
        // The template goes into the clone's folder, so the qcow2's relative backing name resolves there.
        const from = this.volumePath(parent.imgUUID, parent.volUUID);
        const to = this.volumePath(p.imgUUID, parent.volUUID);
        await link(from, to).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
        await link(`${from}.meta`, `${to}.meta`).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
      }
      return md;
    });
    timer.mark('metadata');
    ctl?.phase?.('metadata');
    try {
      ctl?.signal?.throwIfAborted();
      const parentFormat = md.parent === BLANK_UUID ? undefined : (await this.readVolumeMetadata(parentImg ?? p.imgUUID, md.parent)).format;
      await this.qemuImg.create(path, {
        format: p.format === 'COW' ? 'qcow2' : 'raw', size: p.capacity,
        ...(p.allocation === 'PREALLOCATED' ? { preallocation: this.o.preallocation ?? 'falloc' } : {}),
        ...(parentFormat ? { backing: { name: md.parent, format: parentFormat === 'COW' ? 'qcow2' as const : 'raw' as const } } : {}),
        ...(ctl?.signal ? { signal: ctl.signal } : {}),
      });
      timer.mark('format');
      ctl?.phase?.('format');
      ctl?.signal?.throwIfAborted();
      await this.writeVolumeMetadata({ ...md, legality: 'LEGAL' });
      ctl?.phase?.('commit');
    } catch (e) {
      this.log.warn('volume create failed; removing it', { volUUID: p.volUUID, err: e });
      await rm(path, { force: true }).catch(() => {});
      await rm(`${path}.meta`, { force: true }).catch(() => {});
      await this.locks.with('domain', () => this.dropImageDirIfEmpty(p.imgUUID)).catch(() => {});
      throw e;
    }
    this.log.info('volume created', { imgUUID: p.imgUUID, volUUID: p.volUUID, format: p.format, allocation: p.allocation, capacity: p.capacity, ...timer.fields() });
    return this.getVolumeInfo(p.imgUUID, p.volUUID);
  }

  async deleteVolume(imgUUID: string, volUUID: string): Promise<void> {
    const path = this.volumePath(imgUUID, volUUID);
    await this.locks.with('domain', async () => {
      const records = await this.imageRecords(imgUUID);
      const rec = records.find((r) => r.volUUID === volUUID);
      if (!rec) throw new VolumeNotFoundError(this.sdUUID, volUUID, imgUUID);
      const children = records.filter((r) => r.parentUUID === volUUID).map((r) => r.volUUID);
      if (children.length) throw new VolumeHasChildrenError(this.sdUUID, volUUID, children);
      await this.writeVolumeMetadata({ ...rec.md, legality: 'ILLEGAL' });
      await rm(path, { force: true });
      await rm(`${path}.meta`, { force: true });
      await this.dropImageDirIfEmpty(imgUUID);
    });
    this.log.info('volume deleted', { imgUUID, volUUID });
  }

  async purgeVolume(imgUUID: string, volUUID: string): Promise<boolean> {
    const path = this.volumePath(imgUUID, volUUID);
    const existed = await this.locks.with('domain', async () => {
      const children = (await this.imageRecords(imgUUID)).filter((r) => r.parentUUID === volUUID).map((r) => r.volUUID);
      if (children.length) throw new VolumeHasChildrenError(this.sdUUID, volUUID, children);
      const there = (await Promise.all([path, `${path}.meta`].map((f) => access(f).then(() => true, () => false)))).some(Boolean);
      await rm(path, { force: true });
      await rm(`${path}.meta`, { force: true });
      await this.dropImageDirIfEmpty(imgUUID);
      return there;
    });
    if (existed) this.log.info('volume purged', { imgUUID, volUUID });
    return existed;
  }

  async getVolumeInfo(imgUUID: string, volUUID: string): Promise<VolumeInfo> {
    const md = await this.readVolumeMetadata(imgUUID, volUUID);
    const size = await this.getVolumeSize(imgUUID, volUUID);
    const records = await this.imageRecords(imgUUID);
    return {
      uuid: volUUID, domain: this.sdUUID, image: imgUUID, parent: md.parent, capacity: md.capacity, format: md.format, type: md.type,
      voltype: md.shared ? 'SHARED' : records.some((r) => r.parentUUID === volUUID) ? 'INTERNAL' : 'LEAF', disktype: md.diskType, description: md.description,
      legality: md.legality, generation: md.generation, ctime: md.ctime, ...size,
    };
  }

  async getVolumeSize(imgUUID: string, volUUID: string): Promise<VolumeSize> {
    const st = await stat(this.volumePath(imgUUID, volUUID)).catch(() => { throw new VolumeNotFoundError(this.sdUUID, volUUID, imgUUID); });
    return { apparentsize: st.size, truesize: st.blocks * 512 };
  }

  async extendVolumeSize(imgUUID: string, volUUID: string, newCapacity: number): Promise<VolumeInfo> {
    const md = await this.readVolumeMetadata(imgUUID, volUUID);
    if (!Number.isSafeInteger(newCapacity) || newCapacity % 512 || newCapacity < md.capacity) {
      throw new StorageParamsError(`new capacity ${newCapacity} must be a multiple of 512 and at least the current ${md.capacity}`, 'volumeResizeValueError');
    }
    if (newCapacity > md.capacity) {
      await this.qemuImg.resize(this.volumePath(imgUUID, volUUID), md.format === 'COW' ? 'qcow2' : 'raw', newCapacity,
        md.format === 'RAW' && md.type === 'PREALLOCATED' ? 'falloc' : undefined);
      await this.writeVolumeMetadata({ ...md, capacity: newCapacity });
      this.log.info('volume capacity extended', { imgUUID, volUUID, from: md.capacity, to: newCapacity });
    }
    return this.getVolumeInfo(imgUUID, volUUID);
  }

  async setVolumeLegality(imgUUID: string, volUUID: string, legality: Legality): Promise<void> {
    await this.writeVolumeMetadata({ ...(await this.readVolumeMetadata(imgUUID, volUUID)), legality });
  }

  async setVolumeParent(imgUUID: string, volUUID: string, parentUUID: string): Promise<void> {
    await this.writeVolumeMetadata({ ...(await this.readVolumeMetadata(imgUUID, volUUID)), parent: parentUUID });
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
    this.log.info('file domain removed', { path: this.path });
  }
}
