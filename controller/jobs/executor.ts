// The job executor: takes pending jobs and runs each with the handler of its kind, recording
// every step (running, then succeeded or failed, with its times and host), the progress and the
// end. A job is persisted before and after each step, so a controller killed at any point finds
// it at its next start and runs the handler again with `resumed` set: handlers are written to
// check the real state (the agents', the store's) before each action, so nothing is done twice.
import type { Job, JobKind, JobStep } from '../model/jobs.js';
import type { Store } from '../store/store.js';
import { errorFields, noLog, type LogFn } from '../agents/log-fn.js';
import type { JobRunner } from './runner.js';
import { JobInterruptedError, JobNotSupportedError, jobErrorOf } from './job-failure.js';

export interface JobContext {
  /** the job as it was when this run began */
  readonly job: Job;
  /** a previous controller process ran this job before (its steps are in job.steps) */
  readonly resumed: boolean;
  readonly correlationId: string;
  /** aborted when the controller stops; long waits should give up on it */
  readonly signal: AbortSignal;
  /** the job's log: every line carries the job id, kind and correlation id */
  readonly log: LogFn;
  /** What an earlier step (or an earlier run) remembered with remember(). */
  memo<T = unknown>(key: string): T | undefined;
  /** Persists a value with the job, for a resumed run (the chosen host, an SPM task id). */
  remember(key: string, value: unknown): Promise<void>;
  /** Runs one named step and records it; its duration is logged. A step that throws fails the job. */
  step<T>(name: string, fn: () => Promise<T>, o?: { hostId?: string; detail?: string }): Promise<T>;
  progress(percent: number): Promise<void>;
  /**
   * Aborted when an operator cancels the job (POST /jobs/{id}/cancel; only kinds registered
   * cancellable), also when the cancel came before a controller restart. The handler stops its
   * work, rolls back and fails the job with code 'Cancelled'.
   */
  readonly cancelSignal: AbortSignal;
}

export type JobHandler = (ctx: JobContext) => Promise<void>;
export type JobHandlers = Partial<Record<JobKind, JobHandler>>;

export interface JobExecutorOptions {
  store: Store;
  handlers: JobHandlers;
  /** jobs run at once; more wait their turn (each is mostly waiting on agents) */
  maxConcurrent: number;
  log?: LogFn;
}

const MEMO = 'memo';
/** The memo key a cancel request is persisted under, so a resumed job still knows it. */
const CANCEL_MEMO = 'cancelRequested';

/** What cancel() did: told the running (or queued) handler, or refused it. */
export type CancelOutcome = 'requested' | 'notCancellable' | 'ended';
export const INTERRUPTED = 'interrupted: the controller stopped during this step; the resumed job checked the real state and went on';

export class JobExecutor implements JobRunner {
  private readonly queue: { job: Job; resumed: boolean }[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private readonly cancellable = new Set<JobKind>();
  /** each running job's cancel: aborts its cancelSignal after persisting the request */
  private readonly cancels = new Map<string, (reason: string) => Promise<void>>();
  private readonly log: LogFn;
  private closed = false;

  constructor(private readonly o: JobExecutorOptions) {
    this.log = o.log ?? noLog;
  }

  /** Handlers may be added after construction (parts that need the executor to exist). */
  register(kind: JobKind, handler: JobHandler, o: { cancellable?: boolean } = {}): void {
    this.o.handlers[kind] = handler;
    if (o.cancellable) this.cancellable.add(kind);
  }

  isCancellable(kind: JobKind): boolean {
    return this.cancellable.has(kind);
  }

  /**
   * Asks a job to stop and roll back. A running job's handler sees its cancelSignal; a job not yet
   * running gets the request persisted with it and meets it when it starts. The job ends through
   * its handler (failed, code 'Cancelled'), or succeeds if the work was past undoing.
   */
  async cancel(job: Job, reason: string): Promise<CancelOutcome> {
    if (!this.cancellable.has(job.kind)) return 'notCancellable';
    const running = this.cancels.get(job.id);
    if (running) { await running(reason); return 'requested'; }
    const now = await this.o.store.jobs.get(job.id);
    if (now.state === 'succeeded' || now.state === 'failed') return 'ended';
    const memo = { ...(now.params[MEMO] as Record<string, unknown> | undefined), [CANCEL_MEMO]: reason };
    const updated = await this.o.store.jobs.advance(job.id, { params: { ...now.params, [MEMO]: memo } });
    for (const q of this.queue) if (q.job.id === job.id) q.job = updated; // a queued run starts from this
    // It may have started meanwhile: tell the handler as well (its own copy of the memo is older).
    await this.cancels.get(job.id)?.(reason);
    return 'requested';
  }

  submit(job: Job): void {
    if (this.closed) return; // stays pending in the store: the next start resumes it
    this.queue.push({ job, resumed: false });
    this.pump();
  }

  async resume(unfinished: Job[]): Promise<void> {
    for (const job of unfinished) {
      this.log('info', 'resuming a job a previous controller left unfinished', { job: job.id, kind: job.kind, state: job.state, correlationId: job.correlationId });
      this.queue.push({ job, resumed: job.state === 'running' || job.steps.length > 0 });
    }
    this.pump();
  }

  /** Jobs running or waiting (for tests and the health answer). */
  get busy(): number {
    return this.queue.length + this.running.size;
  }

  /** Resolves when nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    this.abort.abort(new JobInterruptedError('the controller is stopping'));
    await Promise.allSettled([...this.running.values()]);
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.o.maxConcurrent && this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (this.running.has(next.job.id)) continue;
      const run = this.run(next.job, next.resumed).finally(() => {
        this.running.delete(next.job.id);
        this.pump();
      });
      this.running.set(next.job.id, run);
    }
  }

  private async run(initial: Job, resumed: boolean): Promise<void> {
    const { store } = this.o;
    const fields = { job: initial.id, kind: initial.kind, target: initial.targetId, correlationId: initial.correlationId };
    const log: LogFn = (level, msg, f) => this.log(level, msg, { ...fields, ...f });
    const started = performance.now();
    let steps: JobStep[] = [...initial.steps];
    let params = { ...initial.params };
    const handler = this.o.handlers[initial.kind];
    const cancelled = new AbortController();
    const ctx: JobContext = {
      job: initial,
      resumed,
      correlationId: initial.correlationId,
      signal: this.abort.signal,
      log,
      memo: <T>(key: string) => (params[MEMO] as Record<string, unknown> | undefined)?.[key] as T | undefined,
      remember: async (key, value) => {
        params = { ...params, [MEMO]: { ...(params[MEMO] as Record<string, unknown> | undefined), [key]: value } };
        await store.jobs.advance(initial.id, { params });
      },
      step: async (name, fn, so = {}) => {
        if (this.abort.signal.aborted) throw this.abort.signal.reason;
        const step: JobStep = { name, state: 'running', startedAt: Date.now(), endedAt: null, ...(so.hostId && { hostId: so.hostId }), ...(so.detail && { detail: so.detail }) };
        steps = [...steps, step];
        const index = steps.length - 1;
        await store.jobs.advance(initial.id, { steps });
        const t0 = performance.now();
        try {
          const out = await fn();
          steps = steps.map((s, i) => (i === index ? { ...s, state: 'succeeded' as const, endedAt: Date.now() } : s));
          await store.jobs.advance(initial.id, { steps });
          log('info', 'job step done', { step: name, ms: Math.round(performance.now() - t0), ...(so.hostId && { hostId: so.hostId }) });
          return out;
        } catch (e) {
          const interrupted = this.abort.signal.aborted;
          // A step cut short by our own stop stays "running": the next start resumes it.
          if (!interrupted) {
            steps = steps.map((s, i) => (i === index ? { ...s, state: 'failed' as const, endedAt: Date.now(), detail: jobErrorOf(e).message } : s));
            await store.jobs.advance(initial.id, { steps }).catch(() => undefined);
          }
          log(interrupted ? 'info' : 'warn', 'job step failed', { step: name, ms: Math.round(performance.now() - t0), ...errorFields(e) });
          throw e;
        }
      },
      progress: async (percent) => { await store.jobs.advance(initial.id, { progress: percent }); },
      cancelSignal: cancelled.signal,
    };
    const earlier = ctx.memo<string>(CANCEL_MEMO);
    if (earlier !== undefined) cancelled.abort(earlier);
    this.cancels.set(initial.id, async (reason) => {
      if (cancelled.signal.aborted) return;
      await ctx.remember(CANCEL_MEMO, reason);
      cancelled.abort(reason);
    });
    // Steps a killed controller left "running" did not finish here: say so, the resumed run repeats them.
    if (steps.some((s) => s.state === 'running')) {
      steps = steps.map((s) => (s.state === 'running' ? { ...s, state: 'failed' as const, endedAt: s.startedAt, detail: INTERRUPTED } : s));
    }
    try {
      await store.jobs.advance(initial.id, { state: 'running', steps });
      if (!handler) throw new JobNotSupportedError(initial.kind);
      log('info', resumed ? 'job resumed' : 'job started', {});
      await handler(ctx);
      this.cancels.delete(initial.id);
      await store.jobs.advance(initial.id, { state: 'succeeded' });
      await store.event({ kind: 'job.succeeded', subjectKind: 'job', subjectId: initial.id, correlationId: initial.correlationId,
        message: `${initial.kind} of ${initial.targetKind} ${initial.targetId} succeeded`, details: { kind: initial.kind, ms: Math.round(performance.now() - started) } });
      log('info', 'job succeeded', { ms: Math.round(performance.now() - started) });
    } catch (e) {
      this.cancels.delete(initial.id);
      if (this.abort.signal.aborted) {
        log('info', 'job interrupted by the controller stopping; resumed at the next start', {});
        return;
      }
      const error = jobErrorOf(e);
      log(error.code === 'Internal' ? 'error' : 'warn', 'job failed', { ms: Math.round(performance.now() - started), code: error.code, ...errorFields(e) });
      try {
        await store.jobs.advance(initial.id, { state: 'failed', error });
        await store.event({ kind: 'job.failed', subjectKind: 'job', subjectId: initial.id, correlationId: initial.correlationId,
          message: `${initial.kind} of ${initial.targetKind} ${initial.targetId} failed: ${error.message}`, details: { kind: initial.kind, code: error.code } });
      } catch (e2) {
        log('error', 'could not record the failure of a job', errorFields(e2));
      }
    }
  }
}
