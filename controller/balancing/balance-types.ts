// What a balancer is given and what it answers. A balancer is a pure function of one cluster at
// one moment: its hosts (status, as placement sees them), each host's utilisation history, the
// VMs on them, what is booked, the policy's parameters and the clock. It answers at most one
// decision (oVirt migrates at most one VM per cluster per balancing cycle) and the events that
// explain it.
import type { DecisionEvent } from '../decision-event.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { Cluster, Policy } from '../model/clusters.js';
import type { Booking, ClusterPolicy, SchedHost, SchedVm } from '../scheduler/sched-types.js';
import type { UtilSample } from './history.js';

export interface BalanceParams {
  /** CPU % over which a host is over-utilized (HighUtilization) */
  highUtilizationPct: number;
  /** CPU % under which a host is under-utilized (LowUtilization, power_saving) */
  lowUtilizationPct: number;
  /** how long a host must be over (or under) before it is acted on (CpuOverCommitDuration) */
  overCommitDurationMs: number;
  /** a host with less free memory than this for the whole duration is over-utilized; null: memory is not balanced */
  maxFreeMemoryForOverUtilizedMiB: number | null;
  /** a destination must keep more free memory than this; null: not checked */
  minFreeMemoryForUnderUtilizedMiB: number | null;
  /** vm_evenly_distributed: a host with fewer VMs is never a source */
  highVmCount: number;
  /** vm_evenly_distributed: the VM-count difference a move needs */
  migrationThreshold: number;
  /** vm_evenly_distributed: the SPM counts as this many extra VMs */
  spmVmGrace: number;
  /** two samples further apart than this break a run; a newest sample older than this is no news */
  sampleGapMs: number;
}

export interface BalanceHost {
  sched: SchedHost;
  spm: boolean;
}

export interface BalanceVm {
  vm: SchedVm;
  hostId: string;
  /** as the agent reports it: only an Up VM is moved */
  status: string;
  /** 0..100; lower-priority VMs are moved first */
  priority: number;
  /** a migration of it is under way (a vm.migrate job, or the agent reports it migrating) */
  migrating: boolean;
}

export interface BalanceInput {
  clusterId: string;
  policy: Policy;
  /** the scheduler's view of the policy (for its weights; the filters are the same for all) */
  schedPolicy: ClusterPolicy;
  hosts: readonly BalanceHost[];
  history: ReadonlyMap<string, readonly UtilSample[]>;
  vms: readonly BalanceVm[];
  /** what the scheduler counts as booked on each host */
  running: readonly Booking[];
  pending: readonly Booking[];
  params: BalanceParams;
  settings: DecisionSettings;
  /** hosts that power_saving put into maintenance, and so may activate again */
  policyMaintained: ReadonlySet<string>;
  now: number;
}

export type BalanceDecision =
  | { kind: 'migrate'; vmId: string; fromHostId: string; toHostId: string; reason: string }
  | { kind: 'maintenance'; hostId: string; reason: string }
  | { kind: 'activate'; hostId: string; reason: string };

export interface BalanceResult {
  decision: BalanceDecision | null;
  /** why the decision was made, or why a host that needs relief got none */
  events: DecisionEvent[];
}

export const NOTHING: BalanceResult = Object.freeze({ decision: null, events: [] }) as BalanceResult;

/** The cluster's thresholds, each absent one taken from the settings (oVirt's global fallbacks). */
export function paramsOf(cluster: Pick<Cluster, 'thresholds'>, s: DecisionSettings): BalanceParams {
  const t = cluster.thresholds;
  return {
    highUtilizationPct: t.highUtilization ?? s.highUtilizationPct,
    lowUtilizationPct: t.lowUtilization ?? s.lowUtilizationPct,
    overCommitDurationMs: t.cpuOverCommitDurationMinutes !== undefined ? t.cpuOverCommitDurationMinutes * 60_000 : s.balancingOverCommitDurationMs,
    maxFreeMemoryForOverUtilizedMiB: t.maxFreeMemoryForOverUtilizedMiB ?? null,
    minFreeMemoryForUnderUtilizedMiB: t.minFreeMemoryForUnderUtilizedMiB ?? null,
    highVmCount: t.highVmCount ?? s.balancingHighVmCount,
    migrationThreshold: t.migrationThreshold ?? s.balancingMigrationThreshold,
    spmVmGrace: t.spmVmGrace ?? s.balancingSpmVmGrace,
    sampleGapMs: s.balancingSampleGapMs,
  };
}
