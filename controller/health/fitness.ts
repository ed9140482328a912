// Whether a host that answers is fit to run the cluster's VMs. A required network that is
// missing makes it unfit at once (no VM needing it may go there); a pool domain it cannot
// reach makes it unfit only after storageUnreachableGraceMs, so a storage blip does not.

import type { DecisionSettings } from '../decision-settings.js';
import type { UnfitReason } from './host-status.js';

/** What a good poll tells about the host's fitness (computed by the caller from the agent's answers). */
export interface FitnessObservation {
  /** cluster networks marked required that are not up on this host */
  missingRequiredNetworks: string[];
  /** pool storage domains this host reports it cannot reach (or the master, when it could not connect to the pool) */
  unreachableDomains: string[];
}

export const FIT: FitnessObservation = Object.freeze({ missingRequiredNetworks: [], unreachableDomains: [] }) as FitnessObservation;

/** The required networks not among those the host has up. */
export function missingNetworks(required: readonly string[], present: readonly string[]): string[] {
  const have = new Set(present);
  return required.filter((n) => !have.has(n)).sort();
}

export interface Fitness {
  reasons: UnfitReason[];
  storageUnreachableSince: number | null;
}

export function assessFitness(obs: FitnessObservation, storageUnreachableSince: number | null, now: number, s: DecisionSettings): Fitness {
  const reasons: UnfitReason[] = [...new Set(obs.missingRequiredNetworks)].sort().map((net) => ({
    code: 'requiredNetworkMissing' as const, subject: net, message: `required network ${net} is not up on the host`,
  }));
  const domains = [...new Set(obs.unreachableDomains)].sort();
  const since = domains.length === 0 ? null : storageUnreachableSince ?? now;
  if (since !== null && now - since >= s.storageUnreachableGraceMs) {
    for (const sd of domains) {
      reasons.push({
        code: 'poolStorageUnreachable', subject: sd,
        message: `pool storage domain ${sd} unreachable from the host for ${Math.round((now - since) / 1000)} s`,
      });
    }
  }
  return { reasons, storageUnreachableSince: since };
}

export function sameReasons(a: readonly UnfitReason[], b: readonly UnfitReason[]): boolean {
  const key = (r: UnfitReason) => `${r.code}:${r.subject ?? ''}`;
  return a.length === b.length && a.every((r, i) => key(r) === key(b[i]!));
}
