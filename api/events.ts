// The events the agent sends (JSON-RPC notifications), with their params.
import { Type, type Static } from '@sinclair/typebox';
import type { EventDef } from './method.js';
import { ExitInfo, PauseCode, VmStatus } from './types.js';
import { LastSetup } from './network.js';
import { MigrationStatusEventBody } from './methods/migration.js';
import { TaskStatusEventBody } from './methods/images.js';
import { JobStatusEventBody } from './methods/merge.js';

const VmStatusEventBody = Type.Object({
  status: VmStatus,
  pauseCode: Type.Optional(PauseCode),
  ...ExitInfo,
  elapsedTime: Type.Optional(Type.Number()),
  ioerror: Type.Optional(Type.Object({ alias: Type.String(), path: Type.String(), reason: Type.String() })),
});

export const Events = {
  VM_status: {
    method: '|virt|VM_status|<vmId>',
    summary: "A VM's status changed. params: {<vmId>: {status, ...}, notify_time}.",
    params: Type.Object({ notify_time: Type.Number({ description: 'monotonic ms' }) }, { additionalProperties: VmStatusEventBody }),
    body: VmStatusEventBody,
    since: '0.1',
  },
  VM_migration_status: {
    method: '|virt|VM_migration_status|<vmId>',
    summary: "An outgoing migration's progress (monotone, 99 until done), data remaining, and at the end its outcome. params: {<vmId>: {status, progress, postcopy, ...}, notify_time}. Sent every migration.monitorIntervalMs and once at the end.",
    params: Type.Object({ notify_time: Type.Number({ description: 'monotonic ms' }) }, { additionalProperties: MigrationStatusEventBody }),
    body: MigrationStatusEventBody,
    since: '0.5',
  },
  VM_guest_agent: {
    method: '|virt|VM_guest_agent|<vmId>',
    summary: "The VM's guest agent (qemu-ga) connected or disconnected (libvirt's agent-lifecycle). params: {<vmId>: {connected}, notify_time}.",
    params: Type.Object({ notify_time: Type.Number({ description: 'monotonic ms' }) }, { additionalProperties: Type.Object({ connected: Type.Boolean() }) }),
    since: '0.6',
  },
  VM_job_status: {
    method: '|virt|VM_job_status|<vmId>',
    summary: "A VM's block job (live merge) changed state or progress. params: {<vmId>: {jobs: [...]}, notify_time}: the VM's jobs as VM.getJobs lists them.",
    params: Type.Object({ notify_time: Type.Number({ description: 'monotonic ms' }) }, { additionalProperties: JobStatusEventBody }),
    body: JobStatusEventBody,
    since: '0.6',
  },
  hooks_changed: {
    method: '|hooks|changed|no_id',
    summary: 'The installed hooks changed. params: {hooks: {point: {script: {checksum}}}, notify_time}.',
    params: Type.Object({ hooks: Type.Record(Type.String(), Type.Unknown()), notify_time: Type.Number() }),
    since: '0.2',
  },
  network_setup: {
    method: '|net|setupNetworks|no_id',
    summary: 'A setupNetworks call ended: applied, rolledBack (verified), rollbackUnverified or refused. params: the lastSetup record of Host.getNetworkCapabilities, and notify_time.',
    params: Type.Object({ ...LastSetup.properties, notify_time: Type.Number() }),
    since: '0.4',
  },
  task_status: {
    method: '|storage|task_status|<taskID>',
    summary: "An SPM task's progress (copies: each whole percent) and its end. params: {<taskID>: {verb, state, taskState, taskResult, code, message, progress?}, notify_time}.",
    params: Type.Object({ notify_time: Type.Number({ description: 'monotonic ms' }) }, { additionalProperties: TaskStatusEventBody }),
    body: TaskStatusEventBody,
    since: '0.6',
  },
} as const satisfies Record<string, EventDef>;

export type VmStatusEventBody = Static<typeof VmStatusEventBody>;
export type EventName = keyof typeof Events;
