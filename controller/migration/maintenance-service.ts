// The REST side of host maintenance: the blockers are gathered and checked up front (409 naming
// each), then the host's state moves at once (PreparingForMaintenance; the SPM loop and the
// placement filters see it from that moment) and the host.maintenance job drains it. Activate and
// cancel move the state back through Initializing (Up at the next good poll).
import type { LogFn } from '../agents/log-fn.js';
import { newCorrelationId } from '../agents/agent-link.js';
import type { DecisionSettings } from '../decision-settings.js';
import { activate, cancelMaintenance, HostStateError, requestMaintenance, type AdminStep } from '../health/maintenance.js';
import type { HostHealth } from '../health/host-status.js';
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import { policyOf, schedVmOf } from '../scheduler/placement-service.js';
import { ConflictError } from '../store/errors.js';
import type { Store } from '../store/store.js';
import type { VmsPart } from '../vms/install.js';
import { maintenanceBlockers, type MaintenanceBlocker } from './maintenance-plan.js';

export interface HostMaintenanceApi {
  /** 409 with the blockers, or when the host's state forbids it; else the host is PreparingForMaintenance. */
  prepare(hostId: string, why: string): Promise<HostHealth>;
  activate(hostId: string, why: string): Promise<HostHealth>;
  cancel(hostId: string, why: string): Promise<HostHealth>;
}

export class HostMaintenance implements HostMaintenanceApi {
  constructor(private readonly o: { runtime: ControllerRuntime; store: Store; settings: DecisionSettings; vms: VmsPart; log: LogFn }) {}

  /** What stands in the way of maintenance now (empty: nothing). */
  async blockers(hostId: string): Promise<MaintenanceBlocker[]> {
    const { runtime, store, settings: s, vms } = this.o;
    await vms.ready;
    const host = await store.hosts.get(hostId);
    const cluster = await store.clusters.get(host.clusterId);
    const defs = await store.vms.list({ clusterId: host.clusterId });
    for (const v of defs) vms.registry.define(v);
    const onHost = defs.filter((v) => {
      const r = vms.registry.record(v.id);
      return r !== undefined && r.hostId === hostId && r.status !== 'Down';
    });
    const isSpm = runtime.hostContext.isSpm(hostId);
    let spmTasksRunning: string[] = [];
    if (isSpm) {
      try {
        const r = await runtime.links.call(hostId, 'Host.getAllTasksStatuses', {}, { timeoutMs: s.agentCallTimeoutMs, correlationId: newCorrelationId('maint') });
        spmTasksRunning = Object.values(r.allTasksStatus).filter((t) => t.taskState !== 'finished').map((t) => t.taskID);
      } catch (e) {
        spmTasksRunning = [`(its tasks could not be read: ${e instanceof Error ? e.message : String(e)})`];
      }
    }
    const hosts = await store.hosts.list({ clusterId: host.clusterId });
    await vms.facts.ensure(hosts.map((h) => h.id));
    return maintenanceBlockers({
      hostId,
      vms: onHost.map((v) => ({ name: v.name, pinnedHostId: v.pinnedHostId, sched: schedVmOf(v) })),
      isSpm, spmTasksRunning,
      hosts: vms.view.schedHosts(hosts), running: vms.view.running(), pending: vms.reservations.list(), policy: policyOf(cluster, s),
    }, s);
  }

  async prepare(hostId: string, why: string): Promise<HostHealth> {
    const blockers = await this.blockers(hostId);
    if (blockers.length > 0) {
      throw new ConflictError(`host ${hostId} cannot enter maintenance: ${blockers.map((b) => b.message).join('; ')}`, { blockers });
    }
    return this.move(hostId, (h, now) => requestMaintenance(h, now, why));
  }

  activate(hostId: string, why: string): Promise<HostHealth> {
    return this.move(hostId, (h, now) => activate(h, now, why));
  }

  cancel(hostId: string, why: string): Promise<HostHealth> {
    return this.move(hostId, (h, now) => cancelMaintenance(h, now, why));
  }

  private async move(hostId: string, step: (h: HostHealth, now: number) => AdminStep): Promise<HostHealth> {
    const host = await this.o.store.hosts.get(hostId);
    try {
      const h = this.o.runtime.monitor.adminMove(hostId, step);
      if (h === undefined) throw new ConflictError(`host ${host.name} is not enrolled: its state is not followed`, { status: host.status });
      this.o.runtime.kick();
      return h;
    } catch (e) {
      if (e instanceof HostStateError) throw new ConflictError(e.message, { status: this.o.runtime.monitor.health(hostId)?.status ?? host.status });
      throw e;
    }
  }
}
