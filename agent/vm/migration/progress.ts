// Migration progress from libvirt's job stats, as VDSM computes it:
// 100 - 100 × remaining / total, never going down, held at 99 until libvirt
// says the job ended.
import { toNumber, type TypedParamsRecord } from '../../libvirt/index.js';

export interface JobSample {
  progress: number;
  dataRemaining?: number;
  dataTotal?: number;
  memoryIteration?: number;
}

export class ProgressTracker {
  private last = 0;

  get value(): number { return this.last; }

  /** Folds one job-stats sample in; the progress it returns never goes down and stays below 100. */
  update(stats: TypedParamsRecord): JobSample {
    const total = toNumber(stats['data_total']);
    const remaining = toNumber(stats['data_remaining']);
    const iteration = toNumber(stats['memory_iteration']);
    if (Number.isFinite(total) && total > 0 && Number.isFinite(remaining)) {
      const pct = Math.floor(100 - (100 * Math.max(0, remaining)) / total);
      this.last = Math.max(this.last, Math.min(99, Math.max(0, pct)));
    }
    const s: JobSample = { progress: this.last };
    if (Number.isFinite(remaining)) s.dataRemaining = remaining;
    if (Number.isFinite(total)) s.dataTotal = total;
    if (Number.isFinite(iteration)) s.memoryIteration = iteration;
    return s;
  }

  done(): number {
    this.last = 100;
    return this.last;
  }
}
