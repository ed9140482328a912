// A VM's snapshot as the controller holds it: per disk, the volume that keeps the disk as it was
// (the disk's leaf when the snapshot was taken, read-only from then on) and the volume on top
// of it; with memory, the RAM state volume a restore resumes from.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs, Id, StringEnum } from './common.js';
import { StateVolumeRef } from './hibernation.js';

export const SnapshotStatus = StringEnum(['creating', 'ready', 'deleting', 'restoring'] as const, {
  description: 'creating: its job makes the volumes; ready; deleting: a live merge removes it; restoring: the disks return to it',
});
export type SnapshotStatus = Static<typeof SnapshotStatus>;

export const SnapshotDisk = Type.Object({
  diskId: Id,
  domainId: Id,
  imageId: Id,
  volumeId: Type.String({ ...Id, description: 'the volume that keeps the disk as it was when the snapshot was taken' }),
  childId: Type.String({ ...Id, description: 'the volume on top of it (the leaf the snapshot made, or one a restore made)' }),
});
export type SnapshotDisk = Static<typeof SnapshotDisk>;

export const VmSnapshot = Type.Object({
  id: Id,
  vmId: Id,
  description: Type.String(),
  status: SnapshotStatus,
  memory: Type.Boolean({ description: 'the RAM state was saved with it: a restore resumes the guest where it was' }),
  memoryVolume: Type.Union([StateVolumeRef, Type.Null()]),
  vmRunning: Type.Union([Type.Boolean(), Type.Null()], { description: 'whether the VM ran when it was taken (null until then)' }),
  frozen: Type.Union([Type.Boolean(), Type.Null()], { description: "whether the guest's filesystems were frozen for it (null: the VM was not running)" }),
  warnings: Type.Array(Type.String()),
  disks: Type.Array(SnapshotDisk),
  jobId: Type.Union([Id, Type.Null()], { description: 'the job that took it' }),
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type VmSnapshot = Static<typeof VmSnapshot>;
