// The outcome of an spmStart/spmStop the controller made, folded into the SPM record. Only a
// successful spmStart makes a host the recorded SPM: the lease was taken, so no other host holds it.

import { decisionEvent, type DecisionEvent } from '../decision-event.js';
import type { SpmRecord } from './spm-record.js';

export type SpmCallResult =
  | { op: 'start'; hostId: string; ok: true; lver: number }
  /** leaseHeld: the agent answered 40 (another host holds the lease); otherwise any other failure */
  | { op: 'start'; hostId: string; ok: false; leaseHeld: boolean; error: string }
  | { op: 'stop'; hostId: string; ok: true }
  | { op: 'stop'; hostId: string; ok: false; error: string };

export function recordSpmResult(prev: SpmRecord, r: SpmCallResult, now: number): { record: SpmRecord; events: DecisionEvent[] } {
  const expected = prev.inFlight !== null && prev.inFlight.op === r.op && prev.inFlight.hostId === r.hostId;
  const base: SpmRecord = expected ? { ...prev, inFlight: null } : prev;
  if (r.op === 'start' && r.ok && !expected && prev.spmHostId !== r.hostId && r.lver <= prev.lver) {
    // A result that arrives after a newer lease was recorded is history, not the present.
    return { record: base, events: [decisionEvent(now, 'spm.stale-result', 'warning',
      `a late spmStart result from ${r.hostId} (lver ${r.lver}) is older than the recorded ${prev.spmHostId ?? 'none'} at lver ${prev.lver}: ignored`,
      { host: r.hostId })] };
  }
  if (r.op === 'start' && r.ok) {
    const failedAt = { ...base.failedAt };
    delete failedAt[r.hostId];
    const was = prev.spmHostId !== null && prev.spmHostId !== r.hostId ? ` (was ${prev.spmHostId} at lver ${prev.lver})` : '';
    return {
      record: { ...base, spmHostId: r.hostId, lver: r.lver, since: now, failedAt },
      events: [decisionEvent(now, 'spm.elected', 'info', `${r.hostId} took the SPM lease at lver ${r.lver}${was}`,
        { host: r.hostId, data: { lver: r.lver, previous: prev.spmHostId, late: !expected } })],
    };
  }
  if (r.op === 'stop' && r.ok) {
    const record = base.spmHostId === r.hostId ? { ...base, spmHostId: null, since: now } : base;
    return { record, events: [decisionEvent(now, 'spm.stopped', 'info', `${r.hostId} released the SPM lease`, { host: r.hostId })] };
  }
  // A failure: retry this host only after the backoff. A late failure (its in-flight record was
  // abandoned or replaced) changes nothing else.
  const failedAt = { ...base.failedAt, [r.hostId]: now };
  const what = r.op === 'start'
    ? (r.leaseHeld ? 'the lease is still held by another host' : `failed: ${r.error}`)
    : `failed: ${r.error}`;
  return {
    record: { ...base, failedAt },
    events: [decisionEvent(now, `spm.${r.op}-failed`, r.op === 'start' && r.leaseHeld ? 'info' : 'warning',
      `spm${r.op === 'start' ? 'Start' : 'Stop'} on ${r.hostId}: ${what}`, { host: r.hostId })],
  };
}
