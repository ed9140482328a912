// How jobs get run. The API records a job (pending) and submits it here; an executor that drives
// the agents takes it from pending to running to succeeded or failed. Until that executor exists
// the PendingJobRunner is the runner: it keeps every job pending and never claims it ran.
import type { Job } from '../model/jobs.js';

export interface JobRunner {
  /** Takes a job just recorded as pending. Must not throw: a failure is written to the job. */
  submit(job: Job): void;
  /** Called once at start with the jobs a previous controller left unfinished. */
  resume(unfinished: Job[]): Promise<void>;
  close(): Promise<void>;
  /** Asks a job of a cancellable kind to stop and roll back (the executor's; absent: nothing is cancellable). */
  cancel?(job: Job, reason: string): Promise<'requested' | 'notCancellable' | 'ended'>;
}

export class PendingJobRunner implements JobRunner {
  readonly submitted: Job[] = [];

  submit(job: Job): void {
    this.submitted.push(job);
  }

  async resume(unfinished: Job[]): Promise<void> {
    this.submitted.push(...unfinished);
  }

  async close(): Promise<void> {}
}
