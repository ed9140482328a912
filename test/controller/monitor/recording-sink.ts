// A HostObservationSink that keeps everything it is given, stamped with when it came, and lets a
// test wait (bounded) for the first observation that fits.
import type { HealthObservation, HostObservationSink, VmObservation } from '../../../controller/monitor/observation-sink.js';

export interface Stamped<T> { o: T; at: number }

export class RecordingSink implements HostObservationSink {
  readonly healths: Stamped<HealthObservation>[] = [];
  readonly vmObs: Stamped<VmObservation>[] = [];
  private waiters: { check: () => boolean }[] = [];

  health(o: HealthObservation): void {
    this.healths.push({ o, at: performance.now() });
    this.wake();
  }

  vms(o: VmObservation): void {
    this.vmObs.push({ o, at: performance.now() });
    this.wake();
  }

  /** The first health observation after `since` (a performance.now() mark) that `pred` accepts. */
  waitHealth(what: string, pred: (o: HealthObservation) => boolean, ms: number, since = -Infinity): Promise<Stamped<HealthObservation>> {
    return this.waitFor(what, () => this.healths.find((x) => x.at >= since && pred(x.o)), ms);
  }

  waitVms(what: string, pred: (o: VmObservation) => boolean, ms: number, since = -Infinity): Promise<Stamped<VmObservation>> {
    return this.waitFor(what, () => this.vmObs.find((x) => x.at >= since && pred(x.o)), ms);
  }

  /** The host statuses in order, without repeats. */
  statuses(hostId: string): string[] {
    const out: string[] = [];
    for (const h of this.healths) if (h.o.host.hostId === hostId && out[out.length - 1] !== h.o.host.status) out.push(h.o.host.status);
    return out;
  }

  private waitFor<T>(what: string, find: () => T | undefined, ms: number): Promise<T> {
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const w = {
        check: (): boolean => {
          const hit = find();
          if (hit === undefined) return false;
          clearTimeout(timer);
          resolve(hit);
          return true;
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`${what}: not within ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => !w.check());
  }
}
