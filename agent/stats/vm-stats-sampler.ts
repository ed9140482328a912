// Periodic VM statistics: ONE bulk virConnectGetAllDomainStats call per
// interval for every running or paused domain (never a call per VM), the last
// two samples kept per domain, and stats/rates computed from them on demand.
import { domainStatsFlags, LibvirtUnavailableError, type Connection, type DomainStatsQuery } from '../libvirt/index.js';
import type { Logger } from '../log.js';
import { advanceHistory, computeAllStats, computeVmStats, type DomainHistory, type VmSampledStats } from './rates.js';

/** VDSM's vm_sample_interval. */
export const DEFAULT_VM_STATS_INTERVAL_MS = 15_000;

/**
 * One sample: these stats groups of the running and paused domains; nowait so
 * that a domain busy with a job (e.g. a migration) answers what it can at once
 * instead of stalling the whole bulk call.
 */
export const VM_STATS_QUERY: DomainStatsQuery = {
  groups: ['state', 'cpu-total', 'balloon', 'vcpu', 'interface', 'block'],
  states: ['running', 'paused'],
  nowait: true,
};

/** The same query as libvirt's stats and flags words (the stats bench makes the bare call with them). */
export const { stats: VM_STATS_GROUPS, flags: VM_STATS_FLAGS } = domainStatsFlags(VM_STATS_QUERY);

export interface VmStatsSamplerOptions {
  /** The current connection; may throw LibvirtUnavailableError during an outage. */
  getConnection: () => Connection;
  /** Default DEFAULT_VM_STATS_INTERVAL_MS. */
  intervalMs?: number;
  log: Logger;
  /** Wall clock in ms; default Date.now. */
  now?: () => number;
}

export class VmStatsSampler {
  readonly intervalMs: number;
  private readonly getConnection: () => Connection;
  private readonly log: Logger;
  private readonly now: () => number;
  private history: ReadonlyMap<string, DomainHistory> = new Map();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private skipped = 0;

  constructor(opts: VmStatsSamplerOptions) {
    const interval = opts.intervalMs ?? DEFAULT_VM_STATS_INTERVAL_MS;
    if (!(interval > 0)) throw new RangeError(`intervalMs must be > 0, not ${interval}`);
    this.intervalMs = interval;
    this.getConnection = opts.getConnection;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
  }

  /** Samples at once, then every intervalMs (never overlapping). Idempotent. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.tick();
  }

  /** Stops the periodic sampling; a sample in flight still completes. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Samples skipped because the one before was still running. */
  get skippedSamples(): number {
    return this.skipped;
  }

  /**
   * Takes one sample (one bulk call). If a sample is in flight, waits for it
   * and then takes a new one, so the result always starts after this call.
   * Rejects on failure (the previous samples are kept).
   */
  sampleNow(): Promise<void> {
    const run = this.inFlight === undefined
      ? this.sampleOnce()
      : this.inFlight.catch(() => {}).then(() => this.sampleOnce());
    const tracked: Promise<void> = run.finally(() => {
      if (this.inFlight === tracked) this.inFlight = undefined;
    });
    tracked.catch(() => {});
    this.inFlight = tracked;
    return run;
  }

  /** Stats of one domain (by uuid) from its last two samples; undefined if it was not in the last sample. */
  stats(uuid: string): VmSampledStats | undefined {
    const h = this.history.get(uuid);
    return h === undefined ? undefined : computeVmStats(h.cur, h.prev);
  }

  /** Stats of every domain of the last sample, keyed by uuid. */
  all(): Map<string, VmSampledStats> {
    return computeAllStats(this.history);
  }

  private tick(): void {
    if (this.inFlight !== undefined) {
      this.skipped++;
      this.log.warn('vm stats sample skipped: the previous one is still running',
        { intervalMs: this.intervalMs, skipped: this.skipped });
      return;
    }
    this.sampleNow().catch((err: unknown) => {
      if (err instanceof LibvirtUnavailableError) this.log.debug('vm stats sample skipped: libvirt unavailable', { err });
      else this.log.warn('vm stats sample failed', { err });
    });
  }

  private async sampleOnce(): Promise<void> {
    const conn = this.getConnection();
    const time = this.now(); // before the call: the counters are at least this recent
    const started = performance.now();
    const batch = await conn.domainStats(VM_STATS_QUERY);
    this.history = advanceHistory(this.history, batch, time);
    this.log.debug('vm stats sampled', { domains: batch.length, ms: Math.round(performance.now() - started) });
  }
}
