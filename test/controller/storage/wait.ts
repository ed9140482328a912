// Polling helpers for the controller's storage tests: every wait is bounded and says what it
// waited for when it gives up.
import type { Answer } from '../http/harness.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Calls `get` until `ok` holds for its answer (every `everyMs`), at most `ms`; returns that answer. */
export async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms: number, everyMs = 250): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await get();
      if (ok(last)) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) {
      throw new Error(`not within ${ms} ms: ${what}; last: ${last === undefined ? String(lastErr) : JSON.stringify(last).slice(0, 2000)}`);
    }
    await sleep(everyMs);
  }
}

type Caller = (method: string, path: string) => Promise<Answer>;

/** The job once it ended (succeeded or failed). */
export async function jobEnd(call: Caller, jobId: string, ms: number): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any -- a job as JSON
  const a = await until(`job ${jobId} ends`, () => call('GET', `/api/v1/jobs/${jobId}`), (r) => r.status === 200 && ['succeeded', 'failed'].includes(r.body.state), ms, 500);
  return a.body;
}

/** A job's outcome in one line, for test names. */
export function jobSummary(job: Record<string, any>): string { // eslint-disable-line @typescript-eslint/no-explicit-any -- a job as JSON
  const steps = (job.steps as Array<{ name: string; state: string; startedAt: number | null; endedAt: number | null }>)
    .map((s) => `${s.name} ${s.state}${s.endedAt && s.startedAt ? ` ${((s.endedAt - s.startedAt) / 1000).toFixed(1)} s` : ''}`).join(', ');
  return `${job.state}${job.error ? ` (${job.error.code}: ${job.error.message})` : ''}; steps: ${steps}`;
}
