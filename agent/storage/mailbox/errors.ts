// Errors of the extension mailbox. They are StorageErrors, so they map onto the
// agent's API error codes; `data` says which host, slot and request.
import { StorageError } from '../errors.js';
import { ReasonCode, type ReasonName } from './format.js';

type Data = Record<string, unknown>;

/** Reading or writing a mailbox area failed (or the area is too small). */
export class MailboxIoError extends StorageError {
  override readonly name = 'MailboxIoError';
  /** The area ended before the I/O did. */
  readonly short: boolean;
  constructor(message: string, opts: { cause?: unknown; path?: string; short?: boolean } = {}) {
    super('internalError', message, undefined, { cause: opts.cause, data: { path: opts.path } });
    this.short = opts.short ?? false;
  }
}

/** No reply came from any SPM within the request's overall timeout. */
export class MailboxTimeoutError extends StorageError {
  override readonly name = 'MailboxTimeoutError';
  constructor(message: string, data: Data) {
    super('timeout', message, 'volumeExtendingError', { data });
  }
}

/** The request could not be queued (the local queue is full) or the mailbox stopped before the reply. */
export class MailboxUnavailableError extends StorageError {
  override readonly name = 'MailboxUnavailableError';
  constructor(message: string, data: Data = {}) {
    super('unavailable', message, 'volumeExtendingError', { data });
  }
}

/**
 * A handler may throw this to choose the reason code of the failed reply.
 * Other errors are mapped by mailboxReason().
 */
export class MailboxReasonError extends Error {
  override readonly name = 'MailboxReasonError';
  constructor(readonly reason: ReasonName, message: string, opts?: { cause?: unknown }) {
    super(message, opts);
  }
}

/** The reason code for a handler's error: explicit, from a StorageError's storageCode, or from an errno. */
export function mailboxReason(e: unknown): number {
  if (e instanceof MailboxReasonError) return ReasonCode[e.reason];
  const o = (e ?? {}) as { storageCode?: unknown; code?: unknown };
  switch (o.storageCode) {
    case 'noSpaceLeftOnDomain': case 'volumeGroupSizeError': return ReasonCode.noSpace;
    case 'volumeDoesNotExist': case 'storageDomainDoesNotExist': case 'imageDoesNotExist': return ReasonCode.notFound;
    case 'volumeResizeValueError': return ReasonCode.badRequest;
  }
  if (o.code === 'ENOSPC') return ReasonCode.noSpace;
  if (o.code === 'ENOENT') return ReasonCode.notFound;
  return ReasonCode.extendFailed;
}
