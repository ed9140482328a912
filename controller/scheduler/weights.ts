// Scores for the hosts that passed the filters; lower wins (oVirt's convention). Both policies
// weigh booked vCPUs twice and booked memory once (oVirt's CPU/memory weight factors 2 and 1),
// measured after this VM is added, so concurrent starts see each other through the pending
// reservations.
//   evenly_distributed: the least booked host wins: VMs spread out.
//   power_saving: the most booked host wins (packs), but a host whose booked memory would pass
//                 highUtilizationPct loses to any host that stays under it: packing must not
//                 overload. (vCPUs are not held to it: they are shared and commonly overcommitted.)

import type { Booked } from './booked.js';
import type { ClusterPolicy, HostScore, SchedHost, SchedVm } from './sched-types.js';

const CPU_FACTOR = 2;
const MEMORY_FACTOR = 1;
const SCALE = 1000;

export function scoreHost(policy: ClusterPolicy, host: SchedHost, vm: SchedVm, booked: Booked, usableMemoryMiB: number): HostScore {
  const memory = usableMemoryMiB > 0 ? (booked.memoryMiB + vm.memoryMiB) / usableMemoryMiB : 1;
  const vcpu = (booked.vcpus + vm.vcpus) / host.cpus;
  // vCPUs may be overcommitted; cap the share so one term cannot drown the other.
  const load = (CPU_FACTOR * Math.min(vcpu, 2) / 2 + MEMORY_FACTOR * memory) / (CPU_FACTOR + MEMORY_FACTOR);
  let score: number;
  if (policy.name === 'evenly_distributed') {
    score = Math.round(SCALE * load);
  } else {
    const high = policy.highUtilizationPct / 100;
    const overloaded = memory > high;
    score = Math.round(SCALE * (1 - load)) + (overloaded ? SCALE : 0);
  }
  return { hostId: host.hostId, score, memoryPct: round1(memory * 100), vcpuPct: round1(vcpu * 100) };
}

/** Best first; equal scores by host id, so a decision is reproducible. */
export function byScore(a: HostScore, b: HostScore): number {
  return a.score - b.score || (a.hostId < b.hostId ? -1 : a.hostId > b.hostId ? 1 : 0);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
