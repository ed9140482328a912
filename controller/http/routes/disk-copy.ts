// POST /disks/{id}/copy and /disks/{id}/move: a disk copied (a new, independent disk) or moved
// (the same disk, on another domain) between the storage domains of its pool, file <-> block;
// each a cancellable job on the SPM whose progress is qemu-img's. Refused up front (409) while a
// VM that may be running uses the disk.
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Id, Name } from '../../model/common.js';
import { Job } from '../../model/jobs.js';
import type { Disk, StorageDomain } from '../../model/storage.js';
import type { Store } from '../../store/store.js';
import { ConflictError } from '../../store/errors.js';
import { assertDiskFree } from '../../storage/disk-use.js';
import type { DiskCopyParams, DiskMoveParams } from '../../storage/disk-copy-jobs.js';
import { acceptJob, type ApiContext } from '../context.js';
import { InvalidRequestError } from '../errors.js';
import { errors, IdParams, MUTATING_ERRORS } from '../schemas.js';

const Target = {
  storageDomainId: Type.String({ ...Id, description: 'the target storage domain, in the disk\'s pool (file or block)' }),
  bandwidthMiBs: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'MiB/s the copy may use (qemu-img convert -r), to spare shared storage; no limit when absent' })),
};

/** The target domain: another active domain of the disk's cluster. */
async function targetDomain(store: Store, disk: Disk, id: string): Promise<StorageDomain> {
  const to = await store.storageDomains.get(id, 'body.storageDomainId');
  const from = await store.storageDomains.get(disk.storageDomainId);
  if (to.clusterId !== from.clusterId) {
    throw new InvalidRequestError('body.storageDomainId', `storage domain ${to.name} is in another cluster than disk ${disk.name}'s domain ${from.name}`);
  }
  if (to.status !== 'active') throw new ConflictError(`storage domain ${to.name} is ${to.status}, not active`, { reason: 'DomainNotActive', storageDomainId: to.id, status: to.status });
  return to;
}

export function diskCopyRoutes(ctx: ApiContext): FastifyPluginAsyncTypebox {
  const { store } = ctx;
  return async (app) => {
    app.post('/disks/:id/copy', { schema: { summary: 'Copy a disk to a storage domain of its pool: a new, independent disk (its chain collapsed into one volume); '
      + 'a cancellable job on the SPM whose progress follows qemu-img. 409 (details.reason DiskInUse, naming the VM) while a VM that may be running uses the disk', tags: ['disks'],
    params: IdParams, body: Type.Object({ ...Target, name: Type.Optional(Name) }, { additionalProperties: false }),
    response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const src = await store.disks.get(req.params.id);
      const to = await targetDomain(store, src, req.body.storageDomainId);
      await assertDiskFree(store, src, 'copied');
      const name = req.body.name ?? `${src.name.slice(0, 59)}-copy`;
      const copy = await store.disks.create({ name, storageDomainId: to.id, sizeBytes: src.sizeBytes, provisioning: src.provisioning });
      await store.event({ kind: 'disk.created', subjectKind: 'disk', subjectId: copy.id, correlationId: req.id, message: `disk ${name}: a copy of disk ${src.name} on ${to.name}` });
      const params: DiskCopyParams = { sourceDiskId: src.id, storageDomainId: to.id, ...(req.body.bandwidthMiBs !== undefined && { bandwidthMiBs: req.body.bandwidthMiBs }) };
      return acceptJob(ctx, req, reply, { kind: 'disk.copy', targetKind: 'disk', targetId: copy.id, params: { ...params }, message: `copy disk ${src.name} to ${to.name} as ${name}` });
    });

    app.post('/disks/:id/move', { schema: { summary: 'Move a disk to another storage domain of its pool (its chain collapsed; the same image and volume ids; the source removed); '
      + 'a cancellable job on the SPM whose progress follows qemu-img. 409 (details.reason DiskInUse, naming the VM) while a VM that may be running uses the disk: '
      + 'live storage migration is not supported', tags: ['disks'],
    params: IdParams, body: Type.Object(Target, { additionalProperties: false }),
    response: { 202: Job, ...errors(...MUTATING_ERRORS, 404, 409) } } },
    async (req, reply) => {
      const disk = await store.disks.get(req.params.id);
      if (disk.storageDomainId === req.body.storageDomainId) throw new InvalidRequestError('body.storageDomainId', `disk ${disk.name} is on that storage domain already`);
      const to = await targetDomain(store, disk, req.body.storageDomainId);
      await assertDiskFree(store, disk, 'moved');
      // A move collapses the chain: the volumes a snapshot of the VM names would be gone.
      const snaps = disk.vmId === null ? [] : (await store.snapshots.list(disk.vmId)).filter((s) => s.disks.some((d) => d.diskId === disk.id));
      if (snaps.length > 0) {
        throw new ConflictError(`disk ${disk.name} has ${snaps.length} snapshot(s) of its VM: delete them before moving it (a move collapses the chain)`,
          { reason: 'DiskHasSnapshots', diskId: disk.id, snapshots: snaps.map((s) => s.id) });
      }
      const params: DiskMoveParams = { fromDomainId: disk.storageDomainId, storageDomainId: to.id, ...(req.body.bandwidthMiBs !== undefined && { bandwidthMiBs: req.body.bandwidthMiBs }) };
      return acceptJob(ctx, req, reply, { kind: 'disk.move', targetKind: 'disk', targetId: disk.id, params: { ...params }, message: `move disk ${disk.name} to ${to.name}` });
    });
  };
}
