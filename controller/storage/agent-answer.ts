// Reading agent errors: the storage code needs the agent's numeric code (309 not connected, 40
// the lease is held, 401 no such task, ...) to tell an answer that says something about the
// storage from a call that never got an answer (which says nothing, and is never read as "no").
import { HostvisorClientError, RpcCallError } from '../../api/client/errors.js';
import { ERRORS, type ErrorName } from '../../api/errors.js';

/** The code the agent answered with; undefined when there was no answer from the agent itself. */
export function agentCode(e: unknown): number | undefined {
  if (!(e instanceof RpcCallError)) return undefined;
  // A call timeout is the client's own (1007): the agent may still be working on it.
  if (e.name === 'CallTimeoutError') return undefined;
  return e.code;
}

/** The agent answered with this error. */
export function answered(e: unknown, name: ErrorName): boolean {
  return agentCode(e) === ERRORS[name].code;
}

/** A short text for logs, records and per-host statuses. */
export function errorText(e: unknown): string {
  if (e instanceof HostvisorClientError) return `${e.code} ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
