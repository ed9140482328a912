import t from 'tap';
import { defaultDecisionSettings } from '../../../controller/decision-settings.js';
import { schedule, chosenHost, reserve, defaultPolicy, NoSuitableHostError } from '../../../controller/scheduler/schedule.js';
import type { Booking, ClusterPolicy, PendingReservation, SchedHost, SchedVm } from '../../../controller/scheduler/sched-types.js';

const S = defaultDecisionSettings(); // hostReservedMemoryMiB 512
const EVEN = defaultPolicy(S);
const PACK: ClusterPolicy = { name: 'power_saving', highUtilizationPct: 80 };

/** A host with room for `vms` VMs of 1 GiB after the host's own reserve. */
function host(hostId: string, vms: number, extra: Partial<SchedHost> = {}): SchedHost {
  return { hostId, clusterId: 'default', status: 'Up', poolConnected: true, memTotalMiB: 512 + vms * 1024, cpus: 8, networks: ['ovirtmgmt'], ...extra };
}
function vm(vmId: string, extra: Partial<SchedVm> = {}): SchedVm {
  return { vmId, clusterId: 'default', memoryMiB: 1024, vcpus: 1, requiredNetworks: [], pinnedHostId: null, needsPool: true, ...extra };
}
const run = (vmId: string, hostId: string, memoryMiB = 1024): Booking => ({ vmId, hostId, memoryMiB, vcpus: 1 });

interface Case {
  name: string;
  vm: SchedVm;
  hosts: SchedHost[];
  running?: Booking[];
  pending?: Booking[];
  policy?: ClusterPolicy;
  requested?: string;
  want: string | null;
  excluded?: Record<string, string>;
}

const cases: Case[] = [
  { name: 'a host that is not Up is excluded by hostUp', vm: vm('v'), hosts: [host('a', 4, { status: 'Connecting' }), host('b', 4)], want: 'b', excluded: { a: 'hostUp' } },
  { name: 'a host of another cluster is excluded by cluster', vm: vm('v'), hosts: [host('a', 4, { clusterId: 'other' }), host('b', 1)], want: 'b', excluded: { a: 'cluster' } },
  { name: 'a host not connected to the pool is excluded by pool', vm: vm('v'), hosts: [host('a', 4, { poolConnected: false }), host('b', 1)], want: 'b', excluded: { a: 'pool' } },
  { name: 'a VM without pool disks may go to a host without the pool', vm: vm('v', { needsPool: false }), hosts: [host('a', 4, { poolConnected: false })], want: 'a' },
  { name: 'a host with fewer CPUs than the VM has vCPUs is excluded by vcpus', vm: vm('v', { vcpus: 16 }), hosts: [host('a', 4), host('b', 4, { cpus: 32 })], want: 'b', excluded: { a: 'vcpus' } },
  { name: 'a host missing a required network is excluded by networks', vm: vm('v', { requiredNetworks: ['storage'] }), hosts: [host('a', 4), host('b', 1, { networks: ['ovirtmgmt', 'storage'] })], want: 'b', excluded: { a: 'networks' } },
  { name: 'a pinned VM goes only to its host', vm: vm('v', { pinnedHostId: 'b' }), hosts: [host('a', 4), host('b', 1)], want: 'b', excluded: { a: 'pinnedHost' } },
  { name: 'a start naming a host goes only there', vm: vm('v'), hosts: [host('a', 4), host('b', 1)], requested: 'b', want: 'b', excluded: { a: 'pinnedHost' } },
  { name: 'running VMs book memory', vm: vm('v'), hosts: [host('a', 2), host('b', 1)], running: [run('r1', 'a'), run('r2', 'a')], want: 'b', excluded: { a: 'memory' } },
  { name: 'pending starts book memory', vm: vm('v'), hosts: [host('a', 2), host('b', 1)], pending: [run('p1', 'a'), run('p2', 'a')], want: 'b', excluded: { a: 'memory' } },
  { name: 'a VM both running and pending is booked once', vm: vm('v'), hosts: [host('a', 2)], running: [run('r1', 'a')], pending: [run('r1', 'a')], want: 'a' },
  { name: "the VM's own older reservation does not count against it", vm: vm('v'), hosts: [host('a', 1)], pending: [run('v', 'a')], want: 'a' },
  { name: 'the first failing filter is the one named', vm: vm('v', { vcpus: 64 }), hosts: [host('a', 0, { status: 'NonResponsive', poolConnected: false })], want: null, excluded: { a: 'hostUp' } },
  { name: 'evenly_distributed picks the least booked host', vm: vm('v'), hosts: [host('a', 8), host('b', 8)], running: [run('r1', 'a'), run('r2', 'a')], want: 'b' },
  { name: 'power_saving packs onto the most booked host', vm: vm('v'), hosts: [host('a', 8), host('b', 8)], running: [run('r1', 'a'), run('r2', 'a')], policy: PACK, want: 'a' },
  { name: 'power_saving does not pack past HighUtilization when another host stays under it', vm: vm('v'), hosts: [host('a', 10), host('b', 10)], running: Array.from({ length: 8 }, (_, i) => run(`r${i}`, 'a')), policy: PACK, want: 'b' },
  { name: 'power_saving still uses a host past HighUtilization when it is the only one that fits', vm: vm('v'), hosts: [host('a', 10), host('b', 0)], running: Array.from({ length: 8 }, (_, i) => run(`r${i}`, 'a')), policy: PACK, want: 'a', excluded: { b: 'memory' } },
  { name: 'equal scores go to the lower host id (reproducible)', vm: vm('v'), hosts: [host('b', 4), host('a', 4)], want: 'a' },
  { name: 'no hosts at all: no choice', vm: vm('v'), hosts: [], want: null },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const p = schedule({ vm: c.vm, hosts: c.hosts, running: c.running ?? [], pending: c.pending ?? [], policy: c.policy ?? EVEN, requestedHostId: c.requested ?? null }, S);
    t.equal(p.hostId, c.want);
    t.same(Object.fromEntries(p.excluded.map((e) => [e.hostId, e.filter])), c.excluded ?? {});
    t.equal(p.scores.length + p.excluded.length, c.hosts.length, 'every host is either scored or excluded with a reason');
    for (const e of p.excluded) t.ok(e.reason.length > 5, `reason: ${e.reason}`);
    t.equal(p.scores[0]?.hostId ?? null, c.want, 'the best score is the choice');
  });
}

t.test('the memory reason gives the figures: need, free, total, host reserve, booked running and pending', async (t) => {
  const p = schedule({ vm: vm('v', { memoryMiB: 2048 }), hosts: [host('a', 3)], running: [run('r1', 'a')], pending: [run('p1', 'a', 512)], policy: EVEN }, S);
  t.same(p.excluded, [{ hostId: 'a', filter: 'memory', reason: 'VM needs 2048 MiB, 1536 MiB free after reservations (3584 MiB total, 512 kept for the host, 1024 booked by 1 running VM(s), 512 by 1 pending start(s))' }]);
});

t.test('scores are reported for the decision log: booked memory and vCPU shares after the VM', async (t) => {
  const p = schedule({ vm: vm('v'), hosts: [host('a', 4), host('b', 4)], running: [run('r', 'a')], pending: [], policy: EVEN }, S);
  t.match(p.scores, [{ hostId: 'b', memoryPct: 25, vcpuPct: 12.5 }, { hostId: 'a', memoryPct: 50, vcpuPct: 25 }]);
  t.ok(p.scores[0]!.score < p.scores[1]!.score);
});

t.test('10 VMs started at once on two hosts with memory for 7: 7 placed, 3 refused naming the memory filter per host, no overbooking', async (t) => {
  const hosts = [host('a', 4), host('b', 3)];
  let pending: PendingReservation[] = [];
  const placed: Record<string, string> = {};
  const refused: NoSuitableHostError[] = [];
  // Each start awaits before it schedules and while "the agent starts it", as the REST handler
  // will; schedule and reserve run in one synchronous step between awaits.
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await Promise.all(Array.from({ length: 10 }, (_, i) => (async () => {
    const v = vm(`vm${i}`);
    await tick((i * 7) % 5);
    const p = schedule({ vm: v, hosts, running: [], pending, policy: EVEN }, S);
    try {
      const hostId = chosenHost(p);
      pending = reserve(pending, v, hostId, i);
      placed[v.vmId] = hostId;
    } catch (e) {
      refused.push(e as NoSuitableHostError);
      return;
    }
    await tick(3);
  })()));
  t.equal(Object.keys(placed).length, 7);
  t.equal(refused.length, 3);
  const onA = Object.values(placed).filter((h) => h === 'a').length;
  t.same([onA, 7 - onA], [4, 3], 'a takes 4 and b 3: exactly their memory');
  for (const e of refused) {
    t.equal(e.code, 1203);
    t.same(e.details.hosts.map((x) => [x.hostId, x.filter]), [['a', 'memory'], ['b', 'memory']]);
    t.match(e.message, /a: memory \(VM needs 1024 MiB, 0 MiB free.*; b: memory/);
  }
  for (const h of hosts) {
    const booked = pending.filter((p) => p.hostId === h.hostId).reduce((n, p) => n + p.memoryMiB, 0);
    t.ok(booked <= h.memTotalMiB - S.hostReservedMemoryMiB, `${h.hostId}: ${booked} MiB booked, never more than it has`);
  }
});

t.test('without the pending reservations the same 10 starts would overbook (what the reservations prevent)', async (t) => {
  const hosts = [host('a', 4), host('b', 3)];
  const picks = Array.from({ length: 10 }, (_, i) => schedule({ vm: vm(`vm${i}`), hosts, running: [], pending: [], policy: EVEN }, S).hostId);
  t.equal(picks.filter((h) => h !== null).length, 10, 'every start sees empty hosts');
});

t.test('evenly_distributed spreads concurrent starts; power_saving fills one host first', async (t) => {
  const hosts = [host('a', 8), host('b', 8)];
  for (const [policy, want] of [[EVEN, 'abababab'], [PACK, 'aaaaaabb']] as const) {
    let pending: PendingReservation[] = [];
    let order = '';
    for (let i = 0; i < 8; i++) {
      const v = vm(`vm${i}`);
      const h = chosenHost(schedule({ vm: v, hosts, running: [], pending, policy }, S));
      pending = reserve(pending, v, h, i);
      order += h;
    }
    t.equal(order, want, policy.name);
  }
});
