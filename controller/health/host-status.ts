// A host's health as the controller records it, and the names of its states. The states are
// oVirt's (VDSStatus) minus those for installing over SSH and power management, which
// Hostvisor does not do: enrollment replaces the first, the sanlock lease the second.

export const HOST_STATUSES = [
  'Installing',              // enrolled; first contact pending
  'Initializing',            // the agent answers 99 (recovering after a restart), or was just activated
  'Up',
  'Connecting',              // polls fail, still within the grace
  'NonResponsive',           // polls failed past the grace: its VMs are Unknown
  'NonOperational',          // reachable but unfit (see reasons)
  'PreparingForMaintenance',
  'Maintenance',
  'MaintenanceFailed',       // a VM could not be moved off after the bounded tries (reasons per VM); cancel returns it to Up
] as const;
export type HostStatus = typeof HOST_STATUSES[number];

/** Why a reachable host is unfit; `code` is for programs, `message` for people. */
export interface UnfitReason {
  code: 'requiredNetworkMissing' | 'poolStorageUnreachable' | 'recoveryTimeout' | 'vmNotMigrated';
  message: string;
  /** the network or storage domain concerned, when there is one */
  subject?: string;
}

/** The controller's record of one host's health: the input and output of nextHostHealth. */
export interface HostHealth {
  hostId: string;
  status: HostStatus;
  /** when the host entered its status (ms since the epoch) */
  statusSince: number;
  /** non-empty when NonOperational, and when MaintenanceFailed (one per VM that could not be moved) */
  reasons: UnfitReason[];
  /** consecutive failed polls (reset by any answer, even 99) */
  failedPolls: number;
  /** the last time the agent answered at all; null before the first contact */
  lastContactAt: number | null;
  /** VMs the host reported at its last good poll: part of its grace */
  vmCount: number;
  /** since when some pool domain has been unreachable from it; null when all are reachable */
  storageUnreachableSince: number | null;
  /** the last poll error, for the API (why it is Connecting) */
  lastError: string | null;
}

/** A host just enrolled: Installing until the first poll answers. */
export function enrolledHost(hostId: string, now: number): HostHealth {
  return {
    hostId, status: 'Installing', statusSince: now, reasons: [], failedPolls: 0, lastContactAt: null,
    vmCount: 0, storageUnreachableSince: null, lastError: null,
  };
}

/** States in which the agent answered its last poll: what it reports (VMs, networks, SPM role) is current. */
export function agentAnswering(status: HostStatus): boolean {
  return status === 'Up' || status === 'NonOperational' || status === 'PreparingForMaintenance'
    || status === 'Maintenance' || status === 'MaintenanceFailed' || status === 'Initializing';
}
