// Storage verbs: domains, the pool and the SPM, volumes and images (VDSM's names).
import { Type } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Empty, Uuid } from '../types.js';
import { PoolInfo, RepoStats } from '../storage.js';
import { TaskID, TaskIdParam } from '../tasks.js';

const DomainSpecT = Type.Union([
  Type.Object({ type: Type.Literal('block'), devices: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 8 }) }),
  Type.Object({ type: Type.Literal('file'), root: Type.String({ minLength: 1 }) }),
], { description: 'block: an LVM VG on these device paths (shared LUNs); file: a directory under this root (local, NFS, POSIX)' });
export const VolumeInfoT = Type.Object({
  uuid: Uuid, domain: Uuid, image: Uuid, parent: Type.String(), capacity: Type.Number(), format: Type.String(), type: Type.String(),
  voltype: Type.String(), disktype: Type.String(), description: Type.String(), legality: Type.String(), generation: Type.Integer(),
  ctime: Type.Number(), apparentsize: Type.Number(), truesize: Type.Number(),
});
const SdParams = { storagepoolID: Type.Optional(Uuid), storagedomainID: Uuid };
// SPM verbs answer at once with a task (persisted on the master domain); these are the errors of the call itself.
const SPM_TASK_ERRORS = ['unavailable', 'storageDomainDoesNotExist', 'addTaskError', 'taskPersistError', 'invalidParams'] as const;
const TASK_NOTE = ' Answers at once with {taskID}; poll Task.getStatus, read the result with Task.getInfo, then Task.clear. The task may end with ';

export const STORAGE_METHODS = {
  'StorageDomain.create': method({
    summary: 'Creates a storage domain (file: a directory; block: a VG on the given devices) with its lease area and mailbox.',
    params: Type.Object({ storagedomainID: Uuid, spec: DomainSpecT, description: Type.Optional(Type.String({ maxLength: 210 })) }),
    result: Type.Object({ storagedomainID: Uuid }), errors: ['storageDomainAlreadyExists', 'storageCommandFailed', 'invalidParams'], since: '0.3', mutating: true,
  }),
  'StorageDomain.getInfo': method({
    summary: "The domain's metadata: type, class, version, location.", params: Type.Object(SdParams),
    result: Type.Record(Type.String(), Type.Unknown()), errors: ['storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'StorageDomain.getStats': method({
    summary: 'Size and free space.', params: Type.Object(SdParams),
    result: Type.Object({ sdUUID: Uuid, totalBytes: Type.Number(), freeBytes: Type.Number(), volumeCount: Type.Integer() }),
    errors: ['storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'StorageDomain.getImages': method({
    summary: "The domain's images.", params: Type.Object(SdParams), result: Type.Object({ images: Type.Array(Uuid) }),
    errors: ['storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'StorageDomain.getVolumes': method({
    summary: "The domain's volumes (of one image, if given).", params: Type.Object({ ...SdParams, imageID: Type.Optional(Uuid) }),
    result: Type.Object({ volumes: Type.Array(Uuid) }), errors: ['storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'StoragePool.connect': method({
    summary: 'Joins the pool: opens its domains, takes this host id in the master domain\'s lockspace, starts this host\'s mailbox. '
      + 'Already connected to this pool: domains not yet in it are attached (opened and monitored); 40 when connected to another pool.',
    params: Type.Object({
      storagepoolID: Uuid, hostID: Type.Integer({ minimum: 1, maximum: 250 }), masterSdUUID: Uuid,
      masterVersion: Type.Optional(Type.Integer({ minimum: 0, description: 'the master version the engine knows (default 1); reported by getInfo' })),
      domains: Type.Record(Type.String(), DomainSpecT),
    }),
    result: Empty, errors: ['unavailable', 'storageDomainDoesNotExist', 'invalidParams'], since: '0.3', mutating: true,
  }),
  'StoragePool.disconnect': method({
    summary: 'Leaves the pool (stops being SPM first). 309 unless connected to this pool.', params: Type.Object({ storagepoolID: Uuid }), result: Empty,
    errors: ['storagePoolUnknown'], since: '0.3', mutating: true,
  }),
  'StoragePool.getInfo': method({
    summary: "The pool as this host sees it: master domain and version, this host's id, the SPM lease holder and version, each domain's status from its monitor, with sizes. Refused with 309 unless connected to this pool.",
    params: Type.Object({ storagepoolID: Uuid }), result: PoolInfo, errors: ['storagePoolUnknown'], since: '0.3', mutating: false,
  }),
  'StoragePool.getSpmStatus': method({
    summary: "Who holds the SPM lease, from the lease itself (read within storage.monitorReadTimeoutMs). spmStatus is this host's role: SPM, Contend "
      + '(its spmStart is running) or Free; spmId/spmLver name the holder (-1 when nobody holds it). A lease that cannot be read is an error (379, or 1002 '
      + 'when it did not answer in time), never Free, unless this host is the SPM. 309 unless connected to this pool.',
    params: Type.Object({ storagepoolID: Uuid }),
    result: Type.Object({ spmStatus: Type.Union([Type.Literal('Free'), Type.Literal('SPM'), Type.Literal('Contend')]), spmId: Type.Integer(), spmLver: Type.Integer() }),
    errors: ['storagePoolUnknown', 'storageDomainAccessError', 'timeout'], since: '0.3', mutating: false,
  }),
  'StoragePool.spmStart': method({
    summary: 'Takes the SPM lease (fails with 40 when another host holds it); the lease version grows by one. 309 unless connected to this pool.',
    params: Type.Object({ storagepoolID: Uuid }), result: Type.Object({ spmLver: Type.Integer() }),
    errors: ['unavailable', 'storagePoolUnknown'], since: '0.3', mutating: true,
  }),
  'StoragePool.spmStop': method({
    summary: 'Releases the SPM lease. 309 unless connected to this pool.', params: Type.Object({ storagepoolID: Uuid }), result: Empty,
    errors: ['storagePoolUnknown'], since: '0.3', mutating: true,
  }),
  'Volume.create': method({
    summary: 'SPM only, a task. Creates a volume: COW (qcow2) or RAW, sparse or preallocated, optionally on a parent (a snapshot). A failed, stopped or '
      + 'interrupted create leaves no volume behind.' + TASK_NOTE + '212, 202, 231, 232, 397, 1008, 1002, 411 (stopped), 1011 (interrupted by a restart).',
    params: Type.Object({
      ...SdParams, ...TaskIdParam, imageID: Uuid, volumeID: Uuid,
      size: Type.Integer({ minimum: 1, description: 'virtual size, bytes' }),
      volFormat: Type.Union([Type.Literal('COW'), Type.Literal('RAW')]),
      preallocate: Type.Union([Type.Literal('SPARSE'), Type.Literal('PREALLOCATED')]),
      srcVolUUID: Type.Optional(Uuid), description: Type.Optional(Type.String({ maxLength: 210 })),
      srcImgUUID: Type.Optional(Type.String({ pattern: Uuid.pattern, description: 'a thin clone: srcVolUUID is a SHARED (template) volume of this other image in the same domain (214 if it is not SHARED)' })),
      initialSize: Type.Optional(Type.Integer({ minimum: 1, description: 'block COW sparse: first LV size, bytes' })),
    }),
    result: TaskID, errors: SPM_TASK_ERRORS, since: '0.3', mutating: true,
  }),
  'Volume.delete': method({
    summary: 'SPM only, a task. Deletes a volume without children.' + TASK_NOTE + '201, 204, 1008, 411, 1011.',
    params: Type.Object({ ...SdParams, ...TaskIdParam, imageID: Uuid, volumeID: Uuid }),
    result: TaskID, errors: SPM_TASK_ERRORS, since: '0.3', mutating: true,
  }),
  'Volume.getInfo': method({
    summary: "A volume's metadata and sizes.", params: Type.Object({ ...SdParams, imageID: Uuid, volumeID: Uuid }),
    result: VolumeInfoT, errors: ['volumeDoesNotExist', 'storageDomainDoesNotExist'], since: '0.3', mutating: false,
  }),
  'Volume.getSize': method({
    summary: "A volume's apparent and true size.", params: Type.Object({ ...SdParams, imageID: Uuid, volumeID: Uuid }),
    result: Type.Object({ apparentsize: Type.Number(), truesize: Type.Number() }), errors: ['volumeDoesNotExist'], since: '0.3', mutating: false,
  }),
  'Volume.extendSize': method({
    summary: 'SPM only, a task. Grows the virtual size.' + TASK_NOTE + '201, 232, 397, 1008, 411, 1011.',
    params: Type.Object({ ...SdParams, ...TaskIdParam, imageID: Uuid, volumeID: Uuid, newSize: Type.Integer({ minimum: 1 }) }),
    result: TaskID, errors: SPM_TASK_ERRORS, since: '0.3', mutating: true,
  }),
  'Image.prepare': method({
    summary: 'Activates every volume of the image on this host; returns the leaf path and the chain.',
    params: Type.Object({ ...SdParams, imageID: Uuid, volumeID: Type.Optional(Uuid) }),
    result: Type.Object({ path: Type.String(), chain: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
    errors: ['imageDoesNotExist', 'prepareIllegalVolume', 'storageCommandFailed'], since: '0.3', mutating: true,
  }),
  'Image.teardown': method({
    summary: "Deactivates the image's volumes on this host.", params: Type.Object({ ...SdParams, imageID: Uuid }), result: Empty,
    errors: ['storageCommandFailed'], since: '0.3', mutating: true,
  }),
  'Image.delete': method({
    summary: 'SPM only, a task. Deletes every volume of the image, children first (a stop takes effect between volumes).' + TASK_NOTE + '204, 1008, 411, 1011.',
    params: Type.Object({ ...SdParams, ...TaskIdParam, imageID: Uuid }), result: TaskID,
    errors: SPM_TASK_ERRORS, since: '0.3', mutating: true,
  }),
} as const satisfies Record<string, MethodDef>;

export const STORAGE_HOST_METHODS = {
  'Host.getStorageRepoStats': method({
    summary: "Each connected domain's monitor: whether its metadata was readable at the last check (an O_DIRECT read every storage.monitorIntervalMs), the read's delay, seconds since that check, whether this host's id is acquired in its lockspace. Any connected host (not only the SPM); {} when not connected.",
    params: Type.Object({ domains: Type.Optional(Type.Array(Uuid, { maxItems: 100, description: 'only these domains (default: all monitored)' })) }),
    result: RepoStats, errors: [], since: '0.3', mutating: false,
  }),
} as const satisfies Record<string, MethodDef>;

