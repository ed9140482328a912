// A template: the disks of a stopped VM, each chain collapsed into one SHARED volume (read only
// from then on, the base of thin clones), plus the VM's spec that clones start from.
import { Type, type Static } from '@sinclair/typebox';
import { Bytes, EpochMs, Id, Name, StringEnum } from './common.js';
import { VmSpec } from './vms.js';

export const TEMPLATE_STATUSES = ['pending', 'ready', 'failed', 'deleting'] as const;
export const TemplateStatus = StringEnum(TEMPLATE_STATUSES);
export type TemplateStatus = Static<typeof TemplateStatus>;

export const TemplateVolume = Type.Object({
  name: Type.String({ description: 'the drive target the source VM used (vda, ...); clones use it too' }),
  storageDomainId: Id,
  imageId: Id,
  volumeId: Id,
  sizeBytes: Bytes,
  source: Type.Object({ diskId: Id, imageId: Id, volumeId: Id }, { description: 'the source VM disk\'s volume whose chain was copied' }),
});
export type TemplateVolume = Static<typeof TemplateVolume>;

export const Template = Type.Object({
  id: Id,
  name: Name,
  clusterId: Id,
  sourceVmId: Id,
  status: TemplateStatus,
  spec: VmSpec,
  volumes: Type.Array(TemplateVolume),
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type Template = Static<typeof Template>;

export const CLONE_KINDS = ['thin', 'full'] as const;
export const CloneKind = StringEnum(CLONE_KINDS);
export type CloneKind = Static<typeof CloneKind>;
