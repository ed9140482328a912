// evenly_distributed (oVirt's OptimalForEvenDistribution): a host over HighUtilization CPU (80 %)
// for the whole CpuOverCommitDuration (2 min) gives one VM to the least loaded host whose mean
// CPU over that window (and in its newest sample) is under min(80 % of High, High - 10), 64 % for 80. Memory counts only when
// the cluster sets its thresholds (oVirt: unset by default, so memory balancing is off).
import { decisionEvent } from '../decision-event.js';
import type { BalanceInput, BalanceResult } from './balance-types.js';
import { NOTHING } from './balance-types.js';
import {
  cmp, cpuMean, destinationCpu, destinationCpuLimit, freeMemMean, heldForDuration, isMove, memoryRoomy, minutes, overUtilized, pct, pickMove, upHosts,
} from './candidates.js';

export function evenlyDistributed(input: BalanceInput): BalanceResult {
  return relieveOverUtilized(input, 'evenly_distributed');
}

/**
 * One VM off the most loaded over-utilized host, to the least loaded destination that can take
 * it; power_saving relieves an overloaded host the same way. Hosts over for less than the
 * duration, and hosts not heard lately, are left alone.
 */
export function relieveOverUtilized(input: BalanceInput, policy: string): BalanceResult {
  const p = input.params;
  const up = upHosts(input);
  if (up.length < 2) return NOTHING;
  const mean = new Map(up.map((h) => [h.sched.hostId, cpuMean(input, h.sched.hostId)]));
  const load = (id: string): number => mean.get(id) ?? 0;
  const sources = up.map((h) => h.sched.hostId).filter((id) => overUtilized(input, id))
    .sort((a, b) => load(b) - load(a) || cmp(a, b));
  if (sources.length === 0) return NOTHING;
  const limit = destinationCpuLimit(p.highUtilizationPct);
  const destCpu = new Map(up.map((h) => [h.sched.hostId, destinationCpu(input, h.sched.hostId)]));
  const destLoad = (id: string): number => destCpu.get(id) ?? 0;
  const destinations = up.map((h) => h.sched.hostId)
    .filter((id) => !sources.includes(id) && destCpu.get(id) !== null && destLoad(id) < limit && memoryRoomy(input, id))
    .sort((a, b) => destLoad(a) - destLoad(b) || cmp(a, b));
  const stuck: string[] = [];
  for (const from of sources) {
    const m = pickMove(input, from, destinations);
    if (isMove(m)) {
      const cpuOver = heldForDuration(input, from, (s) => s.cpuPct > p.highUtilizationPct);
      const over = cpuOver ? `over ${p.highUtilizationPct} % CPU` : `under ${p.maxFreeMemoryForOverUtilizedMiB} MiB free memory (mean ${Math.round(freeMemMean(input, from) ?? 0)} MiB)`;
      const reason = `${policy}: host ${from} ${over} for ${minutes(p.overCommitDurationMs)} `
        + `(mean CPU ${pct(load(from))}); VM ${m.vm.vm.vmId} moves to host ${m.toHostId} (${pct(destLoad(m.toHostId))}, the higher of its mean and its newest sample, under ${pct(limit)})`;
      return {
        decision: { kind: 'migrate', vmId: m.vm.vm.vmId, fromHostId: from, toHostId: m.toHostId, reason },
        events: [decisionEvent(input.now, 'balancing.migrate', 'info', reason, {
          host: from, vm: m.vm.vm.vmId,
          data: { policy, clusterId: input.clusterId, from, to: m.toHostId, sourceCpuPct: load(from), destinationCpuPct: destLoad(m.toHostId), destinationLimitPct: limit },
        })],
      };
    }
    stuck.push(from);
  }
  const why = destinations.length === 0
    ? `no other Up host has been under ${pct(limit)} CPU over the last ${minutes(p.overCommitDurationMs)} and in its newest sample`
    : 'no movable VM (Up, not pinned, not migrating) fits on a destination by the scheduler\'s filters';
  return {
    decision: null,
    events: [decisionEvent(input.now, 'balancing.no-move', 'warning', `${policy}: host(s) ${stuck.join(', ')} over ${p.highUtilizationPct} % for ${minutes(p.overCommitDurationMs)}, but ${why}`,
      { host: stuck[0]!, data: { policy, clusterId: input.clusterId, overUtilized: stuck, destinations } })],
  };
}
