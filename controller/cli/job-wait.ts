// `jobs wait`: polls a job until it ends or the time is up, drawing a progress bar on a terminal
// (one line per change otherwise, so a log stays readable).
import type { Job } from '../model/jobs.js';
import type { ApiClient } from './api-client.js';

const POLL_MS = 500;
const BAR_WIDTH = 30;

export function progressBar(job: Pick<Job, 'state' | 'progress' | 'steps'>): string {
  const filled = Math.round((job.progress / 100) * BAR_WIDTH);
  const step = [...job.steps].reverse().find((s) => s.state === 'running')?.name ?? job.steps.at(-1)?.name ?? '';
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(job.progress).padStart(3)}% ${job.state}${step ? ` (${step})` : ''}`;
}

export type WaitOutcome = { job: Job; timedOut: boolean };

export async function waitForJob(client: ApiClient, id: string, o: { timeoutMs: number; out: NodeJS.WritableStream & { isTTY?: boolean } }): Promise<WaitOutcome> {
  const deadline = Date.now() + o.timeoutMs;
  let last = '';
  for (;;) {
    const job = await client.call<Job>('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
    const line = progressBar(job);
    if (line !== last) {
      o.out.write(o.out.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
    const ended = job.state === 'succeeded' || job.state === 'failed';
    if (ended || Date.now() >= deadline) {
      if (o.out.isTTY) o.out.write('\n');
      return { job, timedOut: !ended };
    }
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}
