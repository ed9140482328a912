// A watch over one held sanlock lease: polls inquire() (and inqLockspace())
// on the registration and listens for the notify signal sanlock's killpath
// sends, and reports the first loss it sees (see sanlock.ts for the model).
import type { HeldLease, LeaseRef, Sanlock } from './sanlock.js';
import { isSanlockError, type SanlockError } from './sanlock-errors.js';

export interface LeaseLoss {
  reason: 'released' | 'lver-changed' | 'registration-error' | 'lockspace-failed' | 'lockspace-gone';
  detail: string;
  error?: SanlockError | Error;
}

export interface WatchOptions {
  /** Poll period for inquire (and inqLockspace). Default 2000 ms. */
  intervalMs?: number;
  /** The lver the lease must keep; default: the lver inquire reports on the first poll. */
  lver?: number;
  /** Also poll inqLockspace for this host id and ids area, reporting 'lockspace-gone' when it is 'absent'. */
  lockspace?: { hostId: number; path: string; offset: number };
  /** The signal given as notifySignal to registerProcess: its arrival means 'lockspace-failed'. */
  signal?: NodeJS.Signals;
}

/** A watch over one held lease; `lost` settles once, on the first loss seen. */
export class LeaseWatch {
  readonly lost: Promise<LeaseLoss>;
  private resolveLost!: (l: LeaseLoss) => void;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling = false;
  private expectedLver: number | undefined;
  private readonly onSignal: (() => void) | undefined;

  constructor(private readonly sanlock: Sanlock, private readonly fd: number, private readonly lease: LeaseRef,
    private readonly opts: WatchOptions) {
    this.lost = new Promise((resolve) => { this.resolveLost = resolve; });
    this.expectedLver = opts.lver;
    if (opts.signal) {
      const signal = opts.signal;
      this.onSignal = () => this.report({ reason: 'lockspace-failed', detail: `sanlock sent ${signal}: lockspace ${lease.lockspace} failed or is being removed` });
      process.on(signal, this.onSignal);
    }
    this.timer = setInterval(() => void this.poll(), opts.intervalMs ?? 2000);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.opts.signal && this.onSignal) process.off(this.opts.signal, this.onSignal);
  }

  /** One poll now (also run every intervalMs). Resolves to the loss it found, if any. */
  async poll(): Promise<LeaseLoss | undefined> {
    if (this.stopped || this.polling) return undefined;
    this.polling = true;
    try {
      let held: HeldLease[];
      try {
        held = await this.sanlock.inquire(this.fd);
      } catch (e) {
        // EBUSY: another call (acquire/release) is in progress on the registration; try next time.
        if (isSanlockError(e, 'EBUSY')) return undefined;
        return this.report({ reason: 'registration-error', detail: `inquire failed: ${(e as Error).message}`, error: e as Error });
      }
      const mine = held.find((h) => h.lockspace === this.lease.lockspace && h.resource === this.lease.resource);
      if (!mine) return this.report({ reason: 'released', detail: `${this.lease.lockspace}:${this.lease.resource} is no longer held by fd ${this.fd}` });
      if (this.expectedLver === undefined) this.expectedLver = mine.lver;
      else if (mine.lver !== this.expectedLver) {
        return this.report({ reason: 'lver-changed', detail: `lver ${mine.lver}, expected ${this.expectedLver}` });
      }
      if (this.opts.lockspace) {
        const ls = this.opts.lockspace;
        const st = await this.sanlock.inqLockspace(this.lease.lockspace, ls.hostId, ls.path, ls.offset).catch(() => undefined);
        if (st === 'absent') return this.report({ reason: 'lockspace-gone', detail: `lockspace ${this.lease.lockspace} is not joined` });
      }
      return undefined;
    } finally {
      this.polling = false;
    }
  }

  private report(loss: LeaseLoss): LeaseLoss {
    if (!this.stopped) {
      this.stop();
      this.resolveLost(loss);
    }
    return loss;
  }
}
