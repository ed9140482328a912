// Cluster networks: applied to every host (Host.setupNetworks, then setSafeNetworkConfig) by a job.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Job } from '../../model/jobs.js';
import { ANY_HOST, DEFAULT_MTU, NetName, Network } from '../../model/networks.js';
import { NotFoundError } from '../../store/errors.js';
import { acceptJob, type ApiContext } from '../context.js';
import { ClusterParams, errors, IdParams, MUTATING_ERRORS } from '../schemas.js';

const NicMap = Type.Record(Type.String(), NetName, { description: `host id or name -> the nic (or bond) the network goes on; "${ANY_HOST}" -> the nic of every host not named (hosts enrolled later included)` });

const NetworkRequest = Type.Object({
  name: NetName,
  vlan: Type.Optional(Type.Integer({ minimum: 1, maximum: 4094 })),
  mtu: Type.Optional(Type.Integer({ minimum: 68, maximum: 9216, default: DEFAULT_MTU })),
  bridged: Type.Optional(Type.Boolean({ default: true })),
  required: Type.Optional(Type.Boolean({ default: false, description: 'a host without it becomes NonOperational' })),
  nics: NicMap,
}, { additionalProperties: false });

const NetworkChange = Type.Object({
  nics: Type.Optional(Type.Record(Type.String(), NetName, { description: `host id or name (or "${ANY_HOST}") -> its nic; merged into the map (a host enrolled later, a nic corrected)` })),
  required: Type.Optional(Type.Boolean({ description: 'a host without it becomes NonOperational' })),
}, { additionalProperties: false, minProperties: 1 });

/** The nic map with every host named by its id ('*' kept); 404 naming the entry for a host not in the cluster. */
async function nicsByHostId(ctx: ApiContext, clusterId: string, byRef: Record<string, string>): Promise<Record<string, string>> {
  const hosts = await ctx.store.hosts.list({ clusterId });
  const nics: Record<string, string> = {};
  for (const [ref, nic] of Object.entries(byRef)) {
    if (ref === ANY_HOST) { nics[ANY_HOST] = nic; continue; }
    const host = hosts.find((h) => h.id === ref || h.name === ref);
    if (!host) throw new NotFoundError('host in this cluster', ref, `body.nics.${ref}`);
    nics[host.id] = nic;
  }
  return nics;
}

export function networkRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;
  return async (app) => {
    app.post('/clusters/:id/networks', { schema: { summary: 'Add a network to the cluster and apply it to its hosts; a job', tags: ['networks'],
      params: ClusterParams, body: NetworkRequest, response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const cluster = await store.clusters.get(req.params.id);
      const nics = await nicsByHostId(ctx, cluster.id, req.body.nics);
      const b = req.body;
      const n = await store.networks.create({ clusterId: cluster.id, name: b.name, vlan: b.vlan ?? null, mtu: b.mtu ?? DEFAULT_MTU, bridged: b.bridged ?? true, required: b.required ?? false, nics });
      await store.event({ kind: 'network.created', subjectKind: 'network', subjectId: n.id, correlationId: req.id,
        message: `network ${n.name} in cluster ${cluster.name}${n.required ? ' (required)' : ''} on ${ANY_HOST in nics ? 'every host' : `${Object.keys(nics).length} host(s)`}` });
      return acceptJob(ctx, req, reply, { kind: 'network.apply', targetKind: 'network', targetId: n.id, params: { clusterId: cluster.id }, message: `apply network ${n.name}` });
    });

    app.get('/clusters/:id/networks', { schema: { summary: 'The cluster\'s networks', tags: ['networks'], params: ClusterParams, response: { 200: Type.Array(Network), ...errors(404) } } },
      async (req) => store.networks.list({ clusterId: (await store.clusters.get(req.params.id)).id }));

    app.patch('/networks/:id', { schema: { summary: 'Change a network\'s nic map or whether it is required, and apply it again to its hosts; a job', tags: ['networks'],
      params: IdParams, body: NetworkChange, response: { 202: Job, ...errors(...MUTATING_ERRORS, 404) } } },
    async (req, reply) => {
      const old = await store.networks.get(req.params.id);
      const nics = req.body.nics === undefined ? undefined : await nicsByHostId(ctx, old.clusterId, req.body.nics);
      const n = await store.networks.update(old.id, { ...(nics !== undefined && { nics }), ...(req.body.required !== undefined && { required: req.body.required }) });
      await store.event({ kind: 'network.updated', subjectKind: 'network', subjectId: n.id, correlationId: req.id,
        message: `network ${n.name}${nics ? `: nics ${Object.entries(nics).map(([h, nic]) => `${h}=${nic}`).join(', ')}` : ''}${req.body.required !== undefined ? `; required ${n.required}` : ''}`,
        details: { ...(nics && { nics }), ...(req.body.required !== undefined && { required: n.required }) } });
      return acceptJob(ctx, req, reply, { kind: 'network.apply', targetKind: 'network', targetId: n.id, params: { clusterId: n.clusterId }, message: `apply network ${n.name} again` });
    });

    app.get('/networks/:id', { schema: { summary: 'One network, with its status per host', tags: ['networks'], params: IdParams, response: { 200: Network, ...errors(400, 404) } } },
      async (req) => store.networks.get(req.params.id));
  };
}
