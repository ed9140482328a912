// The API schema: every method and event the agent serves, with params,
// result, errors and the version it was added in. It is the single source of
// parameter validation, the TypeScript types shared with the controller and
// the client, the error codes a method may return, the OpenRPC document at
// rpc.discover, and docs/api.md.
import type { Static } from '@sinclair/typebox';
import type { MethodDef } from './method.js';
import { HOST_METHODS } from './methods/host.js';
import { VM_METHODS } from './methods/vm.js';
import { NETWORK_METHODS } from './methods/network.js';
import { STORAGE_HOST_METHODS, STORAGE_METHODS } from './methods/storage.js';
import { TASK_METHODS } from './methods/tasks.js';
import { MIGRATION_METHODS } from './methods/migration.js';
import { MIGRATION_DISK_METHODS } from './methods/migration-disks.js';
import { IMAGE_METHODS } from './methods/images.js';
import { SNAPSHOT_METHODS } from './methods/snapshot.js';
import { MERGE_METHODS } from './methods/merge.js';
import { COLD_MERGE_METHODS } from './methods/cold-merge.js';
import { SAVE_IMAGE_METHODS } from './methods/save-image.js';

export type { MethodDef, EventDef, TimeoutBounds } from './method.js';
export { callTimeoutMs } from './method.js';
export { SpmTaskResults, type SpmTaskMethod, type SpmTaskResultOf } from './methods/tasks.js';
export { Events, type EventName, type VmStatusEventBody } from './events.js';
export type { MergeJobT } from './methods/merge.js';
export type { MigrateParamsT, MigrationStatsT, MigrationStatusEventBodyT } from './methods/migration.js';

export const Methods = {
  ...HOST_METHODS,
  ...VM_METHODS,
  ...MIGRATION_METHODS,
  ...MIGRATION_DISK_METHODS,
  ...SNAPSHOT_METHODS,
  ...MERGE_METHODS,
  ...COLD_MERGE_METHODS,
  ...SAVE_IMAGE_METHODS,
  ...NETWORK_METHODS,
  ...STORAGE_METHODS,
  ...TASK_METHODS,
  ...STORAGE_HOST_METHODS,
  ...IMAGE_METHODS,
} as const satisfies Record<string, MethodDef>;

export type MethodName = keyof typeof Methods;
export type ParamsOf<M extends MethodName> = Static<(typeof Methods)[M]['params']>;
export type ResultOf<M extends MethodName> = Static<(typeof Methods)[M]['result']>;

export const API_VERSION = '0.9';
