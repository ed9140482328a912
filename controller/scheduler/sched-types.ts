// What the scheduler sees and answers. Memory and vCPUs are booked by reservation (the VM's
// definition), not by measured use: a host never promises more than it has, whatever its VMs
// happen to use right now.

import type { HostStatus } from '../health/host-status.js';

export interface SchedHost {
  hostId: string;
  clusterId: string;
  status: HostStatus;
  poolConnected: boolean;
  /** physical memory, MiB (Host.getStats memTotal) */
  memTotalMiB: number;
  /** logical CPUs */
  cpus: number;
  /** cluster networks up on the host */
  networks: readonly string[];
}

export interface SchedVm {
  vmId: string;
  clusterId: string;
  /** memory reservation, MiB */
  memoryMiB: number;
  vcpus: number;
  requiredNetworks: readonly string[];
  pinnedHostId: string | null;
  /** the VM has disks on the pool's storage, so its host must be connected to the pool */
  needsPool: boolean;
}

/** A VM that holds resources on a host: running there, or a start placed there and not yet reported. */
export interface Booking {
  vmId: string;
  hostId: string;
  memoryMiB: number;
  vcpus: number;
}

/** A start placed but not yet seen running: counted as booked so concurrent starts cannot overbook. */
export interface PendingReservation extends Booking {
  since: number;
}

export type PolicyName = 'evenly_distributed' | 'power_saving';
export const POLICY_NAMES: readonly PolicyName[] = ['evenly_distributed', 'power_saving'];

export interface ClusterPolicy {
  name: PolicyName;
  /** power_saving packs a host only up to this share of its memory and vCPUs */
  highUtilizationPct: number;
}

export type FilterName = 'cluster' | 'hostUp' | 'pool' | 'pinnedHost' | 'vcpus' | 'networks' | 'memory';

export interface Exclusion {
  hostId: string;
  filter: FilterName;
  reason: string;
}

export interface HostScore {
  hostId: string;
  /** lower is better */
  score: number;
  /** booked memory after this VM, % of what VMs may use */
  memoryPct: number;
  /** booked vCPUs after this VM per logical CPU, % */
  vcpuPct: number;
}

/** One decision, with everything the decision log needs to explain it. */
export interface Placement {
  vmId: string;
  policy: PolicyName;
  /** null when every host was excluded */
  hostId: string | null;
  /** the hosts that passed every filter, best first */
  scores: HostScore[];
  excluded: Exclusion[];
}
