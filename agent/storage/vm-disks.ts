// Disks that refer to pool/domain/image/volume ids: prepared on this host
// before the VM starts (after_disk_prepare may change the result), watched by
// the drive monitor while the VM runs when they are thin qcow2 on block
// storage, and torn down after the VM is gone. After an agent restart, the
// disks of a VM found running are prepared again and watched again.
import type { Static } from '@sinclair/typebox';
import type { DiskSpec } from '../../api/types.js';
import type { Logger } from '../log.js';
import type { Hooks } from '../hooks/hooks.js';
import type { StoragePool } from './pool.js';
import type { DriveMonitor } from './thinp/drive-monitor.js';
import { StorageParamsError, WrongLegalityError } from './errors.js';

type Disk = Static<typeof DiskSpec>;

/** A disk as the running domain has it (its live XML). */
export interface LiveDisk { target: string; source?: string; type?: string; format?: string; readonly: boolean }

export class VmDisks {
  constructor(private readonly pool: StoragePool, private readonly monitor: DriveMonitor, private readonly hooks: Hooks, private readonly log: Logger) {}

  /**
   * Prepares a VM's disks (at once). If any fails, the images the others
   * prepared are torn down again and the first failure (in disk order) is
   * thrown. `release` tears down what was prepared, for a create that fails
   * later on, before the VM exists.
   */
  async prepareAll(vmId: string, disks: readonly Disk[], customProperties: Record<string, string>): Promise<{ disks: Disk[]; release: () => Promise<void> }> {
    const results = await Promise.allSettled(disks.map((d) => this.prepare(vmId, d, customProperties)));
    const preparedHere = disks.filter((d, i) => needsPrepare(d) && results[i]!.status === 'fulfilled');
    const release = () => this.teardown(vmId, preparedHere);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      if (preparedHere.length) this.log.info('a disk could not be prepared; tearing down the ones that were', { vm: vmId, images: preparedHere.map((d) => d.storage!.imageID) });
      await release();
      throw failed.reason;
    }
    return { disks: results.map((r) => (r as PromiseFulfilledResult<Disk>).value), release };
  }

  /** Resolves a disk with storage ids to a path on this host; disks with a path pass through. */
  async prepare(vmId: string, disk: Disk, customProperties: Record<string, string>): Promise<Disk> {
    if (!needsPrepare(disk)) return disk;
    const s = disk.storage!;
    const dom = await this.pool.domain(s.domainID);
    // A read-only disk may be a template volume itself; a writable one never is (219).
    const prepared = await dom.prepareImage(s.imageID, s.volumeID, { readOnly: !!disk.readonly }); // undoes itself when it fails
    try {
      const info = await dom.getVolumeInfo(s.imageID, s.volumeID);
      const block = 'extendLV' in dom;
      const drive = { path: prepared.path, diskType: block ? 'block' : 'file', format: info.format === 'COW' ? 'qcow2' : 'raw', ...s };
      const out = await this.hooks.filterJson('after_disk_prepare', drive, { vmId, customProperties });
      return { ...disk, path: out.path, type: out.diskType === 'block' ? 'block' : 'file', format: out.format === 'raw' ? 'raw' : 'qcow2' };
    } catch (e) {
      await this.teardown(vmId, [disk]);
      throw e;
    }
  }

  /**
   * A live snapshot's new leaf for a running drive: checked (it exists, is
   * LEGAL qcow2 and its parent is `base`) before its chain is activated on this
   * host, so a bad leaf never reaches the activation's undo, which would take
   * the running chain down with it.
   */
  async prepareLeaf(ref: { domainID: string; imageID: string; volumeID: string }, base: string): Promise<{ path: string; type: 'file' | 'block'; format: 'qcow2' }> {
    const dom = await this.pool.domain(ref.domainID);
    const info = await dom.getVolumeInfo(ref.imageID, ref.volumeID);
    if (info.parent !== base) throw new StorageParamsError(`volume ${ref.volumeID} has parent ${info.parent}, not the drive's leaf ${base}`);
    if (info.format !== 'COW') throw new StorageParamsError(`volume ${ref.volumeID} is ${info.format}; a snapshot leaf is COW`, 'incorrectFormat');
    if (info.legality !== 'LEGAL') throw new WrongLegalityError(ref.domainID, ref.volumeID, info.legality);
    const prepared = await dom.prepareImage(ref.imageID, ref.volumeID, { undoOnly: ref.volumeID });
    return { path: prepared.path, type: 'extendLV' in dom ? 'block' : 'file', format: 'qcow2' };
  }

  /** A drive leaves the drive monitor for a while (a live snapshot switching it to a new leaf). */
  unwatch(vmId: string, target: string): void {
    this.monitor.remove(vmId, target);
  }

  /** A hibernation state volume given by storage ids, activated on this host: its path. */
  async prepareState(ref: { domainID: string; imageID: string; volumeID: string }): Promise<string> {
    const dom = await this.pool.domain(ref.domainID);
    return (await dom.prepareImage(ref.imageID, ref.volumeID)).path;
  }

  /** Deactivates a state volume once written or read back; a failure is logged, never thrown. */
  async releaseState(vmId: string, ref: { domainID: string; imageID: string; volumeID: string }): Promise<void> {
    await this.teardown(vmId, [{ name: 'state', storage: { poolID: '', ...ref } } as Disk]);
  }

  /** After launch: thin qcow2 volumes on block storage go under the drive monitor. */
  launched(vmId: string, disks: Disk[]): void {
    for (const d of disks) {
      if (!d.storage || d.readonly || d.type !== 'block' || (d.format ?? 'qcow2') !== 'qcow2') continue;
      this.monitor.add({ vmId, target: d.name, domainId: d.storage.domainID, volumeId: d.storage.volumeID });
    }
  }

  /**
   * After an agent restart, for a VM found running: its storage disks, known
   * by their ids (metadata), are prepared again (activation is idempotent:
   * they are in use) and resolved to what the domain really uses (its live
   * XML; no hooks run again), and its thin drives go back under the drive
   * monitor; a VM paused because a disk was full has them extended at once.
   * Throws when a disk cannot be prepared (the caller retries; what is
   * prepared stays: the VM uses it).
   */
  async recovered(vmId: string, disks: readonly Disk[], live: readonly LiveDisk[], o: { pausedOnEnospc: boolean }): Promise<Disk[]> {
    const out: Disk[] = [];
    const watch: Disk[] = [];
    for (const d of disks) {
      const l = live.find((x) => x.target === d.name);
      if (!d.storage || !l?.source) {
        if (d.storage) this.log.warn('disk in the metadata but not in the running domain; not prepared', { vm: vmId, disk: d.name, image: d.storage.imageID });
        out.push(d);
        continue;
      }
      const s = d.storage;
      const prepared = await (await this.pool.domain(s.domainID)).prepareImage(s.imageID, s.volumeID);
      const r: Disk = { ...d, path: l.source, type: l.type === 'block' ? 'block' : 'file', format: l.format === 'raw' ? 'raw' : 'qcow2', ...(l.readonly ? { readonly: true } : {}) };
      out.push(r);
      // after_disk_prepare may have put something else in the volume's place at launch: that is not the volume to watch.
      if (prepared.path === l.source) watch.push(r);
      else this.log.info('disk runs on another path than its volume; not watched', { vm: vmId, disk: d.name, volumePath: prepared.path, path: l.source });
    }
    this.launched(vmId, watch);
    if (o.pausedOnEnospc) this.monitor.onEnospc(vmId);
    return out;
  }

  /** The VM is gone: stop watching and deactivate its images. */
  async released(vmId: string, disks: Disk[]): Promise<void> {
    this.monitor.removeVm(vmId);
    await this.teardown(vmId, disks);
  }

  /** Deactivates the images of the disks that refer to storage ids; a failure is logged, never thrown. */
  private async teardown(vmId: string, disks: readonly Disk[]): Promise<void> {
    for (const d of disks) {
      if (!d.storage) continue;
      try {
        await (await this.pool.domain(d.storage.domainID)).teardownImage(d.storage.imageID);
      } catch (e) {
        this.log.warn('image teardown failed', { vm: vmId, image: d.storage.imageID, err: e });
      }
    }
  }
}

/** A disk given by storage ids, whose path this host resolves (a disk with a path is used as given). */
function needsPrepare(d: Disk): boolean {
  return !!d.storage && !d.path;
}
