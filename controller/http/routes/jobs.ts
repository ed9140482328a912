// /jobs: the state of asynchronous actions.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Job, JobState } from '../../model/jobs.js';
import type { ApiContext } from '../context.js';
import { errors, IdParams } from '../schemas.js';

export function jobRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/jobs', { schema: { summary: 'Recent jobs, newest first', tags: ['jobs'],
      querystring: Type.Object({ state: Type.Optional(JobState), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false }),
      response: { 200: Type.Array(Job), ...errors(400) } } },
    async (req) => ctx.store.jobs.list({ state: req.query.state, limit: req.query.limit }));

    app.get('/jobs/:id', { schema: { summary: 'A job: state, steps, phase times, progress, error', tags: ['jobs'], params: IdParams, response: { 200: Job, ...errors(400, 404) } } },
      async (req) => ctx.store.jobs.get(req.params.id));
  };
}
