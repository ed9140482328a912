// Storage errors. Each answers with VDSM's storage exception number as its
// API code where VDSM has the error (api/errors.ts lists them), else
// with one of the agent's general codes; `data.storageCode` repeats it.
import { HostvisorError, type ErrorName } from '../../api/errors.js';

type Opts = { cause?: unknown; data?: Record<string, unknown> };

/** VDSM's storage exception numbers for the errors raised here. */
export const VDSM_STORAGE_CODES = {
  volumeDoesNotExist: 201,
  volumeIsBusy: 203,
  incorrectFormat: 202,
  volumeHasChildren: 204,
  volumeCreationError: 205,
  volumeExtendingError: 206,
  volumeMetadataReadError: 207,
  volumeAlreadyExists: 212,
  volumeNonShareable: 214,
  sharedVolumeNonWritable: 219,
  volumeCopyError: 225,
  prepareIllegalVolume: 227,
  incorrectType: 231,
  volumeResizeValueError: 232,
  imageIsNotLegalChain: 262,
  imageDoesNotExist: 268,
  storagePoolUnknown: 309,
  storageDomainDoesNotExist: 358,
  storageDomainAlreadyExists: 365,
  storageDomainLayoutError: 371,
  storageDomainAccessError: 379,
  noSpaceLeftOnDomain: 397,
  volumeGroupSizeError: 504,
  miscFileReadException: 2001,
} as const;
export type StorageCode = keyof typeof VDSM_STORAGE_CODES;

export class StorageError extends HostvisorError {
  override readonly name: string = 'StorageError';
  readonly storageCode: StorageCode | undefined;
  constructor(errorName: ErrorName, message: string, storageCode?: StorageCode, opts?: Opts) {
    // A timeout stays a timeout (1002); otherwise VDSM's storage code is the more precise answer.
    super(storageCode && errorName !== 'timeout' ? storageCode : errorName, message, {
      cause: opts?.cause,
      data: { ...(storageCode ? { storageCode: VDSM_STORAGE_CODES[storageCode], storageError: storageCode } : {}), ...opts?.data },
    });
    this.storageCode = storageCode;
  }
}

/** A child process (lvm, qemu-img, losetup, truncate, dd) exited non-zero. */
export class StorageCommandError extends StorageError {
  override readonly name = 'StorageCommandError';
  constructor(readonly argv: readonly string[], readonly rc: number, readonly stderr: string, opts?: Opts) {
    super('storageCommandFailed', `${argv.slice(0, 2).join(' ')} failed (rc=${rc}): ${lastLine(stderr)}`, undefined, {
      ...opts, data: { argv: [...argv], rc, stderr: stderr.slice(-2000), ...opts?.data },
    });
  }
}

/** sanlock could not read or write a lease on the domain (an I/O error or timeout): a storage fault; the caller may retry. */
export class LeaseIoError extends StorageError {
  override readonly name = 'LeaseIoError';
  constructor(message: string, opts?: Opts) {
    super('storageCommandFailed', message, undefined, opts);
  }
}

/** A child process did not finish in time and was killed. */
export class StorageCommandTimeoutError extends StorageError {
  override readonly name = 'StorageCommandTimeoutError';
  constructor(readonly argv: readonly string[], readonly timeoutMs: number, readonly stderr: string) {
    super('timeout', `${argv.slice(0, 2).join(' ')} timed out after ${timeoutMs} ms and was killed`, undefined, {
      data: { argv: [...argv], timeoutMs, stderr: stderr.slice(-2000) },
    });
  }
}

export class DomainNotFoundError extends StorageError {
  override readonly name = 'DomainNotFoundError';
  constructor(sdUUID: string, detail?: string, opts?: Opts) {
    super('unavailable', `Storage domain does not exist: ${sdUUID}${detail ? ` (${detail})` : ''}`, 'storageDomainDoesNotExist', { ...opts, data: { sdUUID } });
  }
}

/** A pool verb for a pool this host is not connected to (VDSM's StoragePoolUnknown). */
export class PoolNotConnectedError extends StorageError {
  override readonly name = 'PoolNotConnectedError';
  constructor(spUUID: string, connectedTo: string | undefined) {
    super('unavailable', `Unknown pool id, pool not connected: ${spUUID}${connectedTo ? ` (this host is connected to ${connectedTo})` : ''}`,
      'storagePoolUnknown', { data: { spUUID } });
  }
}

export class DomainExistsError extends StorageError {
  override readonly name = 'DomainExistsError';
  constructor(sdUUID: string, detail?: string) {
    super('exists', `Storage domain already exists: ${sdUUID}${detail ? ` (${detail})` : ''}`, 'storageDomainAlreadyExists', { data: { sdUUID } });
  }
}

export class DomainLayoutError extends StorageError {
  override readonly name = 'DomainLayoutError';
  constructor(sdUUID: string, detail: string) {
    super('internalError', `Storage domain ${sdUUID} layout is corrupted: ${detail}`, 'storageDomainLayoutError', { data: { sdUUID } });
  }
}

export class VolumeNotFoundError extends StorageError {
  override readonly name = 'VolumeNotFoundError';
  constructor(sdUUID: string, volUUID: string, imgUUID?: string) {
    super('unavailable', `Volume does not exist: ${volUUID}${imgUUID ? ` in image ${imgUUID}` : ''} on domain ${sdUUID}`, 'volumeDoesNotExist', { data: { sdUUID, imgUUID, volUUID } });
  }
}

export class VolumeExistsError extends StorageError {
  override readonly name = 'VolumeExistsError';
  constructor(sdUUID: string, volUUID: string) {
    super('exists', `Volume already exists: ${volUUID} on domain ${sdUUID}`, 'volumeAlreadyExists', { data: { sdUUID, volUUID } });
  }
}

export class VolumeHasChildrenError extends StorageError {
  override readonly name = 'VolumeHasChildrenError';
  constructor(sdUUID: string, volUUID: string, children: string[]) {
    super('wrongState', `Volume ${volUUID} has children (${children.join(', ')}); delete them first`, 'volumeHasChildren', { data: { sdUUID, volUUID, children } });
  }
}

export class ImageNotFoundError extends StorageError {
  override readonly name = 'ImageNotFoundError';
  constructor(sdUUID: string, imgUUID: string) {
    super('unavailable', `Image does not exist: ${imgUUID} on domain ${sdUUID}`, 'imageDoesNotExist', { data: { sdUUID, imgUUID } });
  }
}

export class IllegalChainError extends StorageError {
  override readonly name = 'IllegalChainError';
  constructor(sdUUID: string, imgUUID: string, detail: string) {
    super('internalError', `Image ${imgUUID} on domain ${sdUUID} is not a legal chain: ${detail}`, 'imageIsNotLegalChain', { data: { sdUUID, imgUUID } });
  }
}

/** A request that storage cannot honour as asked: bad format/type combination, shrinking, etc. */
export class StorageParamsError extends StorageError {
  override readonly name = 'StorageParamsError';
  constructor(message: string, storageCode?: StorageCode, data?: Record<string, unknown>) {
    super('invalidParams', message, storageCode, { data });
  }
}

export class WrongLegalityError extends StorageError {
  override readonly name = 'WrongLegalityError';
  constructor(sdUUID: string, volUUID: string, legality: string) {
    super('wrongState', `Volume ${volUUID} on domain ${sdUUID} is ${legality}, not LEGAL`, 'prepareIllegalVolume', { data: { sdUUID, volUUID, legality } });
  }
}

/** The VG (or file system) has no room for the request. */
export class NoSpaceError extends StorageError {
  override readonly name = 'NoSpaceError';
  constructor(sdUUID: string, detail: string, opts?: Opts) {
    super('unavailable', `No space left on domain ${sdUUID}: ${detail}`, 'noSpaceLeftOnDomain', { ...opts, data: { sdUUID, ...opts?.data } });
  }
}

/** Volume metadata could not be read or is not a valid block. */
export class VolumeMetadataError extends StorageError {
  override readonly name = 'VolumeMetadataError';
  constructor(detail: string, data?: Record<string, unknown>) {
    super('internalError', `Volume metadata error: ${detail}`, 'volumeMetadataReadError', { data });
  }
}

/** Cut short on purpose: its task was stopped (Task.stop), or the agent is giving up the SPM role. */
export class OperationAbortedError extends StorageError {
  override readonly name = 'OperationAbortedError';
  constructor(message: string, opts?: Opts) {
    super('taskAborted', message, undefined, opts);
  }
}

export function lastLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter((l) => l && !/^WARNING: (Activation disabled|This metadata update is NOT backed up|Logical volume .* not zeroed)/.test(l));
  return lines.at(-1) ?? s.trim().slice(-200);
}

/** A thin clone named a parent in another image that is not a SHARED (template) volume. */
export class VolumeNonShareableError extends StorageError {
  override readonly name = 'VolumeNonShareableError';
  constructor(sdUUID: string, volUUID: string, imgUUID: string) {
    super('wrongState', `Volume ${volUUID} of image ${imgUUID} on domain ${sdUUID} is not a SHARED (template) volume: no other image may use it as a parent`,
      'volumeNonShareable', { data: { sdUUID, imgUUID, volUUID } });
  }
}

/** A SHARED (template) volume was asked to be written: as a VM's writable leaf, or under a snapshot of its own image. */
export class SharedVolumeNonWritableError extends StorageError {
  override readonly name = 'SharedVolumeNonWritableError';
  constructor(sdUUID: string, volUUID: string, what: string) {
    super('wrongState', `Volume ${volUUID} on domain ${sdUUID} is a SHARED (template) volume and is never written: ${what}`,
      'sharedVolumeNonWritable', { data: { sdUUID, volUUID } });
  }
}

/** The image is in use by a VM running on this host (a move would pull the disk from under it). */
export class VolumeBusyError extends StorageError {
  override readonly name = 'VolumeBusyError';
  constructor(sdUUID: string, imgUUID: string, vmIds: readonly string[], what: string) {
    super('wrongState', `Image ${imgUUID} on domain ${sdUUID} is used by running VM(s) ${vmIds.join(', ')}: ${what}`,
      'volumeIsBusy', { data: { sdUUID, imgUUID, vmIds: [...vmIds] } });
  }
}
