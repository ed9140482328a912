// A hibernated VM as the controller holds it: the VM is Down (desired down) and its RAM and
// device state is on a RAW volume of the pool, which the next start resumes from (VM.create
// with restoreState) and then deletes.
import { Type, type Static } from '@sinclair/typebox';
import { Bytes, EpochMs, Id, StringEnum } from './common.js';

export const HibernationState = StringEnum(['saving', 'suspended', 'resumed'] as const, {
  description: 'saving: a vm.suspend job is writing the state; suspended: the state is on the volume and the next start resumes it; resumed: the VM runs again and its state volume is being deleted',
});
export type HibernationState = Static<typeof HibernationState>;

export const StateVolumeRef = Type.Object({
  domainId: Id,
  imageId: Id,
  volumeId: Id,
  sizeBytes: Bytes,
}, { description: "a RAW volume of the pool holding the VM's RAM and device state" });
export type StateVolumeRef = Static<typeof StateVolumeRef>;

export const VmHibernation = Type.Object({
  vmId: Id,
  state: HibernationState,
  stateVolume: StateVolumeRef,
  hostId: Type.Union([Id, Type.Null()], { description: 'the host it was hibernated on' }),
  jobId: Id,
  snapshotId: Type.Union([Id, Type.Null()], { description: "a snapshot's RAM state a restore put here: its volume stays the snapshot's after the start" }),
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type VmHibernation = Static<typeof VmHibernation>;
