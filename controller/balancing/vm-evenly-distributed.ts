// vm_evenly_distributed (oVirt's OptimalForEvenGuestDistribution): by VM count. The host running
// the most VMs (the SPM counting SpmVmGrace extra) gives one VM when it runs at least HighVmCount
// and at least MigrationThreshold more than the destination; the destination has the fewest VMs
// and has not been over HighUtilization CPU on average over the window. A threshold of 2 or more
// means a move never just swaps which host has more, so the cluster settles.
import { decisionEvent } from '../decision-event.js';
import type { BalanceInput, BalanceResult } from './balance-types.js';
import { NOTHING } from './balance-types.js';
import { cmp, cpuMean, isMove, pickMove, upHosts, vmCountOn } from './candidates.js';

export function vmEvenlyDistributed(input: BalanceInput): BalanceResult {
  const p = input.params;
  const up = upHosts(input);
  if (up.length < 2) return NOTHING;
  const count = new Map(up.map((h) => [h.sched.hostId, vmCountOn(input, h.sched.hostId) + (h.spm ? p.spmVmGrace : 0)]));
  const n = (id: string): number => count.get(id) ?? 0;
  const ids = up.map((h) => h.sched.hostId).sort((a, b) => n(b) - n(a) || cmp(a, b));
  const from = ids[0]!;
  if (n(from) < p.highVmCount) return NOTHING;
  const mean = new Map(ids.map((id) => [id, cpuMean(input, id)]));
  const destinations = ids
    .filter((id) => id !== from && n(from) - n(id) >= p.migrationThreshold)
    .filter((id) => { const m = mean.get(id); return m !== null && m !== undefined && m < p.highUtilizationPct; })
    .sort((a, b) => n(a) - n(b) || (mean.get(a) ?? 0) - (mean.get(b) ?? 0) || cmp(a, b));
  if (destinations.length === 0) return NOTHING; // balanced enough, or every lighter host is busy
  const m = pickMove(input, from, destinations);
  if (!isMove(m)) {
    return {
      decision: null,
      events: [decisionEvent(input.now, 'balancing.no-move', 'warning',
        `vm_evenly_distributed: host ${from} runs ${n(from)} VM(s) (SPM grace included), but no movable VM (Up, not pinned, not migrating) fits on a host with ${p.migrationThreshold} fewer`,
        { host: from, data: { policy: 'vm_evenly_distributed', clusterId: input.clusterId, destinations, tried: m.tried } })],
    };
  }
  const reason = `vm_evenly_distributed: host ${from} runs ${n(from)} VM(s) (at least ${p.highVmCount}), host ${m.toHostId} ${n(m.toHostId)} `
    + `(a difference of at least ${p.migrationThreshold}); VM ${m.vm.vm.vmId} moves there`;
  return {
    decision: { kind: 'migrate', vmId: m.vm.vm.vmId, fromHostId: from, toHostId: m.toHostId, reason },
    events: [decisionEvent(input.now, 'balancing.migrate', 'info', reason, {
      host: from, vm: m.vm.vm.vmId,
      data: { policy: 'vm_evenly_distributed', clusterId: input.clusterId, from, to: m.toHostId, sourceVms: n(from), destinationVms: n(m.toHostId) },
    })],
  };
}
