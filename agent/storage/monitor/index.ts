// The monitors of a connected pool's domains: one DomainMonitor each, started
// when the pool connects and stopped when it disconnects. Each runs on its
// own schedule, so a domain whose storage hangs never delays the others.
import type { Logger } from '../../log.js';
import type { BlockStorageDomain } from '../block-domain.js';
import type { FileStorageDomain } from '../file-domain.js';
import type { Sanlock } from '../sanlock.js';
import { domainProbe } from './domain-probe.js';
import { DomainMonitor, type MonitorStatus } from './domain-monitor.js';

export type { MonitorStatus } from './domain-monitor.js';

export interface MonitorSettings {
  monitorIntervalMs: number;
  monitorReadTimeoutMs: number;
  monitorRefreshIntervalMs: number;
  sanlockIoTimeoutSec: number;
}

export class DomainMonitors {
  private readonly monitors = new Map<string, DomainMonitor>();

  constructor(private readonly s: MonitorSettings, private readonly sanlock: Sanlock, private readonly log: Logger) {}

  /** Starts monitoring the domain (no-op if already monitored). */
  add(dom: FileStorageDomain | BlockStorageDomain, o: { hostId: number; isMaster: boolean }): void {
    if (this.monitors.has(dom.sdUUID)) return;
    const log = this.log.child({ component: 'domain-monitor', sdUUID: dom.sdUUID });
    const m = new DomainMonitor({
      sdUUID: dom.sdUUID, probe: domainProbe(dom, log), hostId: o.hostId, sanlock: this.sanlock,
      intervalMs: this.s.monitorIntervalMs, readTimeoutMs: this.s.monitorReadTimeoutMs, refreshIntervalMs: this.s.monitorRefreshIntervalMs,
      sanlockIoTimeoutSec: this.s.sanlockIoTimeoutSec, releaseHostId: !o.isMaster, log,
    });
    this.monitors.set(dom.sdUUID, m);
    m.start();
  }

  /** Stops every monitor (in parallel) and forgets them. */
  async stopAll(): Promise<void> {
    const all = [...this.monitors.values()];
    this.monitors.clear();
    await Promise.all(all.map((m) => m.stop()));
  }

  status(sdUUID: string): MonitorStatus | undefined {
    return this.monitors.get(sdUUID)?.status();
  }

  /** Every monitored domain's status, or only those named (unmonitored names are left out, as VDSM does). */
  repoStats(sdUUIDs?: readonly string[]): Record<string, MonitorStatus> {
    const out: Record<string, MonitorStatus> = {};
    for (const [sd, m] of this.monitors) if (!sdUUIDs?.length || sdUUIDs.includes(sd)) out[sd] = m.status();
    return out;
  }
}
