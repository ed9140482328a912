// Who may become SPM, best first: Up hosts connected to the pool with a lockspace id and
// priority >= 0 (-1 = never), highest priority first, ties in random order (oVirt's
// GetUpAndPrioritizedVds: ORDER BY priority DESC, RANDOM()).

import type { RandomSource, SpmHostView } from './spm-record.js';

export const NEVER_SPM = -1;

export function spmEligible(h: SpmHostView): boolean {
  return h.status === 'Up' && h.poolConnected && h.poolHostNo !== null && h.spmPriority > NEVER_SPM;
}

export function spmCandidates(hosts: readonly SpmHostView[], random: RandomSource): SpmHostView[] {
  // Draw the tie-break keys in host-id order, so that the same random source gives the same
  // order whatever order the hosts came in.
  const keyed = hosts.filter(spmEligible)
    .sort((a, b) => (a.hostId < b.hostId ? -1 : a.hostId > b.hostId ? 1 : 0))
    .map((h) => ({ h, key: random() }));
  keyed.sort((a, b) => b.h.spmPriority - a.h.spmPriority || a.key - b.key);
  return keyed.map((k) => k.h);
}
