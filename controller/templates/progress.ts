// The progress of a job that runs its tasks one after another: each task is an equal share of
// what lies between the start and the end margins (the steps before and after the tasks).

/** Percent of the whole job, given task `index` (0-based) of `count` at `taskPercent` (0..100). */
export function jobProgress(index: number, count: number, taskPercent: number, o: { from?: number; to?: number } = {}): number {
  const from = o.from ?? 5;
  const to = o.to ?? 95;
  if (count <= 0) return to;
  const done = Math.min(Math.max(index, 0), count);
  const within = Math.min(Math.max(taskPercent, 0), 100) / 100;
  const share = Math.min((done + within) / count, 1);
  return Math.round(from + (to - from) * share);
}
