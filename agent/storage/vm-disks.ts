// Disks that refer to pool/domain/image/volume ids: prepared on this host
// before the VM starts (after_disk_prepare may change the result), watched by
// the drive monitor while the VM runs when they are thin qcow2 on block
// storage, and torn down after the VM is gone.
import type { Static } from '@sinclair/typebox';
import type { DiskSpec } from '../api/types.js';
import type { Logger } from '../log.js';
import type { Hooks } from '../hooks/hooks.js';
import type { StoragePool } from './pool.js';
import type { DriveMonitor } from './thinp/drive-monitor.js';

type Disk = Static<typeof DiskSpec>;

export class VmDisks {
  constructor(private readonly pool: StoragePool, private readonly monitor: DriveMonitor, private readonly hooks: Hooks, private readonly log: Logger) {}

  /** Resolves a disk with storage ids to a path on this host; disks with a path pass through. */
  async prepare(vmId: string, disk: Disk, customProperties: Record<string, string>): Promise<Disk> {
    if (!disk.storage || disk.path) return disk;
    const s = disk.storage;
    const dom = await this.pool.domain(s.domainID);
    const prepared = await dom.prepareImage(s.imageID, s.volumeID);
    const info = await dom.getVolumeInfo(s.imageID, s.volumeID);
    const block = 'extendLV' in dom;
    const drive = { path: prepared.path, diskType: block ? 'block' : 'file', format: info.format === 'COW' ? 'qcow2' : 'raw', ...s };
    const out = await this.hooks.filterJson('after_disk_prepare', drive, { vmId, customProperties });
    return { ...disk, path: out.path, type: out.diskType === 'block' ? 'block' : 'file', format: out.format === 'raw' ? 'raw' : 'qcow2' };
  }

  /** After launch: thin qcow2 volumes on block storage go under the drive monitor. */
  launched(vmId: string, disks: Disk[]): void {
    for (const d of disks) {
      if (!d.storage || d.readonly || d.type !== 'block' || (d.format ?? 'qcow2') !== 'qcow2') continue;
      this.monitor.add({ vmId, target: d.name, domainId: d.storage.domainID, volumeId: d.storage.volumeID });
    }
  }

  /** The VM is gone: stop watching and deactivate its images. */
  async released(vmId: string, disks: Disk[]): Promise<void> {
    this.monitor.removeVm(vmId);
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
