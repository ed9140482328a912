// The store's record of a VM's runtime (what it last learned from the agents) and what each
// host's agent reports. The agents hold the truth about running VMs; the record follows them.

import type { Static } from '@sinclair/typebox';
import type { VmStatus } from '../../api/types.js';
import type { HostStatus } from '../health/host-status.js';

/** VDSM's VM statuses as the agent reports them (the API's VmStatus); Unknown when nobody can tell (never Down then). */
export type VmRuntimeStatus = Static<typeof VmStatus>;

export interface StartInFlight {
  hostId: string;
  /** when the start was decided (persisted before VM.create is sent) */
  since: number;
  /** the agent answered VM.create: the VM exists there (awaiting its first listing) */
  accepted: boolean;
  jobId?: string;
}

export interface VmRecord {
  vmId: string;
  desired: 'running' | 'stopped';
  /** the host the VM was last seen on, null when it runs nowhere known */
  hostId: string | null;
  status: VmRuntimeStatus;
  startInFlight: StartInFlight | null;
  /** the difference last reported as an event: a lasting difference is reported once */
  noted: string | null;
}

export interface ReportedVm {
  status: VmRuntimeStatus;
  exitMessage?: string;
  /** defined outside Hostvisor: reported, never managed */
  external?: boolean;
}

/** One host as the reconciler sees it: its health state and its agent's last VM list. */
export interface HostReport {
  hostId: string;
  status: HostStatus;
  /** the VM list from the last good poll; absent when none since the controller (re)started */
  vms?: ReadonlyMap<string, ReportedVm>;
  /** when that list was taken (ms since the epoch) */
  at?: number;
}

/** The host's VM list is current and complete (a recovering agent's is not). */
export function listTrusted(h: HostReport): h is HostReport & { vms: ReadonlyMap<string, ReportedVm>; at: number } {
  return h.vms !== undefined && h.at !== undefined
    && (h.status === 'Up' || h.status === 'NonOperational' || h.status === 'PreparingForMaintenance' || h.status === 'Maintenance' || h.status === 'MaintenanceFailed');
}

export function newVmRecord(vmId: string): VmRecord {
  return { vmId, desired: 'stopped', hostId: null, status: 'Down', startInFlight: null, noted: null };
}
