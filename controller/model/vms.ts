// A VM as the controller holds it: the definition and desired state (ours), the runtime status and
// host (the agent's, as last reported). The spec is the agent's VM spec, except that disks name
// controller disk ids and NICs name cluster networks; the executor resolves both at start.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs, Id, Name, StringEnum } from './common.js';
import { NetName } from './networks.js';
import { DiskSpec as AgentDiskSpec, NicSpec as AgentNicSpec, VmSpec as AgentVmSpec } from '../../api/types.js';

// The agent's own shapes (api/), with the controller's references in place of paths and bridges.
const { name: diskTarget, bus, readonly, cache, errorPolicy } = AgentDiskSpec.properties;
const { mac, model, alias } = AgentNicSpec.properties;
const { name: _name, disks: _disks, nics: _nics, ...agentVmFields } = AgentVmSpec.properties;

export const VmDiskRef = Type.Object({
  name: diskTarget, diskId: Id, bus, readonly, cache, errorPolicy,
}, { additionalProperties: false });

export const VmNicRef = Type.Object({
  network: NetName, mac, model, alias,
}, { additionalProperties: false });

export const VmSpec = Type.Object({
  ...agentVmFields,
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$', description: 'must equal the VM name when given' })),
  disks: Type.Optional(Type.Array(VmDiskRef, { maxItems: 64 })),
  nics: Type.Optional(Type.Array(VmNicRef, { maxItems: 32 })),
}, { additionalProperties: false, description: "the agent's VM spec (api/ VmSpec), with disks by disk id and NICs by cluster network" });
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
