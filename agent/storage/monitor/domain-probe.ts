// What the domain monitor reads on each type of domain.
//   file:  the read check reads dom_md/metadata itself (a few hundred bytes),
//          so the same read yields the metadata version; space from `stat -f`.
//   block: the read check reads the first 4 KiB of the `metadata` LV, through
//          this host's activation of it (re-made after a failed check); the
//          version and space come from the VG (vgs), on the refresh schedule.
// Every file system call on the domain runs in a child process (dd, stat), so
// a hung mount costs a killable process, never a libuv thread.
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { runProcess } from '../../process.js';
import type { BlockStorageDomain } from '../block-domain.js';
import { decodeFileDomainMetadata, decodeVgTags } from '../domain-metadata.js';
import { DomainNotFoundError, StorageError } from '../errors.js';
import type { FileStorageDomain } from '../file-domain.js';

export const READ_CHECK_BYTES = 4096;

export interface DomainSpace {
  totalBytes: number;
  freeBytes: number;
  /** Block: the domain metadata version from the VG tags. */
  version?: number;
}

export interface DomainProbe {
  /** The path the read check reads (activating it on block domains); kept until forgetPath(). */
  metadataPath(): Promise<string>;
  /** After a failed check: resolve (re-activate) the path again next time. */
  forgetPath(): void;
  /** Validates what the read returned; returns the metadata version when the read carries it. Throws a StorageError. */
  checkHead(bytes: Buffer): number | undefined;
  refresh(timeoutMs: number): Promise<DomainSpace>;
  /** The lockspace's ids area (activated on block domains). */
  idsPath(): Promise<string>;
  /** The monitor stopped: drop this host's activations it made (ids only once sanlock has let go of it). */
  close(o: { ids: boolean }): Promise<void>;
}

export class FileDomainProbe implements DomainProbe {
  constructor(private readonly dom: FileStorageDomain) {}

  async metadataPath(): Promise<string> { return join(this.dom.path, 'dom_md', 'metadata'); }
  forgetPath(): void { /* a plain path */ }

  checkHead(bytes: Buffer): number {
    return decodeFileDomainMetadata(this.dom.sdUUID, bytes.toString('utf8')).version;
  }

  async refresh(timeoutMs: number): Promise<DomainSpace> {
    const r = await runProcess(['stat', '-f', '-c', '%S %b %a', this.dom.path], { timeoutMs, stderrCapBytes: 4096 });
    if (r.timedOut) throw new StorageError('timeout', `stat -f ${this.dom.path} did not finish in ${timeoutMs} ms`);
    const [bsize, blocks, avail] = r.stdout.toString('utf8').trim().split(/\s+/).map(Number);
    if (r.rc !== 0 || !bsize || blocks === undefined || avail === undefined || Number.isNaN(blocks + avail)) {
      throw new StorageError('storageDomainAccessError', `stat -f ${this.dom.path} failed: ${r.stderr.trim() || `rc ${r.rc}`}`, 'storageDomainAccessError');
    }
    return { totalBytes: bsize * blocks, freeBytes: bsize * avail };
  }

  idsPath(): Promise<string> { return this.dom.specialPath('ids'); }

  async close(): Promise<void> { /* nothing activated */ }
}

export class BlockDomainProbe implements DomainProbe {
  private path: string | undefined;
  private ids: string | undefined;
  /** Set by close(): what it dropped. */
  private closed: { ids: boolean } | undefined;

  constructor(private readonly dom: BlockStorageDomain, private readonly log: Logger) {}

  async metadataPath(): Promise<string> {
    // Checking the activation is local and cheap (a link and sysfs, or /dev); activating runs lvs.
    if (this.path && await this.dom.o.driver.isActive(this.dom.vg, 'metadata')) return this.path;
    const path = await this.dom.specialPath('metadata');
    if (this.closed) return this.undoLate('metadata');
    this.path = path;
    return path;
  }

  forgetPath(): void { this.path = undefined; }

  checkHead(bytes: Buffer): undefined {
    if (bytes.length !== READ_CHECK_BYTES) {
      // A block device that reads short has lost its backing (a detached loop device reads 0 bytes): inaccessible, not a read fault.
      this.forgetPath();
      throw new StorageError('storageDomainAccessError', `short read of the metadata LV: ${bytes.length} of ${READ_CHECK_BYTES} bytes`, 'storageDomainAccessError');
    }
    return undefined;
  }

  async refresh(): Promise<DomainSpace> {
    // lvm runs with its own timeout (storage.lvmTimeoutMs); the monitor stops waiting sooner.
    const vg = await this.dom.lvm.vgs(this.dom.vg);
    if (!vg) throw new DomainNotFoundError(this.dom.sdUUID, `its VG is not visible on ${this.dom.o.devices.join(', ')}`);
    return { totalBytes: vg.size, freeBytes: vg.free, version: decodeVgTags(this.dom.sdUUID, vg.tags).version };
  }

  async idsPath(): Promise<string> {
    if (this.ids && await this.dom.o.driver.isActive(this.dom.vg, 'ids')) return this.ids;
    const ids = await this.dom.specialPath('ids');
    if (this.closed?.ids) return this.undoLate('ids');
    this.ids = ids;
    return ids;
  }

  async close(o: { ids: boolean }): Promise<void> {
    this.closed = { ids: o.ids };
    const lvs = [...(this.path ? ['metadata'] : []), ...(o.ids && this.ids ? ['ids'] : [])];
    this.path = undefined;
    if (o.ids) this.ids = undefined;
    if (lvs.length) await this.dom.o.driver.deactivate(this.dom.lvm, this.dom.vg, lvs);
  }

  /**
   * An activation that was still running when the monitor stopped and closed
   * this probe (stuck past every bound, e.g. lvs waiting on the VG lock)
   * finished after close(): drop it as close() would have, so no loop device
   * stays attached for a pool this host has left.
   */
  private async undoLate(lv: 'metadata' | 'ids'): Promise<never> {
    await this.dom.o.driver.deactivate(this.dom.lvm, this.dom.vg, [lv]);
    this.log.info('an activation that finished after the monitor stopped was dropped', { lv });
    throw new StorageError('unavailable', `the monitor of ${this.dom.sdUUID} stopped while its ${lv} LV was being activated; dropped again`);
  }
}

export function domainProbe(dom: FileStorageDomain | BlockStorageDomain, log: Logger): DomainProbe {
  return dom.type === 'file' ? new FileDomainProbe(dom) : new BlockDomainProbe(dom, log);
}
