// A cluster: hosts that share storage and networks, and the scheduling policy that places VMs.
import { Type, type Static } from '@sinclair/typebox';
import { EpochMs, Id, Name, StringEnum } from './common.js';

export const POLICIES = ['none', 'evenly_distributed', 'power_saving', 'vm_evenly_distributed'] as const;
export const Policy = StringEnum(POLICIES, { description: 'scheduling policy (oVirt\'s built-in ones)' });
export type Policy = Static<typeof Policy>;

// oVirt's parameters and ranges (PolicyUnitParameter); absent means the policy's default.
export const Thresholds = Type.Object({
  highUtilization: Type.Optional(Type.Integer({ minimum: 50, maximum: 99, description: 'CPU % over which a host is over-utilized' })),
  lowUtilization: Type.Optional(Type.Integer({ minimum: 0, maximum: 49, description: 'CPU % under which a host is under-utilized (power_saving)' })),
  cpuOverCommitDurationMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 99 })),
  highVmCount: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'vm_evenly_distributed: hosts with fewer VMs are never sources' })),
  migrationThreshold: Type.Optional(Type.Integer({ minimum: 2, maximum: 1000 })),
  spmVmGrace: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'the SPM counts as this many extra VMs' })),
  maxFreeMemoryForOverUtilizedMiB: Type.Optional(Type.Integer({ minimum: 0, maximum: 16_777_216, description: 'a host with less free memory than this (MiB) for the duration is over-utilized; absent: memory is not balanced' })),
  minFreeMemoryForUnderUtilizedMiB: Type.Optional(Type.Integer({ minimum: 0, maximum: 16_777_216, description: 'a balancing destination must have more free memory than this (MiB); absent: not checked' })),
}, { additionalProperties: false });
export type Thresholds = Static<typeof Thresholds>;

/** The defaults of oVirt's built-in policies (InternalClusterPolicies). */
export const POLICY_DEFAULTS: Record<Policy, Thresholds> = {
  none: { highUtilization: 80, cpuOverCommitDurationMinutes: 2 },
  evenly_distributed: { highUtilization: 80, cpuOverCommitDurationMinutes: 2 },
  power_saving: { highUtilization: 80, lowUtilization: 20, cpuOverCommitDurationMinutes: 2 },
  vm_evenly_distributed: { highUtilization: 80, highVmCount: 10, migrationThreshold: 5, spmVmGrace: 5 },
};

export const DEFAULT_CLUSTER = 'default';
export const DEFAULT_POLICY: Policy = 'evenly_distributed';

export const Cluster = Type.Object({
  id: Id,
  name: Name,
  policy: Policy,
  thresholds: Thresholds,
  poolId: Type.Union([Id, Type.Null()], { description: 'storage pool, once the first domain made it' }),
  spmHostId: Type.Union([Id, Type.Null()]),
  spmLver: Type.Union([Type.Integer(), Type.Null()], { description: 'lease version of the last spmStart' }),
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type Cluster = Static<typeof Cluster>;
