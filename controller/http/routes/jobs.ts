// /jobs: the state of asynchronous actions, and the cancel of those that can roll back.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Job, JobState, TERMINAL_JOB_STATES } from '../../model/jobs.js';
import { ConflictError } from '../../store/errors.js';
import type { ApiContext } from '../context.js';
import { errors, IdParams, MUTATING_ERRORS } from '../schemas.js';

export function jobRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/jobs', { schema: { summary: 'Recent jobs, newest first', tags: ['jobs'],
      querystring: Type.Object({ state: Type.Optional(JobState), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false }),
      response: { 200: Type.Array(Job), ...errors(400) } } },
    async (req) => ctx.store.jobs.list({ state: req.query.state, limit: req.query.limit }));

    app.get('/jobs/:id', { schema: { summary: 'A job: state, steps, phase times, progress, error', tags: ['jobs'], params: IdParams, response: { 200: Job, ...errors(400, 404) } } },
      async (req) => ctx.store.jobs.get(req.params.id));

    app.post('/jobs/:id/cancel', { schema: { summary: 'Cancel a job that can roll back (disk.copy, disk.move): its work is stopped and undone, and it ends failed with code Cancelled '
      + '(or succeeds, when the cancel came after the point of no return). 409 with details.reason JobNotCancellable or JobEnded otherwise', tags: ['jobs'],
    params: IdParams, response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const job = await ctx.store.jobs.get(req.params.id);
      const ended = () => new ConflictError(`job ${job.id} (${job.kind}) has ended: ${job.state}`, { reason: 'JobEnded', state: job.state });
      if (TERMINAL_JOB_STATES.includes(job.state)) throw ended();
      const outcome = ctx.jobs.cancel ? await ctx.jobs.cancel(job, `cancelled by request ${req.id}`) : 'notCancellable';
      if (outcome === 'notCancellable') throw new ConflictError(`jobs of kind ${job.kind} cannot be cancelled`, { reason: 'JobNotCancellable', kind: job.kind });
      if (outcome === 'ended') throw ended();
      await ctx.store.event({ kind: 'job.cancel-requested', subjectKind: 'job', subjectId: job.id, correlationId: req.id,
        message: `cancel of ${job.kind} of ${job.targetKind} ${job.targetId} requested`, details: { kind: job.kind } });
      void reply.code(202);
      return ctx.store.jobs.get(job.id);
    });
  };
}
