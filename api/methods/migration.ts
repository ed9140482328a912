// Live migration verbs, with VDSM's names. The source agent drives: VM.migrate
// answers at once, then the source calls VM.migrationCreate on the destination
// agent and libvirt migrates peer to peer; progress and the outcome arrive as
// VM_migration_status and VM_status events.
import { Type, type Static } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Empty, Uuid, VmStatus, withVmId } from '../types.js';

const MIGRATION_SINCE = '0.5';

// VDSM's convergence schedule (vdsm-api.yml ConvergenceSchedule): actions with
// their params as strings, as VDSM sends them.
const DowntimeMs = Type.String({ pattern: '^[0-9]{1,7}$', description: 'ms, a decimal string as in VDSM' });
export const SetDowntimeAction = Type.Object({
  name: Type.Literal('setDowntime'),
  params: Type.Tuple([DowntimeMs], { description: "[ms]: virDomainMigrateSetMaxDowntime, the longest the guest may stop at the switch-over" }),
}, { additionalProperties: false });
export const PostcopyAction = Type.Object({
  name: Type.Literal('postcopy'),
  params: Type.Optional(Type.Tuple([], { description: 'none' })),
}, { additionalProperties: false, description: 'virDomainMigrateStartPostCopy: the guest runs on the destination from now on; no way back' });
export const AbortAction = Type.Object({
  name: Type.Literal('abort'),
  params: Type.Optional(Type.Tuple([], { description: 'none' })),
}, { additionalProperties: false, description: 'virDomainAbortJob: the migration fails at the step "abort by schedule" and the VM stays here' });
export const ConvergenceAction = Type.Union([SetDowntimeAction, PostcopyAction, AbortAction]);
export const ConvergenceSchedule = Type.Object({
  init: Type.Array(SetDowntimeAction, { maxItems: 16, description: 'run once as the libvirt migration starts' }),
  stalling: Type.Array(Type.Object({
    limit: Type.Integer({ minimum: -1, maximum: 1_000_000, description: 'the action runs at the first new memory iteration past `limit` iterations since the start (-1: the next new iteration); one action per iteration, in order' }),
    action: ConvergenceAction,
  }, { additionalProperties: false }), { maxItems: 64 }),
}, { additionalProperties: false, description: "VDSM's convergence schedule, stepped by libvirt's memory iterations. Without one the agent's migration.defaultSchedule applies: none (QEMU's own downtime, no steps) or VDSM's legacy schedule (downtime steps up to migration.maxDowntimeMs, then abort, or post-copy when postcopy is true)" });


export const MigrateParams = Type.Object({
  dst: Type.String({
    minLength: 1, maxLength: 255, pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9_.-]+)(:[0-9]{1,5})?$',
    description: "the destination agent, host[:port] (IPv6 in brackets; default port: this agent's rpc.port); libvirt's own connection goes to the same host",
  }),
  dstqemu: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9_.-]+)$', description: 'address of the destination on a dedicated migration network: the memory stream goes there (tcp://dstqemu)' })),
  maxBandwidth: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 * 1024, description: "MiB/s; default the agent's migration.maxBandwidthMiBs" })),
  autoConverge: Type.Optional(Type.Boolean({ description: 'VIR_MIGRATE_AUTO_CONVERGE: QEMU throttles the guest CPUs when the copy does not converge' })),
  compressed: Type.Optional(Type.Boolean({ description: 'VIR_MIGRATE_COMPRESSED' })),
  timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 3600, description: "s for the whole migration, retries on migrateLimit included; default the agent's migration.timeoutSec. Past it the job is aborted" })),
  convergenceSchedule: Type.Optional(ConvergenceSchedule),
  postcopy: Type.Optional(Type.Boolean({ description: 'allow post-copy (VIR_MIGRATE_POSTCOPY); the schedule\'s postcopy action switches. Implied by a schedule with a postcopy action; false with such a schedule is refused' })),
  progressTimeout: Type.Optional(Type.Integer({ minimum: 0, maximum: 24 * 3600, description: "s: KubeVirt's progressTimeout; the job is aborted when the data remaining has not gone below its lowest for this long. Default migration.progressTimeoutSec; 0 off" })),
  completionTimeoutPerGiB: Type.Optional(Type.Integer({ minimum: 0, maximum: 24 * 3600, description: "s per GiB of guest memory: KubeVirt's completionTimeoutPerGiB; the job is aborted past this × memory. Default migration.completionTimeoutPerGiBSec; 0 off" })),
}, { additionalProperties: false });

export const MigrationError = Type.Object({
  code: Type.Integer(),
  message: Type.String(),
  step: Type.String({ description: "where it failed: outgoingSlot, before_vm_migrate_source, connectDestination, migrationCreate, migrateToURI3, cancelled, timeout, 'abort by schedule', progressTimeout, completionTimeout, postcopy (the VM was destroyed on both hosts)" }),
});

const MigrationState = Type.Union([Type.Literal('in_progress'), Type.Literal('done'), Type.Literal('failed')]);

export const MigrationStats = Type.Object({
  vmId: Uuid,
  status: MigrationState,
  progress: Type.Integer({ minimum: 0, maximum: 100, description: '%; never goes down, held at 99 until the migration is done' }),
  postcopy: Type.Boolean({ description: 'true once the migration switched to post-copy (the guest runs on the destination; a failure from then on destroys it on both hosts)' }),
  dataRemaining: Type.Optional(Type.Number({ description: 'bytes still to copy, from the last job stats' })),
  maxDowntime: Type.Optional(Type.Integer({ minimum: 0, description: 'ms: the downtime limit in force, the last setDowntime of the schedule' })),
  memoryIteration: Type.Optional(Type.Integer({ minimum: 0, description: "libvirt's memory-copy pass counter (memory_iteration); the schedule steps on it" })),
  downtime: Type.Optional(Type.Number({ description: "ms the guest was stopped, libvirt's figure; only once done" })),
  totalMs: Type.Optional(Type.Number({ description: 'ms from VM.migrate to the end' })),
  error: Type.Optional(MigrationError),
});

export const MigrationStatusEventBody = Type.Omit(MigrationStats, ['vmId']);

export const MIGRATION_METHODS = {
  'VM.migrate': method({
    summary: 'Live-migrates a running VM to another host. Answers at once; the VM is Migration Source until it ends: Down with "migration succeeded", or Up again with the failed step in VM.getMigrationStatus. Progress comes as VM_migration_status events.',
    params: withVmId({ params: MigrateParams }),
    result: Type.Object({
      status: Type.Object({ code: Type.Literal(0), message: Type.String() }),
      progress: Type.Integer({ minimum: 0, maximum: 100 }),
    }),
    errors: ['noVM', 'recovery', 'externalVM', 'wrongState', 'libvirtUnavailable', 'shuttingDown', 'invalidParams'], since: MIGRATION_SINCE, mutating: true,
  }),
  'VM.migrationCreate': method({
    summary: 'Called by the source agent on the destination: prepares the disks as for a start, runs before_vm_migrate_destination and registers the VM as Migration Destination, ready for the incoming libvirt migration. migrateLimit (82) when the host already runs its incoming migrations.',
    params: withVmId({
      params: Type.Object({
        xml: Type.String({ minLength: 1, maxLength: 4 * 1024 * 1024, description: "the source's migratable domain XML, with Hostvisor metadata" }),
        srcHost: Type.Optional(Type.String({ maxLength: 255, description: 'the source, for logs' })),
      }),
      incomingLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'overrides migration.maxIncoming for this call' })),
    }),
    result: Type.Object({
      migrationPort: Type.Literal(0, { description: "always 0 (libvirt picks the port), as in VDSM" }),
      params: Type.Object({
        vmId: Uuid, status: VmStatus,
        disks: Type.Optional(Type.Array(Type.Object({ name: Type.String(), path: Type.String() }), {
          description: "the paths this host prepared for the VM's storage disks; the source gives libvirt a destination XML with them where they differ from its own",
        })),
      }),
    }),
    errors: ['exists', 'invalidParams', 'recovery', 'libvirtUnavailable', 'shuttingDown', 'hookError', 'migrateLimit'], since: MIGRATION_SINCE, mutating: true,
  }),
  'VM.migrateCancel': method({
    summary: 'Cancels an outgoing migration: aborts the libvirt job; the VM stays Up here and the destination is cleaned up. 47 when none is running, and 47 during post-copy: the guest already runs on the destination and that cannot be undone.',
    params: withVmId({}), result: Empty, errors: ['noVM', 'migCancelErr', 'libvirtError'], since: MIGRATION_SINCE, mutating: true,
  }),
  'VM.getMigrationStatus': method({
    summary: "The VM's running or last outgoing migration: progress, data remaining, and once ended the downtime or the error with its step. 81 when it never migrated from here.",
    params: withVmId({}), result: MigrationStats, errors: ['noVM', 'migNotInProgress'], since: MIGRATION_SINCE, mutating: false,
  }),
  'VM.migrateChangeParams': method({
    summary: 'Changes the bandwidth of a running outgoing migration (MiB/s), of its post-copy phase once it switched. 81 when none is running.',
    params: withVmId({ params: Type.Object({ maxBandwidth: Type.Integer({ minimum: 1, maximum: 1024 * 1024, description: 'MiB/s' }) }) }),
    result: Empty, errors: ['noVM', 'migNotInProgress', 'libvirtError'], since: MIGRATION_SINCE, mutating: true,
  }),
} as const satisfies Record<string, MethodDef>;

export type MigrateParamsT = Static<typeof MigrateParams>;
export type MigrationStatsT = Static<typeof MigrationStats>;
export type MigrationStatusEventBodyT = Static<typeof MigrationStatusEventBody>;
