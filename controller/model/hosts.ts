// A host: one agent, its state as the controller last saw it, and its place in the storage pool.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs, Id, Name, NullableEpochMs, StringEnum } from './common.js';

// The states of issue 11 (oVirt's VDSStatus subset a thin controller needs).
export const HOST_STATUSES = ['Installing', 'Initializing', 'Up', 'Connecting', 'NonResponsive', 'NonOperational',
  'PreparingForMaintenance', 'Maintenance', 'MaintenanceFailed'] as const;
export const HostStatus = StringEnum(HOST_STATUSES);
export type HostStatus = Static<typeof HostStatus>;

export const SpmPriority = Type.Integer({ minimum: -1, maximum: 10, description: '-1 = never SPM; higher is preferred' });
export const DEFAULT_SPM_PRIORITY = 5;
export const MAX_POOL_HOST_ID = 250;
export const DEFAULT_AGENT_PORT = 54321;

export const HostStats = Type.Object({
  cpuUsedPercent: Type.Number(),
  memTotalMiB: Type.Number(),
  memUsedMiB: Type.Number(),
  memAvailableMiB: Type.Optional(Type.Number()),
  vmCount: Type.Optional(Type.Integer()),
}, { additionalProperties: true });
export type HostStats = Static<typeof HostStats>;

export const Host = Type.Object({
  id: Id,
  name: Name,
  address: Type.String(),
  port: Type.Integer(),
  clusterId: Id,
  status: HostStatus,
  spmPriority: SpmPriority,
  poolHostId: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_POOL_HOST_ID }), Type.Null()]),
  certFingerprint: Type.Union([Type.String(), Type.Null()], { description: 'SHA-256 of the agent certificate the controller signed' }),
  lastContact: NullableEpochMs,
  reasons: Type.Array(Type.String(), { description: 'why the host is NonOperational' }),
  stats: Type.Union([HostStats, Type.Null()]),
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type Host = Static<typeof Host>;
