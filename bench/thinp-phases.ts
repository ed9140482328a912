// bench:thinp's round-trip figures, from the two agents' JSON log lines:
//  - B (runs the VM), "drive extended": wait, request, refresh, rearm, resume and the total
//    (the round trip: from the drive monitor taking up the drive to the re-armed threshold);
//  - A (the SPM), "extend request served": its wait (queued), extend (lvextend), reply (written);
//  - both, joined by request id: "mailbox", the request's time not spent in A's handler
//    (B writing its slot and event block, A noticing it, B noticing the reply and clearing).
import { quantile, round } from './bench-util.js';

/** Phase name → samples in ms. */
export type PhaseSamples = Record<string, number[]>;

/** Rows in display order: key, where it happens, what it is. */
export const PHASE_ROWS: ReadonlyArray<readonly [string, string, string]> = [
  ['wait', 'B', 'drive taken up -> request sent (blockInfo, next size)'],
  ['request', 'B', 'request sent -> reply seen (holds the four below)'],
  ['mailbox', 'B+A', '  mailbox transport, both ways'],
  ['spm_wait', 'A', '  queued on the SPM'],
  ['extend', 'A', '  lvextend'],
  ['reply', 'A', '  reply written'],
  ['refresh', 'B', 'refresh the LV, check its size'],
  ['rearm', 'B', 'set the new block threshold'],
  ['resume', 'B', 'resume if paused on ENOSPC'],
  ['roundtrip', 'B', 'total'],
];

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const phasesOf = (r: Record<string, unknown>): Record<string, unknown> => (r['phasesMs'] ?? {}) as Record<string, unknown>;

function push(s: PhaseSamples, k: string, v: number | undefined): void {
  if (v !== undefined) (s[k] ??= []).push(v);
}

/**
 * Adds one thin run's samples. `extended`: B's "drive extended" records of the run's VM;
 * `answered`: B's "extend request answered" of its volume; `served`: A's "extend request
 * served" of its volume, for B's host id.
 */
export function addRunSamples(s: PhaseSamples, extended: Array<Record<string, unknown>>, answered: Array<Record<string, unknown>>, served: Array<Record<string, unknown>>): void {
  for (const r of extended) {
    const p = phasesOf(r);
    for (const k of ['wait', 'request', 'refresh', 'rearm', 'resume']) push(s, k, num(p[k]));
    push(s, 'roundtrip', num(r['totalMs']));
  }
  const servedById = new Map<unknown, Record<string, unknown>>();
  for (const r of served) {
    const p = phasesOf(r);
    push(s, 'spm_wait', num(p['wait']));
    push(s, 'extend', num(p['extend']));
    push(s, 'reply', num(p['reply']));
    servedById.set(r['requestId'], r);
  }
  for (const a of answered) {
    const total = num(a['totalMs']);
    const spmTotal = num(servedById.get(a['requestId'])?.['totalMs']);
    if (total !== undefined && spmTotal !== undefined) push(s, 'mailbox', Math.max(0, total - spmTotal));
  }
}

export function q(xs: readonly number[], p: number): number | null {
  return quantile([...xs].sort((a, b) => a - b), p);
}

export interface PhaseSummary { n: number; p50: number | null; p99: number | null; mean: number | null; max: number | null }

export function summarizePhases(s: PhaseSamples): Record<string, PhaseSummary> {
  const out: Record<string, PhaseSummary> = {};
  for (const [k] of PHASE_ROWS) {
    const xs = s[k] ?? [];
    out[k] = {
      n: xs.length,
      p50: xs.length ? round(q(xs, 0.5)!, 1) : null,
      p99: xs.length ? round(q(xs, 0.99)!, 1) : null,
      mean: xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length, 1) : null,
      max: xs.length ? round(Math.max(...xs), 1) : null,
    };
  }
  return out;
}
