// Enrollment, the only routes a host calls without a client certificate: it has none yet.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Id } from '../../model/common.js';
import type { ApiContext } from '../context.js';
import { errors } from '../schemas.js';

const MAX_CSR = 16 * 1024;

export function enrollRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/enroll/ca', { config: { public: true }, schema: { summary: 'The controller CA certificate; the host checks its SHA-256 against the token before trusting it', tags: ['enrollment'],
      security: [], response: { 200: Type.Object({ certificate: Type.String(), fingerprint: Type.String() }) } } },
    async () => ({ certificate: ctx.enrollment.caCertificate(), fingerprint: ctx.enrollment.caFingerprint() }));

    app.post('/enroll', { config: { public: true }, schema: { summary: 'A host presents its token and CSR and gets its agent certificate; the host is recorded Installing', tags: ['enrollment'],
      security: [], body: Type.Object({
        token: Type.String({ minLength: 1, maxLength: 256 }),
        csr: Type.String({ minLength: 1, maxLength: MAX_CSR, description: 'PEM certificate request; its key stays on the host' }),
      }, { additionalProperties: false }),
      response: {
        201: Type.Object({ hostId: Id, certificate: Type.String({ description: 'the agent certificate (PEM)' }), caCertificate: Type.String() }),
        ...errors(400, 409, 413, 415),
      } } },
    async (req, reply) => {
      const r = await ctx.enrollment.enroll(req.body, req.id);
      ctx.hostsChanged?.();
      reply.code(201);
      return { hostId: r.host.id, certificate: r.certificate, caCertificate: r.caCertificate };
    });
  };
}
