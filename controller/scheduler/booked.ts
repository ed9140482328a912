// What is already booked on a host: running VMs and pending starts, each VM counted once
// (a start the agent has just reported is in both lists until the reservation is dropped).

import type { Booking } from './sched-types.js';

export interface Booked {
  memoryMiB: number;
  vcpus: number;
  running: number;
  pending: number;
  pendingMemoryMiB: number;
}

export function bookedOn(hostId: string, running: readonly Booking[], pending: readonly Booking[], exceptVm: string): Booked {
  const seen = new Set<string>([exceptVm]);
  const out: Booked = { memoryMiB: 0, vcpus: 0, running: 0, pending: 0, pendingMemoryMiB: 0 };
  for (const b of running) {
    if (b.hostId !== hostId || seen.has(b.vmId)) continue;
    seen.add(b.vmId);
    out.memoryMiB += b.memoryMiB; out.vcpus += b.vcpus; out.running++;
  }
  for (const b of pending) {
    if (b.hostId !== hostId || seen.has(b.vmId)) continue;
    seen.add(b.vmId);
    out.memoryMiB += b.memoryMiB; out.vcpus += b.vcpus; out.pending++; out.pendingMemoryMiB += b.memoryMiB;
  }
  return out;
}

/** Memory VMs may book on a host: all of it but what the host keeps for itself. */
export function usableMemoryMiB(memTotalMiB: number, hostReservedMemoryMiB: number): number {
  return Math.max(0, memTotalMiB - hostReservedMemoryMiB);
}
