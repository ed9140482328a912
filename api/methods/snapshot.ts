// VM.snapshot: a live external snapshot of a running VM's disks (and, with
// snapMemory, of its RAM), onto new leaf volumes the caller made beforehand
// with the SPM task Volume.create (srcVolUUID = the drive's current leaf).
import { Type } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { StateVolume, Uuid, withVmId } from '../types.js';

/** A memory snapshot writes all of the guest's RAM: VDSM gives the whole job 30 min. */
export const MEMORY_SNAPSHOT_CALL_MS = 30 * 60_000;

export const SnapDrive = Type.Object({
  domainID: Uuid,
  imageID: Uuid,
  volumeID: Type.String({ pattern: Uuid.pattern, description: 'the new leaf, already made by Volume.create with srcVolUUID = baseVolumeID' }),
  baseVolumeID: Type.String({ pattern: Uuid.pattern, description: "the drive's current leaf; it becomes the new leaf's backing volume" }),
}, { additionalProperties: false });

export const SNAPSHOT_METHODS = {
  'VM.snapshot': method({
    summary: "Takes a live external snapshot: each drive goes on writing into its new leaf (DISK_ONLY | REUSE_EXT | NO_METADATA | ATOMIC), the VM's metadata and the thin-provisioning monitor follow the new leaves. The guest's filesystems are frozen through its guest agent for the switch and always thawed; a freeze that fails or times out is a warning (the snapshot is then crash-consistent), never a failure. With snapMemory the RAM and device state go to that volume too (the guest is paused while it is written); VM.create with restoreState resumes it, on disks of the caller's choice (e.g. a new leaf on top of the snapshot's base). The job is kept in the VM's metadata, so an agent restarted mid-snapshot thaws the guest and finishes or rolls back by what libvirt's chain shows. On failure the drives stay on their old leaves; the caller deletes the new ones (Volume.delete).",
    params: withVmId({
      snapDrives: Type.Array(SnapDrive, { minItems: 1, maxItems: 64 }),
      snapMemory: Type.Optional(StateVolume),
      freezeTimeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 8 * 60_000, description: "ms the guest agent has to freeze; default the agent's vm.snapshotFreezeTimeoutMs" })),
      jobUUID: Type.Optional(Uuid),
    }),
    result: Type.Object({
      jobUUID: Uuid,
      frozen: Type.Boolean({ description: "whether the guest's filesystems were frozen for the switch" }),
      freezeMs: Type.Number({ description: 'ms the freeze took (or until it failed)' }),
      snapshotMs: Type.Number({ description: 'ms of the libvirt snapshot call (the guest was frozen, or with memory paused, within it)' }),
      memory: Type.Boolean({ description: 'whether the RAM state was saved' }),
      warnings: Type.Array(Type.String()),
    }),
    errors: ['noVM', 'recovery', 'libvirtUnavailable', 'externalVM', 'wrongState', 'invalidParams', 'snapshotErr', 'timeout', 'volumeDoesNotExist', 'incorrectFormat', 'prepareIllegalVolume', 'storageDomainDoesNotExist'], since: '0.7', mutating: true,
    timeoutMs: (p, b) => (p.snapMemory ? MEMORY_SNAPSHOT_CALL_MS : b.requestMs) + (p.freezeTimeoutMs ?? 0),
  }),
} as const satisfies Record<string, MethodDef>;
