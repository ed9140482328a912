// power_saving (oVirt's OptimalForPowerSaving): pack VMs onto few hosts and put the empty ones
// into maintenance (powering them off is left for a later issue). In order, one decision a cycle:
//   1. the others run over: a host this policy put into maintenance is activated again when an Up
//      host has been over HighUtilization for the whole duration and no Up host is under the
//      destination limit to take its load;
//   2. an over-utilized host is relieved as evenly_distributed does;
//   3. an Up host that runs no VM, has been under LowUtilization for the whole duration and is
//      not the SPM is asked into maintenance, if another Up host remains and none is overloaded;
//   4. an under-utilized host (the one with the fewest VMs) gives one VM to a host that stays
//      under HighUtilization even with the whole load of the source added (an upper bound: the
//      source is being emptied anyway); the busiest such host first, to pack.
// The source is the under-utilized host with the fewest VMs, so two under-utilized hosts never
// trade VMs back and forth: the emptier one is emptied into the fuller one.
import { decisionEvent } from '../decision-event.js';
import type { BalanceHost, BalanceInput, BalanceResult } from './balance-types.js';
import { NOTHING } from './balance-types.js';
import {
  cmp, cpuMean, destinationCpuLimit, isMove, minutes, overUtilized, pct, pickMove, underUtilized, upHosts, vmCountOn,
} from './candidates.js';
import { relieveOverUtilized } from './evenly-distributed.js';

const POLICY = 'power_saving';

export function powerSaving(input: BalanceInput): BalanceResult {
  const up = upHosts(input);
  const activation = activateIfOthersOver(input, up);
  if (activation !== null) return activation;
  if (up.length < 2) return NOTHING;
  const relief = relieveOverUtilized(input, POLICY);
  if (relief.decision !== null) return relief;
  if (up.some((h) => overUtilized(input, h.sched.hostId))) return relief; // overloaded somewhere: pack nothing more
  return maintainEmptyHost(input, up) ?? emptyUnderUtilizedHost(input, up) ?? relief;
}

function activateIfOthersOver(input: BalanceInput, up: readonly BalanceHost[]): BalanceResult | null {
  const p = input.params;
  const parked = input.hosts.filter((h) => h.sched.status === 'Maintenance' && input.policyMaintained.has(h.sched.hostId))
    .map((h) => h.sched.hostId).sort(cmp);
  if (parked.length === 0 || up.length === 0) return null;
  const over = up.map((h) => h.sched.hostId).filter((id) => overUtilized(input, id));
  if (over.length === 0) return null;
  const limit = destinationCpuLimit(p.highUtilizationPct);
  const roomy = up.some((h) => { const m = cpuMean(input, h.sched.hostId); return m !== null && m < limit && !over.includes(h.sched.hostId); });
  if (roomy) return null; // an Up host can still take the load: relieve instead
  const hostId = parked[0]!;
  const reason = `${POLICY}: host(s) ${over.join(', ')} over ${p.highUtilizationPct} % for ${minutes(p.overCommitDurationMs)} and no Up host under ${pct(limit)}; `
    + `host ${hostId}, put into maintenance by this policy, is activated again`;
  return {
    decision: { kind: 'activate', hostId, reason },
    events: [decisionEvent(input.now, 'balancing.activate', 'info', reason, { host: hostId, data: { policy: POLICY, clusterId: input.clusterId, overUtilized: over } })],
  };
}

function maintainEmptyHost(input: BalanceInput, up: readonly BalanceHost[]): BalanceResult | null {
  const p = input.params;
  const empty = up.filter((h) => !h.spm && vmCountOn(input, h.sched.hostId) === 0 && underUtilized(input, h.sched.hostId))
    .map((h) => h.sched.hostId).sort(cmp);
  const hostId = empty[0];
  if (hostId === undefined) return null;
  const reason = `${POLICY}: host ${hostId} runs no VM and has been under ${p.lowUtilizationPct} % for ${minutes(p.overCommitDurationMs)}; `
    + `it is asked into maintenance (${up.length - 1} other Up host(s) remain)`;
  return {
    decision: { kind: 'maintenance', hostId, reason },
    events: [decisionEvent(input.now, 'balancing.maintenance', 'info', reason, { host: hostId, data: { policy: POLICY, clusterId: input.clusterId } })],
  };
}

function emptyUnderUtilizedHost(input: BalanceInput, up: readonly BalanceHost[]): BalanceResult | null {
  const p = input.params;
  const cpus = new Map(up.map((h) => [h.sched.hostId, Math.max(1, h.sched.cpus)]));
  const mean = new Map(up.map((h) => [h.sched.hostId, cpuMean(input, h.sched.hostId)]));
  const load = (id: string): number => mean.get(id) ?? 0;
  const count = (id: string): number => vmCountOn(input, id);
  const sources = up.filter((h) => !h.spm && count(h.sched.hostId) > 0 && underUtilized(input, h.sched.hostId))
    .map((h) => h.sched.hostId).sort((a, b) => count(a) - count(b) || load(a) - load(b) || cmp(a, b));
  const tried: string[] = [];
  for (const from of sources) {
    // The source's whole load, in the destination's CPU %, must still leave it under High.
    const extra = (to: string): number => load(from) * cpus.get(from)! / cpus.get(to)!;
    const destinations = up.map((h) => h.sched.hostId)
      .filter((id) => id !== from && mean.get(id) !== null && load(id) + extra(id) < p.highUtilizationPct)
      .filter((id) => !sources.includes(id) || sources.indexOf(id) > sources.indexOf(from))
      .sort((a, b) => load(b) - load(a) || count(b) - count(a) || cmp(a, b));
    const m = pickMove(input, from, destinations);
    if (!isMove(m)) { tried.push(from); continue; }
    const reason = `${POLICY}: host ${from} under ${p.lowUtilizationPct} % for ${minutes(p.overCommitDurationMs)} (mean ${pct(load(from))}, ${count(from)} VM(s)) is emptied; `
      + `VM ${m.vm.vm.vmId} moves to host ${m.toHostId} (mean ${pct(load(m.toHostId))}, stays under ${p.highUtilizationPct} %)`;
    return {
      decision: { kind: 'migrate', vmId: m.vm.vm.vmId, fromHostId: from, toHostId: m.toHostId, reason },
      events: [decisionEvent(input.now, 'balancing.migrate', 'info', reason, {
        host: from, vm: m.vm.vm.vmId,
        data: { policy: POLICY, clusterId: input.clusterId, from, to: m.toHostId, sourceCpuPct: load(from), destinationCpuPct: load(m.toHostId) },
      })],
    };
  }
  if (tried.length === 0) return null;
  return {
    decision: null,
    events: [decisionEvent(input.now, 'balancing.no-move', 'info',
      `${POLICY}: host(s) ${tried.join(', ')} under ${p.lowUtilizationPct} % but none of their movable VMs fits on a host that stays under ${p.highUtilizationPct} %`,
      { host: tried[0]!, data: { policy: POLICY, clusterId: input.clusterId, underUtilized: tried } })],
  };
}
