// What to do next about the pool's SPM, from the record, what the hosts report and the time.
// Safety rests on the sanlock lease: an spmStart fails (40) while any other host holds it, so
// the controller may try candidates while the old SPM is lost, and records a new SPM only from a
// successful spmStart (recordSpmResult) or from a host reporting the lease. Never from a guess.
//
// Order of the checks:
//   1. a fresh lease report naming a holder with a newer lease version -> adopt it
//   2. an spmStart/spmStop with no result after spmOpTimeoutMs -> abandon it (the call was lost)
//   3. a call in flight -> wait for its result
//   4. the recorded SPM answers and reports itself Free, or another host reads the lease free
//      (holder -1), in a read begun after the SPM was recorded -> forget it: it lost the lease
//   5. the recorded SPM is Up -> keep; Connecting/Initializing -> wait (within its grace);
//      reachable but unfit (NonOperational, maintenance) -> spmStop on it;
//      NonResponsive or gone -> fail over: try the candidates (the lease decides)
//   6. no SPM -> spmStart on the best candidate not in retry backoff

import type { DecisionSettings } from '../decision-settings.js';
import { decisionEvent, type DecisionEvent } from '../decision-event.js';
import { agentAnswering } from '../health/host-status.js';
import { spmCandidates } from './candidates.js';
import type { RandomSource, SpmHostView, SpmRecord } from './spm-record.js';

export type SpmAction =
  | { kind: 'keep'; hostId: string; reason: string }
  | { kind: 'wait'; reason: string; retryAt?: number }
  /** call StoragePool.spmStart on hostId, then recordSpmResult */
  | { kind: 'start'; hostId: string; reason: string; candidates: string[] }
  /** call StoragePool.spmStop on hostId, then recordSpmResult */
  | { kind: 'stop'; hostId: string; reason: string };

export interface SpmStep {
  action: SpmAction;
  /** persist this before making the call the action names */
  record: SpmRecord;
  events: DecisionEvent[];
}

export function nextSpmStep(prev: SpmRecord, hosts: readonly SpmHostView[], now: number, s: DecisionSettings, random: RandomSource): SpmStep {
  const events: DecisionEvent[] = [];
  const byId = new Map(hosts.map((h) => [h.hostId, h]));
  let rec = adoptReportedHolder(prev, hosts, now, s, events);

  if (rec.inFlight !== null && now - rec.inFlight.since > s.spmOpTimeoutMs) {
    const f = rec.inFlight;
    events.push(decisionEvent(now, 'spm.abandoned', 'warning',
      `no result of spm${f.op === 'start' ? 'Start' : 'Stop'} on ${f.hostId} after ${Math.round((now - f.since) / 1000)} s: given up (the lease decides who is SPM)`,
      { host: f.hostId }));
    rec = { ...rec, inFlight: null, failedAt: { ...rec.failedAt, [f.hostId]: now } };
  }
  if (rec.inFlight !== null) {
    return { action: { kind: 'wait', reason: `spm${rec.inFlight.op === 'start' ? 'Start' : 'Stop'} in flight on ${rec.inFlight.hostId}` }, record: rec, events };
  }

  let exclude: string | null = null;
  if (rec.spmHostId !== null) {
    const spm = byId.get(rec.spmHostId);
    const own = spm !== undefined && agentAnswering(spm.status) ? newerLease(spm, rec.since, now, s) : undefined;
    const freeBy = own?.role === 'SPM' ? undefined : reportedFree(hosts, rec.since, now, s);
    if (spm !== undefined && own?.role === 'Free') {
      events.push(decisionEvent(now, 'spm.lost', 'warning', `${spm.hostId} reports it no longer holds the SPM lease (lver ${rec.lver})`, { host: spm.hostId }));
      rec = { ...rec, spmHostId: null, since: now };
    } else if (freeBy !== undefined) {
      // The lease reads free: the SPM's agent died (sanlock released its lease) or it stopped.
      events.push(decisionEvent(now, 'spm.lost', 'warning', `${freeBy} reads the SPM lease free: ${rec.spmHostId} no longer holds it (lver ${rec.lver})`, { host: rec.spmHostId }));
      rec = { ...rec, spmHostId: null, since: now };
    } else if (spm === undefined || spm.status === 'NonResponsive' || spm.status === 'Installing') {
      exclude = rec.spmHostId; // lost: fail over below; its lease frees by itself at most host_dead_seconds after its last renewal
    } else if (spm.status === 'Up') {
      return { action: { kind: 'keep', hostId: spm.hostId, reason: `${spm.hostId} is Up and holds the lease (lver ${rec.lver})` }, record: rec, events };
    } else if (spm.status === 'Connecting' || spm.status === 'Initializing') {
      return { action: { kind: 'wait', reason: `the SPM ${spm.hostId} is ${spm.status}: waiting for its grace to decide` }, record: rec, events };
    } else {
      const retryAt = (rec.failedAt[spm.hostId] ?? -Infinity) + s.spmRetryIntervalMs;
      if (retryAt > now) return { action: { kind: 'wait', reason: `spmStop on ${spm.hostId} failed; retrying`, retryAt }, record: rec, events };
      const reason = `the SPM ${spm.hostId} is ${spm.status}: it must hand the role over`;
      return { action: { kind: 'stop', hostId: spm.hostId, reason }, record: { ...rec, inFlight: { op: 'stop', hostId: spm.hostId, since: now } }, events };
    }
  }
  return elect(rec, hosts, exclude, now, s, random, events);
}

function elect(rec: SpmRecord, hosts: readonly SpmHostView[], exclude: string | null, now: number, s: DecisionSettings,
  random: RandomSource, events: DecisionEvent[]): SpmStep {
  const all = spmCandidates(hosts.filter((h) => h.hostId !== exclude), random);
  const ready = all.filter((h) => (rec.failedAt[h.hostId] ?? -Infinity) + s.spmRetryIntervalMs <= now);
  const lost = exclude === null ? '' : `the SPM ${exclude} is lost; `;
  if (all.length === 0) return { action: { kind: 'wait', reason: `${lost}no candidate: no Up host connected to the pool with priority >= 0` }, record: rec, events };
  const first = ready[0];
  if (first === undefined) {
    const retryAt = Math.min(...all.map((h) => (rec.failedAt[h.hostId] ?? 0) + s.spmRetryIntervalMs));
    return { action: { kind: 'wait', reason: `${lost}every candidate was tried in the last ${s.spmRetryIntervalMs / 1000} s`, retryAt }, record: rec, events };
  }
  const reason = `${lost}${first.hostId} is the best candidate (priority ${first.spmPriority}) of ${ready.length} ready`;
  events.push(decisionEvent(now, 'spm.contend', 'info', `spmStart on ${first.hostId}: ${reason}`, {
    host: first.hostId, data: { candidates: all.map((h) => h.hostId), lostSpm: exclude },
  }));
  return {
    action: { kind: 'start', hostId: first.hostId, reason, candidates: all.map((h) => h.hostId) },
    record: { ...rec, inFlight: { op: 'start', hostId: first.hostId, since: now } },
    events,
  };
}

/** An answering host whose fresh report, read after `since`, finds the lease held by nobody. */
function reportedFree(hosts: readonly SpmHostView[], since: number, now: number, s: DecisionSettings): string | undefined {
  return hosts.find((h) => {
    const lease = agentAnswering(h.status) ? newerLease(h, since, now, s) : undefined;
    return lease !== undefined && lease.holder < 0;
  })?.hostId;
}

/** The host's lease report if fresh and begun after `since`. */
function newerLease(h: SpmHostView, since: number, now: number, s: DecisionSettings) {
  const lease = freshLease(h, now, s);
  return lease !== undefined && lease.at > since ? lease : undefined;
}

function freshLease(h: SpmHostView, now: number, s: DecisionSettings) {
  return h.lease !== undefined && now - h.lease.at <= s.spmReportMaxAgeMs ? h.lease : undefined;
}

/**
 * A lease report (from any answering host) naming a holder with a newer version than the record
 * is the truth: record that holder. This is how a controller whose record is behind (restart, a
 * lost spmStart result) learns the SPM without calling anything.
 */
function adoptReportedHolder(rec: SpmRecord, hosts: readonly SpmHostView[], now: number, s: DecisionSettings, events: DecisionEvent[]): SpmRecord {
  const byNo = new Map(hosts.filter((h) => h.poolHostNo !== null).map((h) => [h.poolHostNo!, h]));
  let best: { hostId: string; lver: number; by: string } | null = null;
  for (const h of hosts) {
    const lease = freshLease(h, now, s);
    if (lease === undefined || !agentAnswering(h.status) || lease.holder < 0) continue;
    const holder = byNo.get(lease.holder);
    if (holder !== undefined && (best === null || lease.lver > best.lver)) best = { hostId: holder.hostId, lver: lease.lver, by: h.hostId };
  }
  if (best === null || best.lver <= rec.lver) return rec;
  events.push(decisionEvent(now, 'spm.adopted', 'info',
    `${best.by} reports the SPM lease held by ${best.hostId} at lver ${best.lver} (recorded: ${rec.spmHostId ?? 'none'} at ${rec.lver})`,
    { host: best.hostId, data: { lver: best.lver, previous: rec.spmHostId } }));
  const inFlight = rec.inFlight?.op === 'start' && rec.inFlight.hostId === best.hostId ? null : rec.inFlight;
  return { ...rec, spmHostId: best.hostId, lver: best.lver, since: now, inFlight };
}
