// Clusters for the balancers' table tests: hosts, utilisation series on a fixed clock, VMs, and
// the input a balancer is given, with oVirt's default parameters unless a case says otherwise.
import { defaultDecisionSettings } from '../../../controller/decision-settings.js';
import type { BalanceHost, BalanceInput, BalanceParams, BalanceVm } from '../../../controller/balancing/balance-types.js';
import type { UtilSample } from '../../../controller/balancing/history.js';
import type { Policy } from '../../../controller/model/clusters.js';
import type { HostStatus } from '../../../controller/health/host-status.js';
import type { Booking } from '../../../controller/scheduler/sched-types.js';

export const NOW = 1_800_000_000_000;
export const POLL = 3_000;
export const CLUSTER = 'c1';

export function host(hostId: string, o: { status?: HostStatus; cpus?: number; memMiB?: number; spm?: boolean; networks?: string[] } = {}): BalanceHost {
  return {
    sched: { hostId, clusterId: CLUSTER, status: o.status ?? 'Up', poolConnected: true, memTotalMiB: o.memMiB ?? 16_384, cpus: o.cpus ?? 4, networks: o.networks ?? [] },
    spm: o.spm ?? false,
  };
}

/** A sample every POLL ms over the last `forMs` (newest at NOW - lagMs), CPU from `cpu(msAgo)`. */
export function series(cpu: number | ((msAgo: number) => number), forMs: number, o: { memFreeMiB?: number; lagMs?: number; gapAt?: [number, number] } = {}): UtilSample[] {
  const out: UtilSample[] = [];
  const lag = o.lagMs ?? 0;
  for (let ago = forMs; ago >= lag; ago -= POLL) {
    if (o.gapAt && ago <= o.gapAt[0] && ago > o.gapAt[1]) continue;
    out.push({ at: NOW - ago, cpuPct: typeof cpu === 'number' ? cpu : cpu(ago), memTotalMiB: 16_384, memFreeMiB: o.memFreeMiB ?? 12_000 });
  }
  return out;
}

export function vm(vmId: string, hostId: string, o: { memMiB?: number; vcpus?: number; pinned?: boolean; priority?: number; status?: string; migrating?: boolean; networks?: string[] } = {}): BalanceVm {
  return {
    vm: { vmId, clusterId: CLUSTER, memoryMiB: o.memMiB ?? 1_024, vcpus: o.vcpus ?? 1, requiredNetworks: o.networks ?? [], pinnedHostId: o.pinned ? hostId : null, needsPool: false },
    hostId, status: o.status ?? 'Up', priority: o.priority ?? 50, migrating: o.migrating ?? false,
  };
}

/** n VMs named `${prefix}1..n` on the host. */
export function vms(prefix: string, hostId: string, n: number, o: Parameters<typeof vm>[2] = {}): BalanceVm[] {
  return Array.from({ length: n }, (_, i) => vm(`${prefix}${i + 1}`, hostId, o));
}

export const DEFAULT_PARAMS: BalanceParams = {
  highUtilizationPct: 80, lowUtilizationPct: 20, overCommitDurationMs: 120_000,
  maxFreeMemoryForOverUtilizedMiB: null, minFreeMemoryForUnderUtilizedMiB: null,
  highVmCount: 10, migrationThreshold: 5, spmVmGrace: 5, sampleGapMs: 10_000,
};

export function input(o: {
  policy: Policy; hosts: BalanceHost[]; history: Record<string, UtilSample[]>; vms?: BalanceVm[];
  params?: Partial<BalanceParams>; policyMaintained?: string[]; pending?: Booking[];
}): BalanceInput {
  const list = o.vms ?? [];
  const running: Booking[] = list.filter((v) => v.status !== 'Down').map((v) => ({ vmId: v.vm.vmId, hostId: v.hostId, memoryMiB: v.vm.memoryMiB, vcpus: v.vm.vcpus }));
  return {
    clusterId: CLUSTER, policy: o.policy,
    schedPolicy: { name: o.policy === 'power_saving' ? 'power_saving' : 'evenly_distributed', highUtilizationPct: 80 },
    hosts: o.hosts, history: new Map(Object.entries(o.history)), vms: list, running, pending: o.pending ?? [],
    params: { ...DEFAULT_PARAMS, ...o.params }, settings: defaultDecisionSettings(),
    policyMaintained: new Set(o.policyMaintained ?? []), now: NOW,
  };
}

/** The decision as a short string a table can name: "migrate v1 A->B", "maintenance A", "activate C" or "none". */
export function summary(d: import('../../../controller/balancing/balance-types.js').BalanceDecision | null): string {
  if (d === null) return 'none';
  return d.kind === 'migrate' ? `migrate ${d.vmId} ${d.fromHostId}->${d.toHostId}` : `${d.kind} ${d.hostId}`;
}
