// power_saving, table-driven: hosts under LowUtilization (20 %) for the whole duration are emptied
// onto hosts that stay under HighUtilization; an empty one is asked into maintenance (never the
// SPM, never the last Up host); one the policy parked is activated again when the others run
// over; an over-utilized host is relieved first; one decision per cycle.
import t from 'tap';
import { balance } from '../../../controller/balancing/balance.js';
import type { BalanceInput } from '../../../controller/balancing/balance-types.js';
import { host, input, series, summary, vm, vms } from './fixtures.js';

const MIN = 60_000;
const cpu = (pct: number) => series(pct, 3 * MIN);

interface Case { name: string; in: BalanceInput; want: string; event?: string }

const cases: Case[] = [
  { name: 'a host under 20 % for the duration gives a VM to a host that stays under 80 %',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B')], history: { A: cpu(10), B: cpu(50) }, vms: [...vms('a', 'A', 2), ...vms('b', 'B', 3)] }),
    want: 'migrate a1 A->B', event: 'balancing.migrate' },
  { name: 'under 20 % for only 60 s: nothing',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B')], history: { A: [...series(40, 3 * MIN, { lagMs: 63_000 }), ...series(10, 60_000)], B: cpu(50) }, vms: vms('a', 'A', 2) }),
    want: 'none' },
  { name: 'an empty host under 20 % for the duration is asked into maintenance',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B')], history: { A: cpu(3), B: cpu(50) }, vms: vms('b', 'B', 3) }),
    want: 'maintenance A', event: 'balancing.maintenance' },
  { name: 'an empty host that is the SPM stays Up',
    in: input({ policy: 'power_saving', hosts: [host('A', { spm: true }), host('B')], history: { A: cpu(3), B: cpu(50) }, vms: vms('b', 'B', 3) }),
    want: 'none' },
  { name: 'an empty host with a pending start is not empty',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B')], history: { A: cpu(3), B: cpu(50) }, vms: vms('b', 'B', 3),
      pending: [{ vmId: 'new', hostId: 'A', memoryMiB: 512, vcpus: 1 }] }),
    want: 'none' },
  { name: 'the last Up host is never put into maintenance',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B', { status: 'Maintenance' })], history: { A: cpu(3), B: cpu(0) } }),
    want: 'none' },
  { name: 'an overloaded host is relieved first (onto the idle host, which then is not parked)',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B')], history: { A: cpu(3), B: cpu(92) }, vms: vms('b', 'B', 3) }),
    want: 'migrate b1 B->A' },
  { name: 'an overloaded host nobody can relieve: no host is parked or emptied meanwhile',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B'), host('C')], history: { A: cpu(3), B: cpu(92), C: cpu(10) },
      vms: [...vms('b', 'B', 2, { pinned: true }), ...vms('c', 'C', 1)] }),
    want: 'none', event: 'balancing.no-move' },
  { name: 'the others run over and none is under 64 %: a host the policy parked is activated',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B'), host('C', { status: 'Maintenance' })], history: { A: cpu(90), B: cpu(85) },
      vms: [...vms('a', 'A', 3), ...vms('b', 'B', 3)], policyMaintained: ['C'] }),
    want: 'activate C', event: 'balancing.activate' },
  { name: 'a host an admin put into maintenance is not activated by the policy',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B'), host('C', { status: 'Maintenance' })], history: { A: cpu(90), B: cpu(85) },
      vms: [...vms('a', 'A', 3), ...vms('b', 'B', 3)] }),
    want: 'none', event: 'balancing.no-move' },
  { name: 'over for less than the duration: the parked host stays parked',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B'), host('C', { status: 'Maintenance' })],
      history: { A: [...series(50, 3 * MIN, { lagMs: 63_000 }), ...series(90, 60_000)], B: cpu(70) }, vms: vms('a', 'A', 3), policyMaintained: ['C'] }),
    want: 'none' },
  { name: 'one host over but another under 64 %: relieve onto it rather than activate',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B'), host('C', { status: 'Maintenance' })], history: { A: cpu(90), B: cpu(40) },
      vms: [...vms('a', 'A', 3), ...vms('b', 'B', 3)], policyMaintained: ['C'] }),
    want: 'migrate a1 A->B' },
  { name: 'a destination that would pass 80 % with the source\'s whole load is skipped (15 % of 4 CPUs on 2 CPUs at 70 %)',
    in: input({ policy: 'power_saving', hosts: [host('A', { cpus: 4 }), host('B', { cpus: 2 }), host('C', { cpus: 4 })], history: { A: cpu(15), B: cpu(70), C: cpu(40) },
      vms: [...vms('a', 'A', 1), ...vms('b', 'B', 2), ...vms('c', 'C', 2)] }),
    want: 'migrate a1 A->C' },
  { name: 'packs onto the busiest host that stays under 80 %',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B'), host('C')], history: { A: cpu(10), B: cpu(30), C: cpu(60) },
      vms: [...vms('a', 'A', 1), ...vms('b', 'B', 2), ...vms('c', 'C', 2)] }),
    want: 'migrate a1 A->C' },
  { name: 'two under-utilized hosts: the one with fewer VMs is emptied into the other, never the reverse',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B')], history: { A: cpu(15), B: cpu(10) }, vms: [...vms('a', 'A', 3), ...vms('b', 'B', 1)] }),
    want: 'migrate b1 B->A' },
  { name: 'the destination is full (memory filter): the next one',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B', { memMiB: 2_048 }), host('C')], history: { A: cpu(10), B: cpu(60), C: cpu(40) },
      vms: [...vms('a', 'A', 1), ...vms('b', 'B', 1), ...vms('c', 'C', 1)] }),
    want: 'migrate a1 A->C' },
  { name: 'a low host with only pinned VMs is neither emptied nor parked',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B')], history: { A: cpu(5), B: cpu(50) }, vms: [...vms('p', 'A', 2, { pinned: true }), ...vms('b', 'B', 1)] }),
    want: 'none', event: 'balancing.no-move' },
  { name: 'a low host that is not Up takes no part (neither emptied nor parked)',
    in: input({ policy: 'power_saving', hosts: [host('A', { status: 'NonOperational' }), host('B'), host('C')], history: { A: cpu(1), B: cpu(50), C: cpu(50) },
      vms: [...vms('b', 'B', 1), ...vms('c', 'C', 1)] }),
    want: 'none' },
  { name: 'two empty low hosts: one decision only (the first by id is parked)',
    in: input({ policy: 'power_saving', hosts: [host('A'), host('B'), host('C')], history: { A: cpu(1), B: cpu(2), C: cpu(50) }, vms: vms('c', 'C', 2) }),
    want: 'maintenance A' },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = balance(c.in);
    t.equal(summary(r.decision), c.want);
    if (c.event) t.same(r.events.map((e) => e.kind), [c.event], `${c.event}: ${r.events[0]?.reason}`);
    t.ok(r.events.length <= 1, 'one event at most');
  });
}
