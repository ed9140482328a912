// evenly_distributed, table-driven: a host over HighUtilization (80 %) for the whole
// CpuOverCommitDuration (2 min) gives one VM to the least loaded host under 64 %; shorter or
// broken runs give nothing; pinned, migrating or not-Up VMs are never picked; a destination the
// scheduler's filters refuse (full) gives way to the next; hosts not Up are neither source nor
// destination; one decision per cluster.
import t from 'tap';
import { balance } from '../../../controller/balancing/balance.js';
import type { BalanceInput } from '../../../controller/balancing/balance-types.js';
import { host, input, series, summary, vm, vms } from './fixtures.js';

const MIN = 60_000;
const busy = (forMs = 3 * MIN) => series(92, forMs);
const idle = (cpu = 10) => series(cpu, 3 * MIN);
const three = [host('A'), host('B'), host('C')];

interface Case { name: string; in: BalanceInput; want: string; event?: string }

const cases: Case[] = [
  { name: 'over for less than the duration (90 s of 120 s): nothing',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: [...series(30, 3 * MIN, { lagMs: 90_000 + 3_000 }), ...series(92, 90_000)], B: idle(), C: idle(30) }, vms: vms('a', 'A', 3) }),
    want: 'none' },
  { name: 'over for the whole duration: one VM to the least loaded host under 64 %',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: busy(), B: idle(40), C: idle(10) }, vms: vms('a', 'A', 3) }),
    want: 'migrate a1 A->C', event: 'balancing.migrate' },
  { name: 'exactly the duration is enough (the run began 120 s ago)',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: [...series(30, 3 * MIN, { lagMs: 123_000 }), ...series(92, 120_000)], B: idle(), C: idle(30) }, vms: vms('a', 'A', 2) }),
    want: 'migrate a1 A->B' },
  { name: 'one sample under the threshold 30 s ago breaks the run: nothing',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: series((ago) => (ago === 30_000 ? 70 : 92), 3 * MIN), B: idle(), C: idle() }, vms: vms('a', 'A', 3) }),
    want: 'none' },
  { name: 'a gap of 15 s in the samples (failed polls) breaks the run: unknown is not "still over"',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: series(92, 3 * MIN, { gapAt: [60_000, 45_000] }), B: idle(), C: idle() }, vms: vms('a', 'A', 3) }),
    want: 'none' },
  { name: 'a host not heard for 20 s is neither over nor a destination',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: series(92, 3 * MIN, { lagMs: 21_000 }), B: idle(), C: idle() }, vms: vms('a', 'A', 3) }),
    want: 'none' },
  { name: 'pinned VMs are skipped (even of the lowest priority)',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: busy(), B: idle(), C: idle(30) },
      vms: [vm('p1', 'A', { pinned: true, priority: 0 }), vm('p2', 'A', { pinned: true, priority: 1 }), vm('free', 'A', { priority: 90 })] }),
    want: 'migrate free A->B' },
  { name: 'VMs migrating, paused or powering up are never picked',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: busy(), B: idle(), C: idle(30) },
      vms: [vm('m', 'A', { migrating: true, priority: 0 }), vm('src', 'A', { status: 'Migration Source', priority: 0 }), vm('p', 'A', { status: 'Paused', priority: 0 }),
        vm('w', 'A', { status: 'Powering up', priority: 0 }), vm('ok', 'A', { priority: 99 })] }),
    want: 'migrate ok A->B' },
  { name: 'lower priority moves first; equal priority: the smaller VM',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: busy(), B: idle(), C: idle(30) },
      vms: [vm('big', 'A', { priority: 10, memMiB: 4_096 }), vm('small', 'A', { priority: 10, memMiB: 512 }), vm('vip', 'A', { priority: 0 + 90 })] }),
    want: 'migrate small A->B' },
  { name: 'the least loaded destination is full (memory filter): the next one takes the VM',
    in: input({ policy: 'evenly_distributed', hosts: [host('A'), host('B', { memMiB: 2_048 }), host('C')], history: { A: busy(), B: idle(5), C: idle(40) },
      vms: [...vms('a', 'A', 2), vm('b1', 'B')] }),
    want: 'migrate a1 A->C' },
  { name: 'a destination lacking a required network gives way to the next',
    in: input({ policy: 'evenly_distributed', hosts: [host('A', { networks: ['ovirtmgmt', 'data'] }), host('B', { networks: ['ovirtmgmt'] }), host('C', { networks: ['ovirtmgmt', 'data'] })],
      history: { A: busy(), B: idle(5), C: idle(40) }, vms: [vm('n1', 'A', { networks: ['data'] })] }),
    want: 'migrate n1 A->C' },
  { name: 'a destination idle on average but busy in its newest sample (it has just taken a VM) is passed over: the next one takes the VM',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: busy(), B: series((ago) => (ago === 0 ? 90 : 5), 3 * MIN), C: idle(30) }, vms: vms('a', 'A', 3) }),
    want: 'migrate a1 A->C' },
  { name: 'the only destination idle on average is busy now: nothing (A is not emptied onto it)',
    in: input({ policy: 'evenly_distributed', hosts: [host('A'), host('B')], history: { A: busy(), B: series((ago) => (ago <= 3_000 ? 85 : 5), 3 * MIN) }, vms: vms('a', 'A', 2) }),
    want: 'none', event: 'balancing.no-move' },
  { name: 'no host under 64 % (65 % is not): nothing, and a warning says why',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: busy(), B: idle(65), C: idle(70) }, vms: vms('a', 'A', 3) }),
    want: 'none', event: 'balancing.no-move' },
  { name: 'every VM pinned: nothing, and a warning',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: busy(), B: idle(), C: idle() }, vms: vms('p', 'A', 2, { pinned: true }) }),
    want: 'none', event: 'balancing.no-move' },
  { name: 'two hosts over: one decision only, from the busier one, to the least loaded',
    in: input({ policy: 'evenly_distributed', hosts: [...three, host('D')], history: { A: series(88, 3 * MIN), B: series(97, 3 * MIN), C: idle(20), D: idle(10) },
      vms: [...vms('a', 'A', 2), ...vms('b', 'B', 2)] }),
    want: 'migrate b1 B->D' },
  { name: 'the busier host has only pinned VMs: the other over host gives one instead',
    in: input({ policy: 'evenly_distributed', hosts: [...three, host('D')], history: { A: series(88, 3 * MIN), B: series(97, 3 * MIN), C: idle(20), D: idle(10) },
      vms: [...vms('a', 'A', 2), ...vms('b', 'B', 2, { pinned: true })] }),
    want: 'migrate a1 A->D' },
  { name: 'an idle host that is not Up (NonOperational, Maintenance) is no destination',
    in: input({ policy: 'evenly_distributed', hosts: [host('A'), host('B', { status: 'NonOperational' }), host('C', { status: 'Maintenance' }), host('D')],
      history: { A: busy(), B: idle(1), C: idle(1), D: idle(50) }, vms: vms('a', 'A', 2) }),
    want: 'migrate a1 A->D' },
  { name: 'a busy host that is not Up (Connecting) is no source',
    in: input({ policy: 'evenly_distributed', hosts: [host('A', { status: 'Connecting' }), host('B'), host('C')], history: { A: busy(), B: idle(), C: idle() }, vms: vms('a', 'A', 2) }),
    want: 'none' },
  { name: 'a single Up host: nothing to balance',
    in: input({ policy: 'evenly_distributed', hosts: [host('A'), host('B', { status: 'NonResponsive' })], history: { A: busy(), B: idle() }, vms: vms('a', 'A', 2) }),
    want: 'none' },
  { name: 'memory thresholds unset: a host short of memory but not of CPU is left alone',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: series(30, 3 * MIN, { memFreeMiB: 200 }), B: idle(), C: idle() }, vms: vms('a', 'A', 2) }),
    want: 'none' },
  { name: 'memory thresholds set: short of free memory for the duration is over-utilized',
    in: input({ policy: 'evenly_distributed', hosts: three, history: { A: series(30, 3 * MIN, { memFreeMiB: 200 }), B: idle(20), C: series(10, 3 * MIN, { memFreeMiB: 300 }) }, vms: vms('a', 'A', 2),
      params: { maxFreeMemoryForOverUtilizedMiB: 500, minFreeMemoryForUnderUtilizedMiB: 1_000 } }),
    want: 'migrate a1 A->B' },
  { name: 'policy none never moves anything',
    in: input({ policy: 'none', hosts: three, history: { A: busy(), B: idle(), C: idle() }, vms: vms('a', 'A', 3) }),
    want: 'none' },
  { name: 'a destination spiking to 90 % once but 30 % on average over the window still takes the VM (the mean, not one sample)',
    in: input({ policy: 'evenly_distributed', hosts: [host('A'), host('B')], history: { A: busy(), B: series((ago) => (ago === 6_000 ? 90 : 30), 3 * MIN) }, vms: vms('a', 'A', 2) }),
    want: 'migrate a1 A->B' },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = balance(c.in);
    t.equal(summary(r.decision), c.want);
    if (c.event) t.same(r.events.map((e) => e.kind), [c.event], `event ${c.event}: ${r.events[0]?.reason}`);
    if (r.decision?.kind === 'migrate') {
      t.ok(r.decision.reason.length > 40, `the decision says why: ${r.decision.reason}`);
      t.equal(r.events[0]?.vm, r.decision.vmId, 'the event names the VM');
    }
    t.ok(r.events.length <= 1, 'one event at most per cycle');
  });
}
