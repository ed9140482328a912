// Jobs: created pending by the API, advanced by the executor. Every state change goes through
// `advance`, which refuses to move a job that already ended.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { TERMINAL_JOB_STATES, type Job, type JobError, type JobKind, type JobState, type JobStep } from '../../model/jobs.js';
import { found, json, parseJson } from '../codec.js';
import { ConflictError } from '../errors.js';
import type { Database, JobRow } from '../tables.js';

function toJob(r: Selectable<JobRow>): Job {
  return {
    id: r.id, kind: r.kind as JobKind, targetKind: r.target_kind, targetId: r.target_id, state: r.state as JobState,
    params: parseJson<Record<string, unknown>>(r.params, {}), steps: parseJson<JobStep[]>(r.steps, []), progress: r.progress,
    error: parseJson<JobError | null>(r.error, null), correlationId: r.correlation_id,
    createdAt: r.created_at, startedAt: r.started_at, endedAt: r.ended_at, updatedAt: r.updated_at,
  };
}

export interface NewJob {
  kind: JobKind;
  targetKind: string;
  targetId: string;
  params?: Record<string, unknown>;
  correlationId: string;
}

export interface JobProgress {
  state?: JobState;
  /** the job's parameters with what its handler remembered for a resumed run */
  params?: Record<string, unknown>;
  steps?: JobStep[];
  progress?: number;
  error?: JobError | null;
}

export class JobsRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  async create(j: NewJob): Promise<Job> {
    const t = this.now();
    const row: JobRow = {
      id: randomUUID(), kind: j.kind, target_kind: j.targetKind, target_id: j.targetId, state: 'pending', params: json(j.params ?? {}),
      steps: '[]', progress: 0, error: null, correlation_id: j.correlationId, created_at: t, started_at: null, ended_at: null, updated_at: t,
    };
    await this.db.insertInto('jobs').values(row).execute();
    return toJob(row);
  }

  async find(id: string): Promise<Job | undefined> {
    const r = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toJob(r);
  }

  async get(id: string): Promise<Job> {
    return found(await this.find(id), 'job', id);
  }

  async list(filter: { state?: JobState; targetId?: string; limit?: number } = {}): Promise<Job[]> {
    let q = this.db.selectFrom('jobs').selectAll().orderBy('created_at', 'desc').orderBy('id').limit(filter.limit ?? 100);
    if (filter.state) q = q.where('state', '=', filter.state);
    if (filter.targetId) q = q.where('target_id', '=', filter.targetId);
    return (await q.execute()).map(toJob);
  }

  /** Jobs not yet ended, oldest first: what a restarted controller resumes or fails. */
  async unfinished(): Promise<Job[]> {
    const rows = await this.db.selectFrom('jobs').selectAll().where('state', 'in', ['pending', 'running']).orderBy('created_at').orderBy('id').execute();
    return rows.map(toJob);
  }

  /** The unfinished job of this kind on this target, if any (one start of a VM at a time). */
  async activeFor(targetId: string, kinds: JobKind[]): Promise<Job | undefined> {
    const r = await this.db.selectFrom('jobs').selectAll().where('target_id', '=', targetId).where('kind', 'in', kinds)
      .where('state', 'in', ['pending', 'running']).executeTakeFirst();
    return r && toJob(r);
  }

  /** Records progress; entering running stamps startedAt, entering an end state stamps endedAt. */
  async advance(id: string, p: JobProgress): Promise<Job> {
    const job = await this.get(id);
    if (TERMINAL_JOB_STATES.includes(job.state)) throw new ConflictError(`job ${id} already ${job.state}`, { state: job.state });
    const t = this.now();
    const state = p.state ?? job.state;
    await this.db.updateTable('jobs').set({
      state,
      ...(p.steps !== undefined && { steps: json(p.steps) }),
      ...(p.params !== undefined && { params: json(p.params) }),
      ...(p.progress !== undefined && { progress: Math.max(0, Math.min(100, Math.round(p.progress))) }),
      ...(p.error !== undefined && { error: p.error && json(p.error) }),
      ...(state === 'running' && job.startedAt === null && { started_at: t }),
      ...(TERMINAL_JOB_STATES.includes(state) && { ended_at: t, ...(job.startedAt === null && { started_at: t }) }),
      ...(state === 'succeeded' && { progress: 100 }),
      updated_at: t,
    }).where('id', '=', id).where('state', 'in', ['pending', 'running']).execute();
    return this.get(id);
  }
}
