// A VM as the controller holds it: the definition and desired state (ours), the runtime status and
// host (the agent's, as last reported). The spec is the agent's VM spec, except that disks name
// controller disk ids and NICs name cluster networks; the executor resolves both at start.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs, Id, Name, StringEnum } from './common.js';
import { NetName } from './networks.js';

export const VmDiskRef = Type.Object({
  name: Type.String({ pattern: '^(vd|sd|hd)[a-z]{1,3}$', description: 'target device, e.g. vda' }),
  diskId: Id,
  bus: Type.Optional(StringEnum(['virtio', 'scsi', 'sata'] as const)),
  readonly: Type.Optional(Type.Boolean()),
  cache: Type.Optional(StringEnum(['none', 'writeback', 'writethrough'] as const)),
  errorPolicy: Type.Optional(StringEnum(['stop', 'report', 'enospace'] as const)),
}, { additionalProperties: false });

export const VmNicRef = Type.Object({
  network: NetName,
  mac: Type.Optional(Type.String({ pattern: '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$' })),
  model: Type.Optional(StringEnum(['virtio', 'e1000', 'rtl8139'] as const)),
  alias: Type.Optional(Type.String({ pattern: '^ua-[A-Za-z0-9_-]+$' })),
}, { additionalProperties: false });

export const VmSpec = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$', description: 'must equal the VM name when given' })),
  memoryMiB: Type.Integer({ minimum: 16, maximum: 4 * 1024 * 1024 }),
  vcpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 512 })),
  domainType: Type.Optional(StringEnum(['kvm', 'qemu'] as const)),
  machine: Type.Optional(Type.String({ minLength: 1 })),
  kernel: Type.Optional(Type.String({ minLength: 1 })),
  initrd: Type.Optional(Type.String({ minLength: 1 })),
  cmdline: Type.Optional(Type.String()),
  disks: Type.Optional(Type.Array(VmDiskRef, { maxItems: 64 })),
  nics: Type.Optional(Type.Array(VmNicRef, { maxItems: 32 })),
  serialLog: Type.Optional(Type.String({ minLength: 1 })),
  graphics: Type.Optional(StringEnum(['vnc', 'none'] as const)),
  customProperties: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String())),
}, { additionalProperties: false, description: "the agent's VM spec, with disks by disk id and NICs by cluster network" });
export type VmSpec = Static<typeof VmSpec>;

export const DesiredState = StringEnum(['down', 'up'] as const);
export type DesiredState = Static<typeof DesiredState>;

export const Vm = Type.Object({
  id: Id,
  name: Name,
  clusterId: Id,
  spec: VmSpec,
  desiredState: DesiredState,
  status: Type.String({ description: "as the agent reports it (VDSM's names: Up, Down, Paused, ...); Unknown when its host is NonResponsive" }),
  hostId: Type.Union([Id, Type.Null()], { description: 'the host it runs on' }),
  memoryReservationMiB: Type.Integer({ minimum: 0 }),
  cpuReservation: Type.Integer({ minimum: 0, description: 'vCPUs reserved on the host' }),
  pinnedHostId: Type.Union([Id, Type.Null()]),
  priority: Type.Integer({ minimum: 0, maximum: 100 }),
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type Vm = Static<typeof Vm>;
