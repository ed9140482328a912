// What the health monitor hands on, and to whom: the store (host records, the audit log), the
// REST API's views and controller/reconcile. Narrow on purpose: the monitor knows nothing of
// where its observations go.
import type { ResultOf } from '../../api/schema.js';
import type { DecisionEvent } from '../decision-event.js';
import type { HostHealth } from '../health/host-status.js';
import type { HostReport, ReportedVm, VmRuntimeStatus } from '../reconcile/vm-record.js';

/** One poll of one host, after nextHostHealth. */
export interface HealthObservation {
  /** the host's record after this poll */
  host: HostHealth;
  /** its transitions (host.status, host.vms-unknown, host.unfit), each with its reason; usually none */
  events: DecisionEvent[];
  /** what Host.getStats answered (CPU, memory, VM counts for the API); null when it did not answer */
  stats: ResultOf<'Host.getStats'> | null;
}

/** How a VM's status on a host changed; null: not listed (never reported, or gone from the agent's list). */
export interface VmChange {
  vmId: string;
  from: VmRuntimeStatus | null;
  to: VmRuntimeStatus | null;
}

export type VmObservationSource =
  /** a Host.getVMList: the agent's whole list */
  | 'list'
  /** a VM_status event applied to the last list */
  | 'event'
  /** the host's status changed (reconcile trusts a list only from a host that answers) */
  | 'host-status'
  /** the host turned NonResponsive: its VMs are Unknown (never Down) */
  | 'host-lost';

/** What is known of one host's VMs, as controller/reconcile takes it. */
export interface VmObservation {
  /** the host's status and its VMs as now known; `at` is when the list under it was taken */
  report: HostReport & { vms: ReadonlyMap<string, ReportedVm> };
  changes: VmChange[];
  source: VmObservationSource;
  /** when this observation was made (ms since the epoch) */
  observedAt: number;
}

/**
 * Called synchronously, in the order things were observed. A sink that persists queues its own
 * writes; what it throws is logged and does not stop the monitor.
 */
export interface HostObservationSink {
  health(o: HealthObservation): void;
  vms(o: VmObservation): void;
}
