// Host maintenance, decided by pure functions of what is observed and the clock:
//   maintenanceBlockers: why a request must be refused up front (409, each named): a VM pinned to
//     the host, the SPM with running tasks, a VM no other Up host has room for (the scheduler's
//     filters over the other hosts, each placement booked before the next, as the moves would be).
//   nextMaintenanceStep: what the maintenance job does next while the host is
//     PreparingForMaintenance: wait for the SPM role to move first, then migrate the VMs in
//     priority order, at most maintenanceParallelMigrations at once, each tried at most
//     maintenanceMigrationAttempts times; when only VMs that used up their tries are left, the host
//     goes MaintenanceFailed with the reason per VM (oVirt would retry forever).
import type { DecisionSettings } from '../decision-settings.js';
import type { HostStatus, UnfitReason } from '../health/host-status.js';
import { reserve, schedule } from '../scheduler/schedule.js';
import type { Booking, ClusterPolicy, PendingReservation, SchedHost, SchedVm } from '../scheduler/sched-types.js';

export interface MaintenanceBlocker {
  code: 'pinnedVm' | 'spmTasks' | 'noRoom';
  message: string;
  vmId?: string;
}

export interface BlockerInput {
  hostId: string;
  /** the VMs running on the host (not Down), with what placement needs */
  vms: ReadonlyArray<{ name: string; pinnedHostId: string | null; sched: SchedVm }>;
  isSpm: boolean;
  /** ids of the SPM's tasks not finished (Host.getAllTasksStatuses) */
  spmTasksRunning: readonly string[];
  /** the cluster's hosts as placement sees them, this one included */
  hosts: readonly SchedHost[];
  running: readonly Booking[];
  pending: readonly PendingReservation[];
  policy: ClusterPolicy;
}

export function maintenanceBlockers(i: BlockerInput, s: DecisionSettings): MaintenanceBlocker[] {
  const out: MaintenanceBlocker[] = [];
  for (const v of i.vms) {
    if (v.pinnedHostId === i.hostId) out.push({ code: 'pinnedVm', vmId: v.sched.vmId, message: `VM ${v.name} is pinned to this host` });
  }
  if (i.isSpm && i.spmTasksRunning.length > 0) {
    out.push({ code: 'spmTasks', message: `the host is the SPM with ${i.spmTasksRunning.length} running task(s): ${i.spmTasksRunning.join(', ')}` });
  }
  const others = i.hosts.filter((h) => h.hostId !== i.hostId);
  let pending = [...i.pending];
  for (const v of i.vms) {
    if (v.pinnedHostId === i.hostId) continue;
    const vm = { ...v.sched, pinnedHostId: null };
    const p = schedule({ vm, hosts: others, running: i.running, pending, policy: i.policy, requestedHostId: null }, s);
    if (p.hostId === null) {
      const why = others.length === 0 ? 'no other host in the cluster' : p.excluded.map((e) => `${e.hostId}: ${e.reason}`).join('; ');
      out.push({ code: 'noRoom', vmId: vm.vmId, message: `no other Up host has room for VM ${v.name} (${why})` });
    } else {
      pending = reserve(pending, vm, p.hostId, 0);
    }
  }
  return out;
}

/** One VM still on the host, with what the maintenance job knows of its moves. */
export interface DrainVm {
  vmId: string;
  name: string;
  priority: number;
  /** vm.migrate jobs made for it so far */
  attempts: number;
  /** a vm.migrate job of it is running now */
  moving: boolean;
  /** why its last try failed */
  lastError: string | null;
}

export interface DrainObservation {
  status: HostStatus;
  /** the host still holds the SPM role */
  isSpm: boolean;
  /** when the maintenance began waiting for the SPM role to move (the job's start) */
  since: number;
  /** VMs still on the host */
  vms: readonly DrainVm[];
}

export type DrainStep =
  /** the host left PreparingForMaintenance (cancelled, or already Maintenance) */
  | { kind: 'left'; status: HostStatus }
  | { kind: 'waitSpm'; reason: string }
  | { kind: 'migrate'; vms: DrainVm[] }
  | { kind: 'wait'; reason: string }
  /** every VM is off: the monitor moves the host to Maintenance at its next poll */
  | { kind: 'drained' }
  | { kind: 'fail'; reasons: UnfitReason[] };

export function nextMaintenanceStep(o: DrainObservation, now: number, s: DecisionSettings): DrainStep {
  if (o.status !== 'PreparingForMaintenance') return { kind: 'left', status: o.status };
  if (o.isSpm) {
    if (now - o.since > s.maintenanceSpmHandoverTimeoutMs) {
      return { kind: 'fail', reasons: [{ code: 'vmNotMigrated', message: `the SPM role did not move to another host within ${Math.round(s.maintenanceSpmHandoverTimeoutMs / 1000)} s` }] };
    }
    return { kind: 'waitSpm', reason: 'the SPM role moves to another host first' };
  }
  if (o.vms.length === 0) return { kind: 'drained' };
  const ordered = [...o.vms].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  const moving = ordered.filter((v) => v.moving);
  const retryable = ordered.filter((v) => !v.moving && v.attempts < s.maintenanceMigrationAttempts);
  const slots = s.maintenanceParallelMigrations - moving.length;
  if (retryable.length > 0 && slots > 0) return { kind: 'migrate', vms: retryable.slice(0, slots) };
  if (moving.length > 0 || retryable.length > 0) return { kind: 'wait', reason: `${moving.length} migration(s) under way` };
  return {
    kind: 'fail',
    reasons: ordered.map((v) => ({
      code: 'vmNotMigrated' as const, subject: v.vmId,
      message: `VM ${v.name} could not be migrated after ${v.attempts} tr${v.attempts === 1 ? 'y' : 'ies'}: ${v.lastError ?? 'no reason given'}`,
    })),
  };
}
