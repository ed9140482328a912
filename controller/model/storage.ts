// Storage domains of a cluster (the first one becomes the pool master) and the disks on them.
import { Type, type Static } from '@sinclair/typebox';
import { Bytes, EpochMs, Id, Name, StringEnum } from './common.js';

// As the agent's StorageDomain.create takes it.
export const DomainSpec = Type.Union([
  Type.Object({
    type: Type.Literal('block'),
    devices: Type.Array(Type.String({ minLength: 1, pattern: '^/' }), { minItems: 1, maxItems: 8 }),
  }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('file'), root: Type.String({ minLength: 1, pattern: '^/' }) }, { additionalProperties: false }),
], { description: 'block: an LVM VG on these device paths (shared LUNs); file: a directory under this root' });
export type DomainSpec = Static<typeof DomainSpec>;

export const DOMAIN_STATUSES = ['pending', 'active', 'inactive', 'failed'] as const;
export const DomainStatus = StringEnum(DOMAIN_STATUSES);
export type DomainStatus = Static<typeof DomainStatus>;

export const PerHostStatus = Type.Record(Type.String(), Type.String(), { description: 'host id -> status on that host' });

export const StorageDomain = Type.Object({
  id: Id,
  clusterId: Id,
  name: Name,
  spec: DomainSpec,
  master: Type.Boolean(),
  status: DomainStatus,
  sizeBytes: Type.Union([Bytes, Type.Null()]),
  freeBytes: Type.Union([Bytes, Type.Null()]),
  hosts: PerHostStatus,
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type StorageDomain = Static<typeof StorageDomain>;

export const Provisioning = StringEnum(['thin', 'preallocated'] as const);
export type Provisioning = Static<typeof Provisioning>;
export const DISK_STATUSES = ['pending', 'ready', 'failed', 'deleting'] as const;
export const DiskStatus = StringEnum(DISK_STATUSES);
export type DiskStatus = Static<typeof DiskStatus>;

export const Disk = Type.Object({
  id: Id,
  name: Name,
  storageDomainId: Id,
  sizeBytes: Bytes,
  provisioning: Provisioning,
  status: DiskStatus,
  imageId: Id,
  volumeId: Id,
  vmId: Type.Union([Id, Type.Null()], { description: 'the VM whose spec names this disk' }),
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type Disk = Static<typeof Disk>;
