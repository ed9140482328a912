// /hosts: the inventory, enrollment tokens, SPM priority.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Name } from '../../model/common.js';
import { Host, SpmPriority } from '../../model/hosts.js';
import type { Host as HostT } from '../../model/hosts.js';
import type { ApiContext } from '../context.js';
import { errors, IdParams, MUTATING_ERRORS } from '../schemas.js';

const HostView = Type.Composite([Host, Type.Object({
  spm: Type.Boolean({ description: 'this host is its cluster\'s SPM' }),
  vmCount: Type.Integer({ minimum: 0 }),
})]);

const Address = Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:-]+$', description: 'IP address or DNS name the controller reaches the agent at' });

const TokenRequest = Type.Object({
  name: Name,
  address: Address,
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'agent port (default 54321)' })),
  cluster: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'cluster id or name (default: default)' })),
  ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 7 * 24 * 3600, description: 'token lifetime (default 3600)' })),
}, { additionalProperties: false });

const TokenAnswer = Type.Object({
  token: Type.String({ description: 'give it to `hostvisor enroll --token`; shown once' }),
  tokenId: Type.String(),
  hostName: Name,
  clusterId: Type.String(),
  expiresAt: Type.Integer(),
  caFingerprint: Type.String({ description: 'SHA-256 of the controller CA certificate (also inside the token)' }),
});

export function hostRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;
  async function view(h: HostT) {
    const cluster = await store.clusters.get(h.clusterId);
    return { ...h, spm: cluster.spmHostId === h.id, vmCount: (await store.vms.list({ hostId: h.id })).length };
  }
  return async (app) => {
    app.get('/hosts', { schema: { summary: 'List hosts', tags: ['hosts'], response: { 200: Type.Array(HostView), ...errors() } } },
      async () => Promise.all((await store.hosts.list()).map(view)));

    app.get('/hosts/:id', { schema: { summary: 'One host: status, cluster, SPM role, address, last contact, use, VM count, reasons', tags: ['hosts'], params: IdParams, response: { 200: HostView, ...errors(400, 404) } } },
      async (req) => view(await store.hosts.get(req.params.id)));

    app.post('/hosts', { schema: { summary: 'Create a one-time enrollment token for a host', tags: ['hosts'], body: TokenRequest, response: { 201: TokenAnswer, ...errors(...MUTATING_ERRORS, 404, 409) } } },
      async (req, reply) => {
        const b = req.body;
        const issued = await ctx.enrollment.createToken({ hostName: b.name, address: b.address, port: b.port, cluster: b.cluster, ttlMs: b.ttlSeconds && b.ttlSeconds * 1000 }, req.id);
        reply.code(201);
        return { token: issued.token, tokenId: issued.record.id, hostName: b.name, clusterId: issued.record.clusterId, expiresAt: issued.record.expiresAt, caFingerprint: issued.caFingerprint };
      });

    app.patch('/hosts/:id', { schema: { summary: 'Change a host\'s SPM priority (-1 = never SPM)', tags: ['hosts'], params: IdParams,
      body: Type.Object({ spmPriority: SpmPriority }, { additionalProperties: false }), response: { 200: HostView, ...errors(...MUTATING_ERRORS, 404) } } },
    async (req) => {
      const h = await store.hosts.setSpmPriority(req.params.id, req.body.spmPriority);
      await store.event({ kind: 'host.updated', subjectKind: 'host', subjectId: h.id, correlationId: req.id, message: `host ${h.name}: spmPriority ${h.spmPriority}`, details: { spmPriority: h.spmPriority } });
      return view(h);
    });

    app.delete('/hosts/:id', { schema: { summary: 'Remove a host (refused while VMs run on it or are pinned to it)', tags: ['hosts'], params: IdParams, response: { 204: Type.Null(), ...errors(400, 404, 409) } } },
      async (req, reply) => {
        const h = await store.hosts.delete(req.params.id);
        ctx.hostsChanged?.();
        await store.event({ kind: 'host.deleted', subjectKind: 'host', subjectId: h.id, correlationId: req.id, message: `host ${h.name} removed`, details: { certFingerprint: h.certFingerprint } });
        return reply.code(204).send(null);
      });
  };
}
