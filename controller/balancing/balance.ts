// The cluster's balancer, by its policy's name. `none` never moves anything; a cluster with
// fewer than two hosts has nowhere to move to (oVirt does not balance it either).
import type { BalanceInput, BalanceResult } from './balance-types.js';
import { NOTHING } from './balance-types.js';
import { evenlyDistributed } from './evenly-distributed.js';
import { powerSaving } from './power-saving.js';
import { vmEvenlyDistributed } from './vm-evenly-distributed.js';

export function balance(input: BalanceInput): BalanceResult {
  if (input.hosts.length < 2) return NOTHING;
  switch (input.policy) {
    case 'evenly_distributed': return evenlyDistributed(input);
    case 'power_saving': return powerSaving(input);
    case 'vm_evenly_distributed': return vmEvenlyDistributed(input);
    case 'none': return NOTHING;
  }
}
