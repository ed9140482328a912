// Health (answers without a certificate) and the OpenAPI document.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type {} from '@fastify/swagger'; // app.swagger()
import type { ApiContext } from '../context.js';
import { errors } from '../schemas.js';

export const VERSION = '0.1.0';

export function metaRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/health', { config: { public: true }, schema: { summary: 'Liveness and store reachability; no client certificate needed', tags: ['meta'], security: [],
      response: { 200: Type.Object({ status: Type.Literal('ok'), version: Type.String(), store: Type.String() }), 503: Type.Object({ status: Type.Literal('degraded'), version: Type.String(), store: Type.String(), error: Type.String() }) } } },
    async (_req, reply) => {
      try {
        await ctx.store.clusters.find('default');
        return { status: 'ok' as const, version: VERSION, store: ctx.store.engine };
      } catch (e) {
        return reply.code(503).send({ status: 'degraded' as const, version: VERSION, store: ctx.store.engine, error: (e as Error).message });
      }
    });

    app.get('/openapi.json', { schema: { summary: 'This API\'s OpenAPI 3 document', tags: ['meta'], response: { 200: Type.Object({}, { additionalProperties: true }), ...errors() } } },
      async () => app.swagger());
  };
}
