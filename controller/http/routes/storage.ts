// Storage domains (set once per cluster) and disks on them. Creating either is an SPM job.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Id, Name } from '../../model/common.js';
import { Job } from '../../model/jobs.js';
import { Disk, DomainSpec, Provisioning, StorageDomain } from '../../model/storage.js';
import { acceptJob, type ApiContext } from '../context.js';
import { ClusterParams, errors, IdParams, MUTATING_ERRORS } from '../schemas.js';

const MAX_DISK_BYTES = 64 * 2 ** 40;

export function storageRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;
  return async (app) => {
    app.post('/clusters/:id/storage-domains', { schema: { summary: 'Add a storage domain to the cluster (the first becomes the pool master); a job', tags: ['storage'],
      params: ClusterParams, body: Type.Object({ name: Name, spec: DomainSpec }, { additionalProperties: false }),
      response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const cluster = await store.clusters.get(req.params.id);
      const d = await store.storageDomains.create({ clusterId: cluster.id, name: req.body.name, spec: req.body.spec });
      await store.event({ kind: 'storage-domain.created', subjectKind: 'storage-domain', subjectId: d.id, correlationId: req.id,
        message: `storage domain ${d.name} (${d.spec.type}${d.master ? ', pool master' : ''}) in cluster ${cluster.name}` });
      return acceptJob(ctx, req, reply, { kind: 'storage-domain.create', targetKind: 'storage-domain', targetId: d.id, params: { clusterId: cluster.id }, message: `create storage domain ${d.name}` });
    });

    app.get('/clusters/:id/storage-domains', { schema: { summary: 'The cluster\'s storage domains', tags: ['storage'], params: ClusterParams, response: { 200: Type.Array(StorageDomain), ...errors(404) } } },
      async (req) => store.storageDomains.list({ clusterId: (await store.clusters.get(req.params.id)).id }));

    app.get('/storage-domains/:id', { schema: { summary: 'One storage domain: size, free space, status per host', tags: ['storage'], params: IdParams, response: { 200: StorageDomain, ...errors(400, 404) } } },
      async (req) => store.storageDomains.get(req.params.id));

    app.post('/disks', { schema: { summary: 'Create a disk (one volume) on a storage domain; a job on the SPM', tags: ['disks'],
      body: Type.Object({
        name: Name,
        storageDomainId: Id,
        sizeBytes: Type.Integer({ minimum: 1024 * 1024, maximum: MAX_DISK_BYTES, multipleOf: 512, description: 'virtual size, a multiple of 512' }),
        provisioning: Type.Optional(Provisioning),
      }, { additionalProperties: false }),
      response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const domain = await store.storageDomains.get(req.body.storageDomainId, 'body.storageDomainId');
      const d = await store.disks.create({ name: req.body.name, storageDomainId: domain.id, sizeBytes: req.body.sizeBytes, provisioning: req.body.provisioning ?? 'thin' });
      await store.event({ kind: 'disk.created', subjectKind: 'disk', subjectId: d.id, correlationId: req.id, message: `disk ${d.name}: ${d.sizeBytes} bytes ${d.provisioning} on ${domain.name}` });
      return acceptJob(ctx, req, reply, { kind: 'disk.create', targetKind: 'disk', targetId: d.id, params: { storageDomainId: domain.id }, message: `create disk ${d.name}` });
    });

    app.get('/disks', { schema: { summary: 'List disks', tags: ['disks'], response: { 200: Type.Array(Disk), ...errors() } } },
      async () => store.disks.list());

    app.get('/disks/:id', { schema: { summary: 'One disk', tags: ['disks'], params: IdParams, response: { 200: Disk, ...errors(400, 404) } } },
      async (req) => store.disks.get(req.params.id));

    app.delete('/disks/:id', { schema: { summary: 'Delete a disk and its volume (refused while a VM names it); a job on the SPM', tags: ['disks'], params: IdParams,
      response: { 202: Job, ...errors(400, 404, 409) } } },
    async (req, reply) => {
      const d = await store.disks.markDeleting(req.params.id);
      return acceptJob(ctx, req, reply, { kind: 'disk.delete', targetKind: 'disk', targetId: d.id, params: {}, message: `delete disk ${d.name}` });
    });
  };
}
