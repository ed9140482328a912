// Reusable schema pieces for the API (TypeBox = JSON Schema + static types).
import { Type, type TSchema } from '@sinclair/typebox';
import { GuestInfoFields } from './guest-info.js';

export const Uuid = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  description: 'A UUID; a VM is identified by its libvirt domain UUID',
});

export const VmStatus = Type.Union([
  Type.Literal('WaitForLaunch'),
  Type.Literal('Powering up'),
  Type.Literal('Up'),
  Type.Literal('Paused'),
  Type.Literal('Powering down'),
  Type.Literal('Down'),
  Type.Literal('Migration Source'),
  Type.Literal('Migration Destination'),
  Type.Literal('Saving State'),
  Type.Literal('Restoring State'),
  Type.Literal('Unknown'),
], { description: "VDSM's VM statuses, plus Unknown for a VM not reconciled yet (never reported as Down)" });

export const PauseCode = Type.Union([Type.Literal('NOERR'), Type.Literal('ENOSPC'), Type.Literal('EIO'), Type.Literal('EOTHER')]);

export const ExitInfo = {
  exitCode: Type.Optional(Type.Integer({ description: '0 normal, 1 error' })),
  exitReason: Type.Optional(Type.Integer({ description: 'VDSM exit reason code' })),
  exitMessage: Type.Optional(Type.String()),
};

export const StorageRef = Type.Object({
  poolID: Uuid,
  domainID: Uuid,
  imageID: Uuid,
  volumeID: Uuid,
}, { description: 'Where a disk lives in Hostvisor storage; kept in the VM metadata' });

/** Where a hibernated VM's RAM and device state is written, and read back by VM.create's restoreState. */
export const StateVolume = Type.Union([
  StorageRef,
  Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096, pattern: '^/', description: 'a file or block device, the same path on every host that may resume it' }) }, { additionalProperties: false }),
], { description: "a RAW volume of the pool (storage ids; at least the VM's memory plus 10 % and 64 MiB), or a path" });

export const DiskSpec = Type.Object({
  name: Type.String({ pattern: '^(vd|sd|hd)[a-z]{1,3}$', description: 'target device, e.g. vdb' }),
  path: Type.Optional(Type.String({ minLength: 1, description: 'file or block device path' })),
  storage: Type.Optional(StorageRef),
  type: Type.Optional(Type.Union([Type.Literal('file'), Type.Literal('block')], { default: 'file' })),
  format: Type.Optional(Type.Union([Type.Literal('qcow2'), Type.Literal('raw')], { default: 'qcow2' })),
  bus: Type.Optional(Type.Union([Type.Literal('virtio'), Type.Literal('scsi'), Type.Literal('sata')], { default: 'virtio' })),
  readonly: Type.Optional(Type.Boolean()),
  errorPolicy: Type.Optional(Type.Union([Type.Literal('stop'), Type.Literal('report'), Type.Literal('enospace')], { default: 'stop' })),
  cache: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('writeback'), Type.Literal('writethrough')], { default: 'none' })),
});

export const NicSpec = Type.Object({
  bridge: Type.Optional(Type.String({ minLength: 1, maxLength: 15, description: 'Linux bridge to attach to (give this or network)' })),
  network: Type.Optional(Type.String({ minLength: 1, maxLength: 15, description: 'host network (setupNetworks) whose bridge the NIC joins; 27 if it does not exist or is bridgeless' })),
  mac: Type.Optional(Type.String({ pattern: '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$' })),
  model: Type.Optional(Type.Union([Type.Literal('virtio'), Type.Literal('e1000'), Type.Literal('rtl8139')], { default: 'virtio' })),
  alias: Type.Optional(Type.String({ pattern: '^ua-[A-Za-z0-9_-]+$', description: 'user alias (must start with ua-)' })),
});

export const VmSpec = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' }),
  memoryMiB: Type.Integer({ minimum: 16, maximum: 4 * 1024 * 1024 }),
  vcpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 512, default: 1 })),
  domainType: Type.Optional(Type.Union([Type.Literal('kvm'), Type.Literal('qemu')], { description: "default: the agent's virt.domainType" })),
  machine: Type.Optional(Type.String({ default: 'pc' })),
  kernel: Type.Optional(Type.String({ description: 'direct kernel boot' })),
  initrd: Type.Optional(Type.String()),
  cmdline: Type.Optional(Type.String()),
  disks: Type.Optional(Type.Array(DiskSpec, { maxItems: 64 })),
  nics: Type.Optional(Type.Array(NicSpec, { maxItems: 32 })),
  serialLog: Type.Optional(Type.String({ description: 'write the serial console to this file' })),
  graphics: Type.Optional(Type.Union([Type.Literal('vnc'), Type.Literal('none')], { default: 'none' })),
  customProperties: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String())),
}, { description: 'Compact VM description; the agent turns it into libvirt domain XML' });

export const Rates = {
  readRate: Type.Number({ description: 'bytes/s' }),
  writeRate: Type.Number({ description: 'bytes/s' }),
};

export const DiskStats = Type.Object({
  readBytes: Type.Number(), writeBytes: Type.Number(), readOps: Type.Number(), writeOps: Type.Number(),
  ...Rates,
  readOpsRate: Type.Number({ description: 'ops/s' }),
  writeOpsRate: Type.Number({ description: 'ops/s' }),
  readLatencyMs: Type.Number({ description: 'mean over the last interval' }),
  writeLatencyMs: Type.Number(),
  capacity: Type.Number(), allocation: Type.Number(), physical: Type.Number(),
});

export const NicStats = Type.Object({
  rxBytes: Type.Number(), txBytes: Type.Number(),
  rxRate: Type.Number({ description: 'bytes/s' }), txRate: Type.Number({ description: 'bytes/s' }),
  rxPackets: Type.Number(), txPackets: Type.Number(),
  rxErrors: Type.Number(), txErrors: Type.Number(), rxDrops: Type.Number(), txDrops: Type.Number(),
});

export const VmStats = Type.Object({
  vmId: Uuid,
  vmName: Type.String(),
  status: VmStatus,
  pauseCode: Type.Optional(PauseCode),
  ...ExitInfo,
  elapsedTime: Type.Optional(Type.Number({ description: 's since the VM started' })),
  cpuPct: Type.Optional(Type.Number({ description: 'CPU % of one host CPU over the last interval' })),
  cpuUser: Type.Optional(Type.Number()),
  cpuSys: Type.Optional(Type.Number()),
  cpuTimeNs: Type.Optional(Type.Number()),
  vcpuCount: Type.Optional(Type.Integer()),
  memoryKiB: Type.Optional(Type.Number()),
  disks: Type.Optional(Type.Record(Type.String(), DiskStats)),
  network: Type.Optional(Type.Record(Type.String(), NicStats)),
  sampleTime: Type.Optional(Type.Number({ description: 'ms since epoch of the sample' })),
  external: Type.Optional(Type.Boolean()),
  ...GuestInfoFields,
});

export const VmSummary = Type.Object({
  vmId: Uuid,
  vmName: Type.String(),
  status: VmStatus,
  external: Type.Boolean({ description: 'defined outside Hostvisor (no hostvisor metadata): reported, never touched' }),
  id: Type.Optional(Type.Integer({ description: "libvirt's runtime domain id" })),
});

export const Empty = Type.Object({});

export function withVmId<T extends Record<string, TSchema>>(props: T) {
  return Type.Object({ vmID: Uuid, ...props });
}

/** Why a VM went Down. Our own stable numbers (documented in docs/api.md). */
export enum ExitReason {
  SUCCEEDED = 0,
  GENERIC_ERROR = 1,
  LIBVIRT_START_FAILED = 2,
  HOOK_ERROR = 3,
  ADMIN_SHUTDOWN = 4,
  USER_SHUTDOWN = 5,
  DESTROYED = 6,
  CRASHED = 7,
  DOMAIN_MISSING = 8,
  MIGRATION_SUCCEEDED = 9,
  SAVE_STATE_SUCCEEDED = 10,
}
