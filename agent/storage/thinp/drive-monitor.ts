// The drive monitor: keeps every writable qcow2 on block storage ahead of its
// guest's writes. A libvirt block-threshold event, or an ENOSPC pause, starts
// an extension at once; a poll every few seconds is the fallback. The
// extension itself (a request to the SPM, then a refresh here) is injected.
import type { Logger } from '../../log.js';
import { PhaseTimer } from '../../log.js';
import { toNumber, type Connection, type Domain } from '../../libvirt/index.js';
import { improbableAllocation, needsExtension, nextSizeMiB, thresholdFor, type ThinpPolicy } from './sizing.js';

export interface ChunkedDrive {
  vmId: string;
  /** Target as libvirt names it, e.g. "vda". */
  target: string;
  domainId: string;
  volumeId: string;
}

type DriveState = 'unset' | 'set' | 'exceeded' | 'extending' | 'disabled';

interface Tracked extends ChunkedDrive {
  state: DriveState;
  lastExtendStart: number;
  extensions: number;
}

export interface DriveMonitorOptions {
  getConnection: () => Connection;
  policy: ThinpPolicy;
  /**
   * Asks the SPM to extend the volume to sizeMiB and waits for its answer (through the mailbox).
   * The answer's request id (and the SPM that served it) go into the "drive extended" record,
   * so each extension can be matched to the SPM's "extend request served".
   */
  requestExtend: (drive: ChunkedDrive, sizeMiB: number) => Promise<ExtendAnswer | void>;
  /** Makes this host see the new size (lvchange --refresh / losetup -c); returns the new size in bytes. */
  refresh: (drive: ChunkedDrive) => Promise<number>;
  /**
   * Between the SPM's answer and the local refresh: a VM migrating out has its destination refresh
   * the volume first (throws when the destination still sees less: the extension is retried).
   * Resolves to the destination's size, or undefined when the VM is not migrating.
   */
  refreshElsewhere?: (drive: ChunkedDrive, sizeMiB: number) => Promise<number | undefined>;
  /** Resumes a VM paused on ENOSPC (through the VM layer, so its status follows). */
  resumeIfEnospc: (vmId: string) => Promise<void>;
  pollMs: number;
  /** An extension that did not finish in this long may be tried again. */
  retryAfterMs: number;
  log: Logger;
}

/** What the SPM's reply says about the request (the mailbox's request id, as both hosts log it). */
export interface ExtendAnswer {
  requestId: string;
  spmHostId?: number;
}

export interface ExtensionRecord {
  vmId: string; target: string; fromMiB: number; toMiB: number; phasesMs: Record<string, number>; totalMs: number; trigger: string;
  requestId?: string; spmHostId?: number;
}

/** Extending or at its maximum: nothing for a check to do. */
const busy = (d: Tracked): boolean => d.state === 'extending' || d.state === 'disabled';

export class DriveMonitor {
  private readonly drives = new Map<string, Tracked>();
  /** "vmId/vda[N]": backing layers another watcher owns (a live merge's base); their threshold events are not a drive's. */
  private readonly claimed = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  readonly history: ExtensionRecord[] = [];

  constructor(private readonly o: DriveMonitorOptions) {}

  private key(vmId: string, target: string): string { return `${vmId}/${target}`; }

  add(d: ChunkedDrive): void {
    this.drives.set(this.key(d.vmId, d.target), { ...d, state: 'unset', lastExtendStart: 0, extensions: 0 });
    void this.check(this.key(d.vmId, d.target), 'added');
  }

  /** Stops watching one drive: a live snapshot moves it to a new leaf (add() it again then); a live merge may leave a raw base. */
  remove(vmId: string, target: string): void {
    this.drives.delete(this.key(vmId, target));
  }

  removeVm(vmId: string): void {
    for (const [k, d] of this.drives) if (d.vmId === vmId) this.drives.delete(k);
  }

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.o.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A backing layer ("vda[N]") whose threshold someone else set: its events are left to them. */
  claimLayer(vmId: string, dev: string): void {
    this.claimed.add(this.key(vmId, dev));
  }

  releaseLayer(vmId: string, dev: string): void {
    this.claimed.delete(this.key(vmId, dev));
  }

  /**
   * libvirt's block-threshold event: the guest wrote past the threshold.
   * libvirt may name the active layer by its index too ("vda[3]"), so an
   * indexed name is the drive's, unless a live merge claimed that layer.
   */
  onThreshold(vmId: string, dev: string): void {
    if (this.claimed.has(this.key(vmId, dev))) return;
    const target = dev.replace(/\[\d+\]$/, '');
    const d = this.drives.get(this.key(vmId, target));
    this.o.log.debug('block threshold crossed', { vm: vmId, dev, state: d?.state });
    if (!d || d.state === 'extending' || d.state === 'disabled') return;
    d.state = 'exceeded';
    void this.extend(d, 'threshold');
  }

  /** An ENOSPC pause: every chunked drive of the VM is exceeded. */
  onEnospc(vmId: string): void {
    for (const d of this.drives.values()) {
      if (d.vmId !== vmId || d.state === 'extending' || d.state === 'disabled') continue;
      d.state = 'exceeded';
      void this.extend(d, 'enospc');
    }
  }

  private async domain(vmId: string): Promise<Domain> {
    return this.o.getConnection().lookupByUUID(vmId);
  }

  /** The fallback: arms unset thresholds, extends drives that are short of room or whose extension stalled. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await Promise.all([...this.drives.keys()].map((k) => this.check(k, 'poll')));
    } finally {
      this.polling = false;
    }
  }

  private async check(key: string, trigger: string): Promise<void> {
    const d = this.drives.get(key);
    if (!d || busy(d)) return;
    try {
      const dom = await this.domain(d.vmId);
      const info = await dom.blockInfo(d.target);
      const [alloc, phys, cap] = [toNumber(info.allocation), toNumber(info.physical), toNumber(info.capacity)];
      // An event may have started an extension while we read: marking the drive exceeded now
      // would start a second one for the same size, joined to the first request.
      if (busy(d)) return;
      if (improbableAllocation(alloc, phys, cap, this.o.policy)) {
        this.o.log.warn('improbable allocation reported; not acting on it', { vm: d.vmId, target: d.target, allocation: alloc, physical: phys });
        return;
      }
      if (d.state === 'exceeded' && Date.now() - d.lastExtendStart < this.o.retryAfterMs) return;
      if (needsExtension(alloc, phys, this.o.policy) || d.state === 'exceeded') {
        d.state = 'exceeded';
        await this.extend(d, trigger);
      } else if (d.state === 'unset') {
        await dom.setBlockThreshold(d.target, thresholdFor(phys, this.o.policy));
        d.state = 'set';
        this.o.log.debug('block threshold armed', { vm: d.vmId, target: d.target, threshold: thresholdFor(phys, this.o.policy), allocation: alloc, physical: phys, trigger });
      }
    } catch (e) {
      this.o.log.debug('drive check failed', { vm: d.vmId, target: d.target, err: e });
    }
  }

  private async extend(d: Tracked, trigger: string): Promise<void> {
    if (d.state === 'extending') return;
    d.state = 'extending';
    d.lastExtendStart = Date.now();
    const timer = new PhaseTimer();
    const log = this.o.log.child({ vm: d.vmId, target: d.target, volume: d.volumeId });
    try {
      const dom = await this.domain(d.vmId);
      const info = await dom.blockInfo(d.target);
      const [phys, cap] = [toNumber(info.physical), toNumber(info.capacity)];
      const size = nextSizeMiB(phys, cap, this.o.policy);
      timer.mark('wait');
      if (size === undefined) {
        d.state = 'disabled';
        log.info('drive at its maximum size; no more extensions', { physical: phys, capacity: cap });
        await this.o.resumeIfEnospc(d.vmId);
        return;
      }
      const answer = await this.o.requestExtend(d, size);
      timer.mark('request');
      const elsewhere = await this.o.refreshElsewhere?.(d, size);
      if (elsewhere !== undefined) timer.mark('destination');
      const now = await this.o.refresh(d);
      timer.mark('refresh');
      if (now < size * 1024 * 1024) throw new Error(`volume is ${now} bytes after refresh, expected ${size} MiB`);
      // Migrating out: libvirt takes no threshold change during the migration job (the call would wait
      // for its job lock); the poll's size check watches the drive until the destination's monitor has it.
      if (elsewhere === undefined) await dom.setBlockThreshold(d.target, thresholdFor(now, this.o.policy));
      d.state = 'set';
      d.extensions++;
      timer.mark('rearm');
      await this.o.resumeIfEnospc(d.vmId);
      timer.mark('resume');
      const served = answer ? { requestId: answer.requestId, ...(answer.spmHostId !== undefined ? { spmHostId: answer.spmHostId } : {}) } : {};
      const rec: ExtensionRecord = { vmId: d.vmId, target: d.target, fromMiB: Math.round(phys / 1048576), toMiB: size, trigger, ...served, ...timer.fields() } as ExtensionRecord;
      this.history.push(rec);
      if (this.history.length > 1000) this.history.shift();
      log.info('drive extended', { fromMiB: rec.fromMiB, toMiB: size, trigger, ...served, ...(elsewhere !== undefined ? { destinationBytes: elsewhere } : {}), ...timer.fields() });
      // Writes may already have passed the new threshold: look again at once.
      void this.check(this.key(d.vmId, d.target), 'after-extend');
    } catch (e) {
      d.state = 'exceeded'; // the poll retries after retryAfterMs
      log.warn('drive extension failed; will retry', { err: e, trigger, ...timer.fields() });
    }
  }
}
