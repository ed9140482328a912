// /clusters: clusters, their scheduling policy, and who is SPM.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Cluster, Policy, Thresholds } from '../../model/clusters.js';
import { Name } from '../../model/common.js';
import type { ApiContext } from '../context.js';
import { ClusterParams, errors, MUTATING_ERRORS } from '../schemas.js';

const SpmView = Type.Object({
  clusterId: Type.String(),
  poolId: Type.Union([Type.String(), Type.Null()]),
  hostId: Type.Union([Type.String(), Type.Null()], { description: 'null until the controller has made a host SPM' }),
  hostName: Type.Union([Type.String(), Type.Null()]),
  lver: Type.Union([Type.Integer(), Type.Null()]),
});

export function clusterRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;
  return async (app) => {
    app.get('/clusters', { schema: { summary: 'List clusters', tags: ['clusters'], response: { 200: Type.Array(Cluster), ...errors() } } },
      async () => store.clusters.list());

    app.post('/clusters', { schema: { summary: 'Create a cluster', tags: ['clusters'],
      body: Type.Object({ name: Name, policy: Type.Optional(Policy), thresholds: Type.Optional(Thresholds) }, { additionalProperties: false }),
      response: { 201: Cluster, ...errors(...MUTATING_ERRORS, 409) } } },
    async (req, reply) => {
      const c = await store.clusters.create(req.body);
      await store.event({ kind: 'cluster.created', subjectKind: 'cluster', subjectId: c.id, correlationId: req.id, message: `cluster ${c.name} (${c.policy})` });
      reply.code(201);
      return c;
    });

    app.get('/clusters/:id', { schema: { summary: 'One cluster with its scheduling policy and thresholds', tags: ['clusters'], params: ClusterParams, response: { 200: Cluster, ...errors(404) } } },
      async (req) => store.clusters.get(req.params.id));

    app.patch('/clusters/:id', { schema: { summary: 'Change the scheduling policy (its defaults apply) and/or thresholds', tags: ['clusters'], params: ClusterParams,
      body: Type.Object({ policy: Type.Optional(Policy), thresholds: Type.Optional(Thresholds) }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: Cluster, ...errors(...MUTATING_ERRORS, 404) } } },
    async (req) => {
      const c = await store.clusters.update(req.params.id, req.body);
      await store.event({ kind: 'cluster.updated', subjectKind: 'cluster', subjectId: c.id, correlationId: req.id, message: `cluster ${c.name}: policy ${c.policy}`, details: { policy: c.policy, thresholds: c.thresholds } });
      return c;
    });

    app.get('/clusters/:id/spm', { schema: { summary: 'The cluster\'s SPM host and lease version', tags: ['clusters', 'storage'], params: ClusterParams, response: { 200: SpmView, ...errors(404) } } },
      async (req) => {
        const c = await store.clusters.get(req.params.id);
        const host = c.spmHostId ? await store.hosts.find(c.spmHostId) : undefined;
        return { clusterId: c.id, poolId: c.poolId, hostId: c.spmHostId, hostName: host?.name ?? null, lver: c.spmLver };
      });
  };
}
