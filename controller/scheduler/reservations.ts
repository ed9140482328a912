// Pending reservations: starts placed and not yet ended. Held in memory, so that placement can
// read them and add one in the same synchronous step (concurrent starts cannot overbook), and
// persisted with their vm.start job (`params.placement`), so that a restarted controller
// rebuilds them from its unfinished jobs before it places anything.
import type { Job } from '../model/jobs.js';
import { release, reserve } from './schedule.js';
import type { PendingReservation, SchedVm } from './sched-types.js';

/** How a reservation is kept in a job's params. */
export interface PersistedPlacement {
  hostId: string;
  memoryMiB: number;
  vcpus: number;
  since: number;
}

export class PendingReservations {
  private pending: PendingReservation[] = [];
  /** the job holding each VM's reservation, once it exists */
  private readonly jobs = new Map<string, string>();

  list(): readonly PendingReservation[] {
    return this.pending;
  }

  get(vmId: string): PendingReservation | undefined {
    return this.pending.find((p) => p.vmId === vmId);
  }

  /** Books the VM's start on the host (synchronously: the next placement already sees it). */
  reserve(vm: SchedVm, hostId: string, now: number): PersistedPlacement {
    this.pending = reserve(this.pending, vm, hostId, now);
    this.jobs.delete(vm.vmId);
    return { hostId, memoryMiB: vm.memoryMiB, vcpus: vm.vcpus, since: now };
  }

  /** The job that now holds the VM's reservation (a later release by another job leaves it). */
  attach(vmId: string, jobId: string): void {
    if (this.get(vmId) !== undefined) this.jobs.set(vmId, jobId);
  }

  /** Drops the VM's reservation; with a jobId, only if that job holds it. */
  release(vmId: string, jobId?: string): void {
    if (jobId !== undefined && this.jobs.has(vmId) && this.jobs.get(vmId) !== jobId) return;
    this.pending = release(this.pending, vmId);
    this.jobs.delete(vmId);
  }

  /** What is booked by pending starts on one host (for tests and the decision log). */
  onHost(hostId: string): { starts: number; memoryMiB: number; vcpus: number } {
    const mine = this.pending.filter((p) => p.hostId === hostId);
    return { starts: mine.length, memoryMiB: mine.reduce((a, p) => a + p.memoryMiB, 0), vcpus: mine.reduce((a, p) => a + p.vcpus, 0) };
  }

  /** Rebuilds the reservations of unfinished vm.start and vm.migrate jobs (after a restart); returns how many. */
  rebuild(unfinished: readonly Job[]): number {
    let n = 0;
    for (const job of unfinished) {
      const p = placementOf(job);
      if ((job.kind !== 'vm.start' && job.kind !== 'vm.migrate') || p === undefined) continue;
      this.pending = [...release(this.pending, job.targetId), { vmId: job.targetId, ...p }];
      this.jobs.set(job.targetId, job.id);
      n++;
    }
    return n;
  }
}

/** The placement a vm.start job carries (from its request, or remembered by a run that placed it). */
export function placementOf(job: Job): PersistedPlacement | undefined {
  const memo = (job.params['memo'] as Record<string, unknown> | undefined)?.['placement'];
  const p = (memo ?? job.params['placement']) as Partial<PersistedPlacement> | undefined | null;
  if (p === undefined || p === null || typeof p.hostId !== 'string' || typeof p.memoryMiB !== 'number' || typeof p.vcpus !== 'number') return undefined;
  return { hostId: p.hostId, memoryMiB: p.memoryMiB, vcpus: p.vcpus, since: typeof p.since === 'number' ? p.since : 0 };
}
