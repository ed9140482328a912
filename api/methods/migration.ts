// Live migration verbs, with VDSM's names. The source agent drives: VM.migrate
// answers at once, then the source calls VM.migrationCreate on the destination
// agent and libvirt migrates peer to peer; progress and the outcome arrive as
// VM_migration_status and VM_status events.
import { Type, type Static } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Empty, Uuid, VmStatus, withVmId } from '../types.js';

const MIGRATION_SINCE = '0.5';


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
}, { additionalProperties: false });

export const MigrationError = Type.Object({
  code: Type.Integer(),
  message: Type.String(),
  step: Type.String({ description: 'where it failed: outgoingSlot, before_vm_migrate_source, connectDestination, migrationCreate, migrateToURI3, cancelled, timeout' }),
});

const MigrationState = Type.Union([Type.Literal('in_progress'), Type.Literal('done'), Type.Literal('failed')]);

export const MigrationStats = Type.Object({
  vmId: Uuid,
  status: MigrationState,
  progress: Type.Integer({ minimum: 0, maximum: 100, description: '%; never goes down, held at 99 until the migration is done' }),
  postcopy: Type.Boolean({ description: 'always false: post-copy is not implemented yet' }),
  dataRemaining: Type.Optional(Type.Number({ description: 'bytes still to copy, from the last job stats' })),
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
    summary: 'Cancels an outgoing migration: aborts the libvirt job; the VM stays Up here and the destination is cleaned up. 47 when none is running.',
    params: withVmId({}), result: Empty, errors: ['noVM', 'migCancelErr', 'libvirtError'], since: MIGRATION_SINCE, mutating: true,
  }),
  'VM.getMigrationStatus': method({
    summary: "The VM's running or last outgoing migration: progress, data remaining, and once ended the downtime or the error with its step. 81 when it never migrated from here.",
    params: withVmId({}), result: MigrationStats, errors: ['noVM', 'migNotInProgress'], since: MIGRATION_SINCE, mutating: false,
  }),
  'VM.migrateChangeParams': method({
    summary: 'Changes the bandwidth of a running outgoing migration (MiB/s). 81 when none is running.',
    params: withVmId({ params: Type.Object({ maxBandwidth: Type.Integer({ minimum: 1, maximum: 1024 * 1024, description: 'MiB/s' }) }) }),
    result: Empty, errors: ['noVM', 'migNotInProgress', 'libvirtError'], since: MIGRATION_SINCE, mutating: true,
  }),
} as const satisfies Record<string, MethodDef>;

export type MigrateParamsT = Static<typeof MigrateParams>;
export type MigrationStatsT = Static<typeof MigrationStats>;
export type MigrationStatusEventBodyT = Static<typeof MigrationStatusEventBody>;
