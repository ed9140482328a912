// How a job ends badly: a JobFailure names a stable code and the details an operator needs;
// anything else a handler throws is mapped here once (an agent's error keeps its numeric code).
import { HostvisorClientError, RpcCallError } from '../../api/client/errors.js';
import type { JobError } from '../model/jobs.js';
import { ApiError } from '../http/errors.js';
import { ConflictError, NotFoundError } from '../store/errors.js';

/** A job failed for a reason the handler understood (no host fits, the agent refused, ...). */
export class JobFailure extends Error {
  override readonly name = 'JobFailure';
  readonly numericCode = 6001;
  constructor(readonly code: string, message: string, readonly details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A job the controller cannot run (no handler for its kind in this build). */
export class JobNotSupportedError extends JobFailure {
  constructor(kind: string) { super('NotSupported', `jobs of kind ${kind} are not run by this controller`, { kind }); }
}

/** The controller stopped while the job ran; it is resumed at the next start. */
export class JobInterruptedError extends Error {
  override readonly name = 'JobInterruptedError';
  readonly code = 6002;
}

export function jobErrorOf(e: unknown): JobError {
  if (e instanceof JobFailure) return { code: e.code, message: e.message, details: e.details };
  if (e instanceof ApiError) return { code: e.code, message: e.message, details: e.details };
  if (e instanceof NotFoundError) return { code: 'NotFound', message: e.message, details: { kind: e.kind, id: e.id } };
  if (e instanceof ConflictError) return { code: 'Conflict', message: e.message, details: e.details };
  if (e instanceof RpcCallError) {
    return { code: 'AgentError', message: e.message, details: { agentCode: e.code, ...(e.errorName && { agentError: e.errorName }) } };
  }
  if (e instanceof HostvisorClientError) return { code: 'AgentUnreachable', message: e.message, details: { agentCode: e.code } };
  const err = e as { name?: string; message?: string; code?: unknown; hostId?: unknown };
  return { code: 'Internal', message: err?.message ?? String(e), details: { ...(err?.name && { error: err.name }), ...(err?.code !== undefined && { errorCode: err.code }) } };
}
