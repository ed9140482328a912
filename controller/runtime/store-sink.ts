// The health monitor's observations, persisted: each host's status, reasons, last contact and
// stats go to its row, each transition to the audit log. Writes are chained in the order they
// were observed, so a slow database never reorders a host's history. Other parts (VM
// reconcile, SPM, fitness) listen to the same observations through `listen`.
import type { Store } from '../store/store.js';
import type { HostHealth } from '../health/host-status.js';
import type { HealthObservation, HostObservationSink, VmObservation } from '../monitor/observation-sink.js';
import { errorFields, noLog, type LogFn } from '../agents/log-fn.js';
import type { Host, HostStats } from '../model/hosts.js';
import { recordDecisionEvent } from './record-event.js';

export interface ObservationListener {
  health?(o: HealthObservation): void | Promise<void>;
  vms?(o: VmObservation): void | Promise<void>;
}

export class StoreSink implements HostObservationSink {
  private chain: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<ObservationListener>();
  /** the last observation of each host, for parts that ask rather than listen */
  readonly latest = new Map<string, HealthObservation>();
  readonly latestVms = new Map<string, VmObservation>();

  constructor(private readonly store: Store, private readonly log: LogFn = noLog) {}

  listen(l: ObservationListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  health(o: HealthObservation): void {
    this.latest.set(o.host.hostId, o);
    this.enqueue('host health', async () => {
      const h = o.host;
      if (!await this.store.hosts.find(h.hostId)) return; // deleted meanwhile
      await this.store.hosts.setStatus(h.hostId, h.status, h.reasons.map((r) => r.message));
      if (o.stats) await this.store.hosts.recordContact(h.hostId, h.lastContactAt ?? Date.now(), statsOf(o.stats));
      for (const e of o.events) await recordDecisionEvent(this.store, { ...e, host: e.host ?? h.hostId });
      for (const l of this.listeners) await l.health?.(o);
    });
  }

  vms(o: VmObservation): void {
    this.latestVms.set(o.report.hostId, o);
    this.enqueue('host VMs', async () => {
      for (const l of this.listeners) await l.vms?.(o);
    });
  }

  /** Resolves once everything observed so far is written. */
  flushed(): Promise<void> {
    return this.chain;
  }

  private enqueue(what: string, fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((e: unknown) => this.log('error', `could not record an observation (${what})`, errorFields(e)));
  }
}

function statsOf(s: NonNullable<HealthObservation['stats']>): HostStats {
  return {
    cpuUsedPercent: Math.round((s.cpuUser + s.cpuSys) * 10) / 10,
    memTotalMiB: s.memTotal,
    memUsedMiB: Math.max(0, s.memTotal - s.memAvailable),
    memAvailableMiB: s.memAvailable,
    vmCount: s.vmCount,
  };
}

/**
 * A host's health record from its row: what a restarted controller starts from (never "down").
 * MaintenanceFailed keeps the reasons its row holds (one per VM that could not be moved): nothing
 * recomputes them, and an admin deciding what to do about the host needs them until cancel. A
 * NonOperational host's reasons are not taken over: its next poll's fitness says them afresh.
 */
export function hostHealthFromStore(h: Host, now: number): HostHealth {
  const reasons: HostHealth['reasons'] = h.status === 'MaintenanceFailed' ? h.reasons.map((message) => ({ code: 'vmNotMigrated', message })) : [];
  return {
    hostId: h.id, status: h.status, statusSince: now, reasons, failedPolls: 0, lastContactAt: h.lastContact,
    vmCount: 0, storageUnreachableSince: null, lastError: null,
  };
}
