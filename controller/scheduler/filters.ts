// The hard constraints, in the order they are checked. A host is excluded by the first filter
// it fails, and that filter's name and reason are what the REST API's 422 shows for the host.

import type { Booked } from './booked.js';
import type { FilterName, SchedHost, SchedVm } from './sched-types.js';

export interface FilterInput {
  host: SchedHost;
  vm: SchedVm;
  booked: Booked;
  usableMemoryMiB: number;
  hostReservedMemoryMiB: number;
  /** the host a start asked for ({host} in POST /vms/{id}/start), if any */
  requestedHostId: string | null;
}

interface Filter {
  name: FilterName;
  /** null when the host passes; otherwise why not */
  check(i: FilterInput): string | null;
}

export const FILTERS: readonly Filter[] = [
  {
    name: 'cluster',
    check: ({ host, vm }) => host.clusterId === vm.clusterId ? null : `host is in cluster ${host.clusterId}, the VM in ${vm.clusterId}`,
  },
  {
    name: 'hostUp',
    check: ({ host }) => host.status === 'Up' ? null : `host is ${host.status}, not Up`,
  },
  {
    name: 'pool',
    check: ({ host, vm }) => !vm.needsPool || host.poolConnected ? null : 'host is not connected to the storage pool holding the VM\'s disks',
  },
  {
    name: 'pinnedHost',
    check: ({ host, vm, requestedHostId }) => {
      const want = requestedHostId ?? vm.pinnedHostId;
      if (want === null || want === host.hostId) return null;
      return requestedHostId !== null ? `the start asks for host ${want}` : `the VM is pinned to host ${want}`;
    },
  },
  {
    name: 'vcpus',
    check: ({ host, vm }) => vm.vcpus <= host.cpus ? null : `VM needs ${vm.vcpus} vCPUs, host has ${host.cpus} CPUs`,
  },
  {
    name: 'networks',
    check: ({ host, vm }) => {
      const have = new Set(host.networks);
      const missing = vm.requiredNetworks.filter((n) => !have.has(n));
      return missing.length === 0 ? null : `required network${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not up on the host`;
    },
  },
  {
    name: 'memory',
    check: ({ host, vm, booked, usableMemoryMiB, hostReservedMemoryMiB }) => {
      const free = usableMemoryMiB - booked.memoryMiB;
      if (vm.memoryMiB <= free) return null;
      return `VM needs ${vm.memoryMiB} MiB, ${Math.max(0, free)} MiB free after reservations (${host.memTotalMiB} MiB total, `
        + `${hostReservedMemoryMiB} kept for the host, ${booked.memoryMiB - booked.pendingMemoryMiB} booked by ${booked.running} running VM(s), `
        + `${booked.pendingMemoryMiB} by ${booked.pending} pending start(s))`;
    },
  },
];

/** The first filter that excludes the host, or null when it passes them all. */
export function firstExclusion(i: FilterInput): { filter: FilterName; reason: string } | null {
  for (const f of FILTERS) {
    const reason = f.check(i);
    if (reason !== null) return { filter: f.name, reason };
  }
  return null;
}
