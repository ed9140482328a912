// A virtual clock with a timer queue: time moves only when the simulation says so, and timers
// fire in time order (ties in the order they were set), so a run is reproducible from its seed.

interface Timer { at: number; seq: number; fn: () => void }

export class FakeClock {
  private timers: Timer[] = [];
  private seq = 0;

  constructor(public now = 0) {}

  at(at: number, fn: () => void): void {
    this.timers.push({ at: Math.max(at, this.now), seq: this.seq++, fn });
  }

  after(ms: number, fn: () => void): void {
    this.at(this.now + ms, fn);
  }

  /** Runs every timer due up to `to` (including those they set), then sets the time to `to`. */
  runUntil(to: number, onAdvance: (t: number) => void = () => {}): void {
    for (let guard = 0; guard < 100_000; guard++) {
      let next: Timer | undefined;
      for (const t of this.timers) if (t.at <= to && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === undefined) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.now = next.at;
      onAdvance(this.now);
      next.fn();
    }
    this.now = to;
    onAdvance(to);
  }

  get pending(): number {
    return this.timers.length;
  }
}
