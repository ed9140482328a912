// oVirt's rule for when a host that stopped answering is lost (VdsManager.isHostInGracePeriod):
// it stays in grace while EITHER it has failed no more than nonResponsiveAttempts polls OR its
// last answer is no older than the grace; so NonResponsive takes both.

import type { DecisionSettings } from '../decision-settings.js';

/** The grace for a host: the base, more for the SPM, more per VM it runs. */
export function nonResponsiveGraceMs(s: DecisionSettings, host: { isSpm: boolean; vmCount: number }): number {
  return s.nonResponsiveGraceMs + (host.isSpm ? s.spmExtraGraceMs : 0) + s.perVmGraceMs * Math.max(0, host.vmCount);
}

export function stillInGrace(s: DecisionSettings, failedPolls: number, lastAnswerAt: number, graceMs: number, now: number): boolean {
  return failedPolls <= s.nonResponsiveAttempts || now - lastAnswerAt <= graceMs;
}
