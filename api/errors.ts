// The agent's error codes and named error classes. Codes are stable API:
// VDSM's numbers where VDSM has the error, JSON-RPC's for protocol errors,
// 1000+ for Hostvisor's own. `fault` says whose mistake it was, so a caller's
// bad request is never logged as a server fault.

export type Fault = 'client' | 'server';

export interface ErrorInfo {
  code: number;
  message: string;
  fault: Fault;
}

export const ERRORS = {
  parseError: { code: -32700, message: 'Parse error', fault: 'client' },
  invalidRequest: { code: -32600, message: 'Invalid Request', fault: 'client' },
  methodNotFound: { code: -32601, message: 'Method not found', fault: 'client' },
  invalidParams: { code: -32602, message: 'Invalid params', fault: 'client' },
  internalError: { code: -32603, message: 'Internal error', fault: 'server' },
  noVM: { code: 1, message: 'Virtual machine does not exist', fault: 'client' },
  exists: { code: 4, message: 'Virtual machine already exists', fault: 'client' },
  unavailable: { code: 40, message: 'Resource unavailable', fault: 'client' },
  hookError: { code: 78, message: 'Hook error', fault: 'server' },
  recovery: { code: 99, message: 'Recovering from crash or initializing', fault: 'server' },
  libvirtUnavailable: { code: 1001, message: 'libvirt is not reachable', fault: 'server' },
  timeout: { code: 1002, message: 'Operation timed out', fault: 'server' },
  wrongState: { code: 1003, message: 'Operation not allowed in the VM\'s current state', fault: 'client' },
  libvirtError: { code: 1004, message: 'libvirt call failed', fault: 'server' },
  externalVM: { code: 1005, message: 'VM is not managed by Hostvisor', fault: 'client' },
  shuttingDown: { code: 1006, message: 'Agent is shutting down', fault: 'server' },
  requestTimeout: { code: 1007, message: 'Request timed out', fault: 'server' },
  notPermitted: { code: 1013, message: 'Not permitted for this client identity', fault: 'client' },
  batchReplyTooLarge: { code: 1012, message: 'The batch reply reached its size bound: this call ran, but its result is left out; ask for it alone', fault: 'client' },
  networkLostConnection: { code: 10, message: 'Connectivity to the engine was lost; the change was rolled back', fault: 'client' },
  networkSetupFailed: { code: 29, message: 'Applying the network configuration failed', fault: 'server' },
  networkRollbackFailed: { code: 1009, message: 'The network rollback could not be verified', fault: 'server' },
  networkCommandFailed: { code: 1010, message: 'A network command (ip, dhcp client) failed', fault: 'server' },
  networkBadBridge: { code: 27, message: 'The network does not exist or has no bridge', fault: 'client' },
  storageCommandFailed: { code: 1008, message: 'A storage command (lvm, qemu-img, losetup) failed', fault: 'server' },
  // Storage errors with VDSM's numbers (its storage exception codes).
  volumeDoesNotExist: { code: 201, message: 'Volume does not exist', fault: 'client' },
  volumeIsBusy: { code: 203, message: 'Volume is busy (in use by a running VM)', fault: 'client' },
  incorrectFormat: { code: 202, message: 'Incorrect volume format', fault: 'client' },
  volumeHasChildren: { code: 204, message: 'Volume has children', fault: 'client' },
  volumeCreationError: { code: 205, message: 'Volume creation failed', fault: 'server' },
  volumeExtendingError: { code: 206, message: 'Volume extension failed', fault: 'server' },
  volumeMetadataReadError: { code: 207, message: 'Volume metadata cannot be read', fault: 'server' },
  volumeAlreadyExists: { code: 212, message: 'Volume already exists', fault: 'client' },
  volumeNonShareable: { code: 214, message: 'Volume cannot be shared: it is not a SHARED (template) volume', fault: 'client' },
  sharedVolumeNonWritable: { code: 219, message: 'Shared volume is read only', fault: 'client' },
  volumeCopyError: { code: 225, message: 'Volume copy failed', fault: 'server' },
  prepareIllegalVolume: { code: 227, message: 'Cannot prepare an illegal volume', fault: 'client' },
  incorrectType: { code: 231, message: 'Incorrect volume type', fault: 'client' },
  volumeResizeValueError: { code: 232, message: 'Invalid volume size', fault: 'client' },
  imageIsNotLegalChain: { code: 262, message: 'Image is not a legal chain', fault: 'server' },
  imageDoesNotExist: { code: 268, message: 'Image does not exist', fault: 'client' },
  storagePoolUnknown: { code: 309, message: 'Unknown pool id, pool not connected', fault: 'client' },
  storageDomainDoesNotExist: { code: 358, message: 'Storage domain does not exist', fault: 'client' },
  storageDomainAlreadyExists: { code: 365, message: 'Storage domain already exists', fault: 'client' },
  storageDomainLayoutError: { code: 371, message: 'Storage domain layout is corrupted', fault: 'server' },
  storageDomainAccessError: { code: 379, message: 'Domain is either partially accessible or entirely inaccessible', fault: 'server' },
  noSpaceLeftOnDomain: { code: 397, message: 'No space left on the storage domain', fault: 'server' },
  volumeGroupSizeError: { code: 504, message: 'Volume group too small', fault: 'client' },
  miscFileReadException: { code: 2001, message: 'Internal file read failure', fault: 'server' },
  // SPM task errors with VDSM's numbers (its task exception codes), and our own for a task cut short by a restart.
  unknownTask: { code: 401, message: 'Task id unknown', fault: 'client' },
  addTaskError: { code: 405, message: 'Task id already in use', fault: 'client' },
  taskStateError: { code: 410, message: 'Operation is not allowed in this task state', fault: 'client' },
  taskAborted: { code: 411, message: 'Task is aborted', fault: 'client' },
  taskPersistError: { code: 413, message: 'Cannot persist the task', fault: 'server' },
  spmStopError: { code: 653, message: 'Cannot stop the SPM: it has unfinished tasks', fault: 'client' },
  // Migration errors with VDSM's numbers.
  mergeErr: { code: 52, message: 'Live merge failed', fault: 'server' },
  migrateErr: { code: 12, message: 'Fatal error during migration', fault: 'server' },
  migCancelErr: { code: 47, message: 'Migration not in progress or already ended; nothing to cancel', fault: 'client' },
  migNotInProgress: { code: 81, message: 'Migration not in progress', fault: 'client' },
  migrateLimit: { code: 82, message: 'Too many concurrent incoming migrations', fault: 'client' },
  // VM image errors with VDSM's numbers.
  snapshotErr: { code: 48, message: 'Snapshot failed', fault: 'server' },
  taskInterrupted: { code: 1011, message: 'Task interrupted by an agent restart or SPM failover; recovered', fault: 'server' },
} as const satisfies Record<string, ErrorInfo>;

export type ErrorName = keyof typeof ERRORS;

export class HostvisorError extends Error {
  readonly code: number;
  readonly fault: Fault;
  readonly data: Record<string, unknown> | undefined;

  constructor(readonly errorName: ErrorName, message?: string, options?: { cause?: unknown; data?: Record<string, unknown> }) {
    super(message ?? ERRORS[errorName].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = ERRORS[errorName].code;
    this.fault = ERRORS[errorName].fault;
    this.data = options?.data;
  }
}

type Opts = { cause?: unknown; data?: Record<string, unknown> };

export class InvalidParamsError extends HostvisorError {
  override readonly name = 'InvalidParamsError';
  constructor(message: string, opts?: Opts) { super('invalidParams', message, opts); }
}
/** The client's certificate identity may not make this call (a host identity outside the migration verbs). */
export class NotPermittedError extends HostvisorError {
  override readonly name = 'NotPermittedError';
  constructor(method: string, why: string, opts?: Opts) { super('notPermitted', `${method} is not permitted for this client identity: ${why}`, opts); }
}
export class NoVmError extends HostvisorError {
  override readonly name = 'NoVmError';
  constructor(vmId: string, opts?: Opts) { super('noVM', `Virtual machine does not exist: ${vmId}`, { data: { vmId }, ...opts }); }
}
export class VmExistsError extends HostvisorError {
  override readonly name = 'VmExistsError';
  constructor(vmId: string, opts?: Opts) { super('exists', `Virtual machine already exists: ${vmId}`, { data: { vmId }, ...opts }); }
}
export class UnavailableError extends HostvisorError {
  override readonly name = 'UnavailableError';
  constructor(message: string, opts?: Opts) { super('unavailable', message, opts); }
}
export class HookError extends HostvisorError {
  override readonly name = 'HookError';
  constructor(message: string, opts?: Opts) { super('hookError', message, opts); }
}
export class RecoveryError extends HostvisorError {
  override readonly name = 'RecoveryError';
  constructor(message = 'Recovering from crash or initializing', opts?: Opts) { super('recovery', message, opts); }
}
export class LibvirtUnavailableApiError extends HostvisorError {
  override readonly name = 'LibvirtUnavailableApiError';
  constructor(opts?: Opts) { super('libvirtUnavailable', undefined, opts); }
}
export class OperationTimeoutError extends HostvisorError {
  override readonly name = 'OperationTimeoutError';
  constructor(message: string, opts?: Opts) { super('timeout', message, opts); }
}
export class WrongStateError extends HostvisorError {
  override readonly name = 'WrongStateError';
  constructor(message: string, opts?: Opts) { super('wrongState', message, opts); }
}
export class LibvirtCallError extends HostvisorError {
  override readonly name = 'LibvirtCallError';
  constructor(message: string, opts?: Opts) { super('libvirtError', message, opts); }
}
export class ExternalVmError extends HostvisorError {
  override readonly name = 'ExternalVmError';
  constructor(vmId: string, opts?: Opts) { super('externalVM', `VM ${vmId} is not managed by Hostvisor`, { data: { vmId }, ...opts }); }
}
export class ShuttingDownError extends HostvisorError {
  override readonly name = 'ShuttingDownError';
  constructor(opts?: Opts) { super('shuttingDown', undefined, opts); }
}
/** A migration failed; `step` names where (data.step), so the engine knows what to look at. */
export class MigrateError extends HostvisorError {
  override readonly name = 'MigrateError';
  constructor(readonly step: string, message: string, opts?: Opts) { super('migrateErr', `migration failed at ${step}: ${message}`, { ...opts, data: { step, ...opts?.data } }); }
}
export class MigrateLimitError extends HostvisorError {
  override readonly name = 'MigrateLimitError';
  constructor(limit: number, opts?: Opts) { super('migrateLimit', `this host already runs its ${limit} incoming migration(s); retry later`, { ...opts, data: { limit } }); }
}
export class MigCancelError extends HostvisorError {
  override readonly name = 'MigCancelError';
  constructor(message: string, opts?: Opts) { super('migCancelErr', message, opts); }
}
export class MigNotInProgressError extends HostvisorError {
  override readonly name = 'MigNotInProgressError';
  constructor(vmId: string, opts?: Opts) { super('migNotInProgress', `no migration of VM ${vmId} in progress`, { data: { vmId }, ...opts }); }
}
/** A live snapshot failed at `step` (data.step); the drives stay on their old leaves, and the guest is thawed. */
export class SnapshotError extends HostvisorError {
  override readonly name = 'SnapshotError';
  constructor(readonly step: string, message: string, opts?: Opts) { super('snapshotErr', `snapshot failed at ${step}: ${message}`, { ...opts, data: { step, ...opts?.data } }); }
}
/** A live merge could not start or failed (VDSM's mergeErr). */
export class MergeError extends HostvisorError {
  override readonly name = 'MergeError';
  constructor(message: string, opts?: Opts) { super('mergeErr', message, opts); }
}
