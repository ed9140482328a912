// Each host's utilisation over time, as the balancers read it: a bounded ring of the samples the
// health monitor's polls brought (CPU %, memory), and pure helpers that answer "has this held
// for the whole window?" and "what was the mean over it?". A balancer decides from a history,
// never from one sample: a host busy for one poll is not overloaded. A failed poll adds no
// sample, so a gap in the samples is unknown time and breaks a run (unknown is never "still over").
import type { HealthObservation } from '../monitor/observation-sink.js';

export interface UtilSample {
  /** when the agent answered the poll (ms since the epoch) */
  at: number;
  /** host CPU in use, % of all its CPUs (user + system) */
  cpuPct: number;
  memTotalMiB: number;
  /** memory the host could still give (MemAvailable) */
  memFreeMiB: number;
}

/** The sample a health observation carries, or null when the poll got no stats. */
export function sampleOf(o: HealthObservation): UtilSample | null {
  const s = o.stats;
  const at = o.host.lastContactAt;
  if (s === null || at === null) return null;
  return { at, cpuPct: Math.round((s.cpuUser + s.cpuSys) * 10) / 10, memTotalMiB: s.memTotal, memFreeMiB: s.memAvailable };
}

/** One host's samples, oldest first, at most `capacity` of them. */
export class SampleRing {
  private readonly buf: UtilSample[] = [];
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive whole number, got ${capacity}`);
  }

  /** Adds a sample; one older than the newest is dropped (observations arrive in order; a late one is stale). */
  push(s: UtilSample): void {
    const last = this.buf[this.buf.length - 1];
    if (last !== undefined && s.at < last.at) return;
    this.buf.push(s);
    if (this.buf.length > this.capacity) this.buf.splice(0, this.buf.length - this.capacity);
  }

  samples(): readonly UtilSample[] {
    return this.buf;
  }

  get size(): number {
    return this.buf.length;
  }
}

/** Every host's ring; fed from the health monitor's observations. */
export class UtilHistory {
  private readonly rings = new Map<string, SampleRing>();
  constructor(private readonly capacity: number) {}

  record(hostId: string, s: UtilSample): void {
    let r = this.rings.get(hostId);
    if (r === undefined) { r = new SampleRing(this.capacity); this.rings.set(hostId, r); }
    r.push(s);
  }

  observe(o: HealthObservation): void {
    const s = sampleOf(o);
    if (s !== null) this.record(o.host.hostId, s);
  }

  of(hostId: string): readonly UtilSample[] {
    return this.rings.get(hostId)?.samples() ?? [];
  }

  forget(hostId: string): void {
    this.rings.delete(hostId);
  }

  /** Forgets the hosts not in `hostIds` (deleted), so the rings stay bounded by the hosts there are. */
  retain(hostIds: ReadonlySet<string>): void {
    for (const id of [...this.rings.keys()]) if (!hostIds.has(id)) this.rings.delete(id);
  }

  /** A copy of every host's samples: what one balancing decision is given. */
  snapshot(): Map<string, readonly UtilSample[]> {
    return new Map([...this.rings].map(([id, r]) => [id, [...r.samples()]]));
  }
}

/**
 * How long `pred` has held without a break up to `now`, in ms: from the first sample of the
 * newest unbroken run of samples that satisfy it. 0 when the newest sample fails it, when it is
 * older than `maxGapMs` (the host is not being heard), or when there is no sample. Two samples
 * further apart than `maxGapMs` break the run: what happened between them is unknown.
 */
export function heldFor(samples: readonly UtilSample[], pred: (s: UtilSample) => boolean, now: number, maxGapMs: number): number {
  const n = samples.length;
  const newest = samples[n - 1];
  if (newest === undefined || now - newest.at > maxGapMs || !pred(newest)) return 0;
  let start = newest;
  for (let i = n - 2; i >= 0; i--) {
    const s = samples[i]!;
    if (start.at - s.at > maxGapMs || !pred(s)) break;
    start = s;
  }
  return now - start.at;
}

/** `pred` held for at least `durationMs` up to `now` (see heldFor). */
export function heldThroughout(samples: readonly UtilSample[], pred: (s: UtilSample) => boolean, now: number, durationMs: number, maxGapMs: number): boolean {
  return heldFor(samples, pred, now, maxGapMs) >= durationMs;
}

/**
 * The mean of `f` over the samples of the last `windowMs`, or null when the host has no fresh
 * sample (none in the window, or the newest older than `maxGapMs`): an unheard host's load is
 * unknown, and a host of unknown load is no destination.
 */
export function windowMean(samples: readonly UtilSample[], f: (s: UtilSample) => number, now: number, windowMs: number, maxGapMs: number): number | null {
  const newest = samples[samples.length - 1];
  if (newest === undefined || now - newest.at > maxGapMs) return null;
  let sum = 0;
  let count = 0;
  for (let i = samples.length - 1; i >= 0; i--) {
    const s = samples[i]!;
    if (now - s.at > windowMs) break;
    sum += f(s);
    count++;
  }
  return count === 0 ? null : sum / count;
}
