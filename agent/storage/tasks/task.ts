// One SPM task in memory: its record, the record as last persisted (what
// the API shows), its abort controller and its progress.
import type { TaskRecord } from './record.js';

export class Task {
  readonly controller = new AbortController();
  done: Promise<void> = Promise.resolve();
  /** Percent done, for tasks that copy data; kept in memory only (a restarted task starts over or rolls back). */
  progress: number | undefined;
  /**
   * What the API reports: the record as last written. A state is shown only
   * once it is on the master domain, so nobody sees "finished" that a crash
   * could still turn into "interrupted, rolled back".
   */
  shown: TaskRecord;
  /** Cleared: nothing may write its record again. */
  cleared = false;
  /** Loaded unfinished at spmStart: only its recovery runs (a stop has nothing to stop). */
  loadedUnfinished = false;
  private saving: Promise<void> = Promise.resolve();
  private phaseStart = performance.now();
  constructor(readonly rec: TaskRecord) {
    this.shown = structuredClone(rec);
  }

  phase(name: string): void {
    const now = performance.now();
    this.rec.phases.push([name, Math.round((now - this.phaseStart) * 10) / 10]);
    this.phaseStart = now;
  }

  /** Persists a snapshot of the record, then shows it; saves of one task are written in order. */
  save(write: (r: TaskRecord) => Promise<void>): Promise<void> {
    const snapshot = structuredClone(this.rec);
    const p = this.saving.then(async () => {
      if (this.cleared) return;
      try {
        await write(snapshot);
      } finally {
        this.shown = snapshot; // a failed write is logged by the caller; the state is still reported
      }
    });
    this.saving = p.catch(() => {});
    return p;
  }

  /** Resolves once every save so far has ended. */
  idle(): Promise<void> {
    return this.saving;
  }
}
