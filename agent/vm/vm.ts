// One VM as the agent knows it.
import { OpQueue } from './op-queue.js';
import type { ExitInfo, PauseCodeT, VmStatusT } from './status.js';
import { emptyMetadata, type VmMetadata } from './metadata.js';
import type { VmStatusEventBody } from '../../api/schema.js';

export class Vm {
  status: VmStatusT = 'Unknown';
  statusTime = Date.now();
  pauseCode: PauseCodeT | undefined;
  exit: ExitInfo | undefined;
  ioerror: { alias: string; path: string; reason: string } | undefined;
  meta: VmMetadata = emptyMetadata();
  /** libvirt's runtime domain id while running. */
  domId: number | undefined;
  hasGuestAgent = false;
  /** Set while an orderly shutdown is in progress: STOPPED then means ADMIN_SHUTDOWN. */
  shuttingDown: AbortController | undefined;
  destroying = false;
  /**
   * Its launch by this agent: waiting in the queue (before_vm_start still
   * running, or behind other operations), cancelled by a VM.destroy before it
   * began (so no domain was ever asked for), or begun. Undefined for a VM the
   * agent did not launch (found in libvirt).
   */
  launch: 'waiting' | 'cancelled' | 'begun' | undefined;
  /** The disks the agent launched it with (storage-backed ones resolved to paths). */
  disks: import('../vm/domain-xml.js').DiskSpecT[] = [];
  /**
   * True for a VM found running (after an agent restart) with storage disks
   * known only by their ids from the metadata: not yet prepared on this host
   * again nor watched. The disk recovery clears it.
   */
  storagePending = false;
  readonly queue = new OpQueue();
  private waiters: { want: (s: VmStatusT) => boolean; resolve: () => void }[] = [];

  constructor(readonly id: string, public name: string, readonly external: boolean) {}

  /** Disks from the metadata's storage ids alone (no paths yet): enough to tear their images down. */
  storageFromMetadata(meta: VmMetadata): void {
    this.disks = meta.devices.flatMap((d) => (d.devtype === 'disk' && d.storage ? [{ name: d.name, storage: { ...d.storage } }] : []));
    this.storagePending = this.disks.length > 0;
  }

  /** Changes status; returns true if it changed (so an event is due). */
  setStatus(status: VmStatusT, extra: { pauseCode?: PauseCodeT; exit?: ExitInfo } = {}): boolean {
    const changed = status !== this.status || extra.pauseCode !== this.pauseCode || (extra.exit !== undefined && extra.exit !== this.exit);
    this.status = status;
    this.statusTime = Date.now();
    this.pauseCode = status === 'Paused' ? extra.pauseCode ?? this.pauseCode ?? 'NOERR' : undefined;
    if (status !== 'Paused') this.ioerror = undefined;
    if (extra.exit) this.exit = extra.exit;
    if (status !== 'Down') this.exit = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) (w.want(status) ? w.resolve() : this.waiters.push(w));
    return changed;
  }

  /** Resolves when the status satisfies `want`, or false after timeoutMs / abort. */
  waitFor(want: (s: VmStatusT) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (want(this.status)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = { want, resolve: () => { clearTimeout(t); resolve(true); } };
      const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== w); resolve(false); }, timeoutMs);
      signal?.addEventListener('abort', () => { clearTimeout(t); this.waiters = this.waiters.filter((x) => x !== w); resolve(false); }, { once: true });
      this.waiters.push(w);
    });
  }

  elapsedSec(): number | undefined {
    return this.meta.startTime ? Math.max(0, Math.round((Date.now() - this.meta.startTime) / 1000)) : undefined;
  }

  eventBody(): VmStatusEventBody {
    const b: VmStatusEventBody = { status: this.status };
    if (this.pauseCode) b.pauseCode = this.pauseCode;
    if (this.exit) Object.assign(b, this.exit);
    const e = this.elapsedSec();
    if (e !== undefined && this.status !== 'Down') b.elapsedTime = e;
    if (this.ioerror) b.ioerror = this.ioerror;
    return b;
  }
}
