// vm_evenly_distributed, table-driven: by VM count. The host with the most VMs gives one when it
// runs at least HighVmCount and MigrationThreshold more than the destination (the SPM counting
// SpmVmGrace extra); the destination has the fewest VMs and is not over HighUtilization on
// average; pinned VMs are skipped; hosts not Up take no part.
import t from 'tap';
import { balance } from '../../../controller/balancing/balance.js';
import type { BalanceInput } from '../../../controller/balancing/balance-types.js';
import { host, input, series, summary, vm, vms } from './fixtures.js';

const MIN = 60_000;
const cpu = (pct: number) => series(pct, 3 * MIN);
const quiet = { A: cpu(30), B: cpu(30), C: cpu(30) };
const ab = [host('A'), host('B')];

interface Case { name: string; in: BalanceInput; want: string }

const cases: Case[] = [
  { name: '12 VMs against 2 (threshold 5, HighVmCount 10): one moves to the emptier host',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: quiet, vms: [...vms('a', 'A', 12), ...vms('b', 'B', 2)] }), want: 'migrate a1 A->B' },
  { name: 'under HighVmCount (9 against 0): nothing',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: quiet, vms: vms('a', 'A', 9) }), want: 'none' },
  { name: 'a difference under the threshold (12 against 8): nothing',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: quiet, vms: [...vms('a', 'A', 12), ...vms('b', 'B', 8)] }), want: 'none' },
  { name: 'a difference of exactly the threshold (12 against 7): one moves',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: quiet, vms: [...vms('a', 'A', 12), ...vms('b', 'B', 7)] }), want: 'migrate a1 A->B' },
  { name: 'the threshold from the cluster (2) with a small HighVmCount (2): 3 against 1 moves, 2 against 1 does not',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: quiet, vms: [...vms('a', 'A', 3), ...vms('b', 'B', 1)], params: { migrationThreshold: 2, highVmCount: 2 } }),
    want: 'migrate a1 A->B' },
  { name: '2 against 1 with threshold 2: nothing (a move would only swap which host has more)',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: quiet, vms: [...vms('a', 'A', 2), ...vms('b', 'B', 1)], params: { migrationThreshold: 2, highVmCount: 2 } }),
    want: 'none' },
  { name: 'the SPM counts SpmVmGrace (5) extra: 6 VMs on the SPM against 0 move one',
    in: input({ policy: 'vm_evenly_distributed', hosts: [host('A', { spm: true }), host('B')], history: quiet, vms: vms('a', 'A', 6) }), want: 'migrate a1 A->B' },
  { name: 'the SPM as destination counts its grace: 10 against an SPM with 3 (3+5) is no move',
    in: input({ policy: 'vm_evenly_distributed', hosts: [host('A'), host('B', { spm: true })], history: quiet, vms: [...vms('a', 'A', 10), ...vms('b', 'B', 3)] }), want: 'none' },
  { name: 'the emptiest host is over HighUtilization on average: the next emptiest takes the VM',
    in: input({ policy: 'vm_evenly_distributed', hosts: [host('A'), host('B'), host('C')], history: { A: cpu(30), B: cpu(95), C: cpu(40) },
      vms: [...vms('a', 'A', 12), ...vms('c', 'C', 1)] }), want: 'migrate a1 A->C' },
  { name: 'the emptiest host is full (memory filter): the next one takes it',
    in: input({ policy: 'vm_evenly_distributed', hosts: [host('A'), host('B', { memMiB: 1_024 }), host('C')], history: quiet,
      vms: [...vms('a', 'A', 12), ...vms('c', 'C', 2)] }), want: 'migrate a1 A->C' },
  { name: 'pinned VMs are skipped',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: quiet, vms: [...vms('p', 'A', 11, { pinned: true, priority: 0 }), vm('x', 'A', { priority: 99 })] }),
    want: 'migrate x A->B' },
  { name: 'an empty host that is not Up is no destination',
    in: input({ policy: 'vm_evenly_distributed', hosts: [host('A'), host('B', { status: 'Maintenance' }), host('C')], history: quiet,
      vms: [...vms('a', 'A', 12), ...vms('c', 'C', 8)] }), want: 'none' },
  { name: 'a crowded host that is not Up is no source',
    in: input({ policy: 'vm_evenly_distributed', hosts: [host('A', { status: 'NonResponsive' }), host('B'), host('C')], history: quiet,
      vms: [...vms('a', 'A', 12), ...vms('c', 'C', 1)] }), want: 'none' },
  { name: 'a destination not heard lately is unknown, and no destination',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: { A: cpu(30), B: series(10, 3 * MIN, { lagMs: 30_000 }) }, vms: vms('a', 'A', 12) }), want: 'none' },
  { name: 'pending starts count as VMs of their host',
    in: input({ policy: 'vm_evenly_distributed', hosts: ab, history: quiet, vms: vms('a', 'A', 12),
      pending: Array.from({ length: 8 }, (_, i) => ({ vmId: `p${i}`, hostId: 'B', memoryMiB: 64, vcpus: 1 })) }), want: 'none' },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = balance(c.in);
    t.equal(summary(r.decision), c.want);
    if (r.decision) t.match(r.events[0], { kind: 'balancing.migrate', vm: (r.decision as { vmId: string }).vmId }, r.decision.reason);
  });
}
