// What the typed client throws. Every error has a stable numeric code and,
// where another error caused it, a `cause`. Codes the agent answers with are
// in ../errors.ts; the client's own are 1101-1199, which the agent never uses,
// except a call's timeout, which keeps 1007 (request timed out) as the agent's
// own timeout does: to a caller both mean "no answer in time, it may still run".
import { ERRORS } from '../errors.js';

export const CLIENT_ERRORS = {
  callTimeout: { code: ERRORS.requestTimeout.code, message: 'No answer from the agent in time' },
  notConnected: { code: 1101, message: 'Not connected to the agent' },
  connectionLost: { code: 1102, message: 'The connection to the agent was lost' },
  connectFailed: { code: 1103, message: 'Connecting to the agent failed' },
  clientClosed: { code: 1104, message: 'The client was closed' },
  waitTimeout: { code: 1105, message: 'Not connected within the time allowed' },
} as const;

export type ClientErrorName = keyof typeof CLIENT_ERRORS;

interface ErrorOptions { cause?: unknown; data?: unknown }

/** Anything the client throws: `code` is stable API. */
export class HostvisorClientError extends Error {
  override readonly name: string = 'HostvisorClientError';
  readonly data: unknown;
  constructor(message: string, readonly code: number, o: ErrorOptions = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.data = o.data;
  }
}

/** An error answer from the agent, with its stable numeric code (ERRORS). */
export class RpcCallError extends HostvisorClientError {
  override readonly name: string = 'RpcCallError';
  readonly errorName: string | undefined;
  constructor(message: string, code: number, data?: unknown, o: { cause?: unknown } = {}) {
    super(message, code, { ...o, data });
    this.errorName = Object.entries(ERRORS).find(([, v]) => v.code === code)?.[0];
  }
}

/** The agent did not answer a call in time (1007). The call may still complete on the agent. */
export class CallTimeoutError extends RpcCallError {
  override readonly name = 'CallTimeoutError';
  constructor(readonly method: string, readonly timeoutMs: number) {
    super(`${method}: no answer within ${timeoutMs} ms`, CLIENT_ERRORS.callTimeout.code);
  }
}

/** A call made while there is no connection (never opened, dropped, or closed): refused at once, never sent. */
export class NotConnectedError extends HostvisorClientError {
  override readonly name = 'NotConnectedError';
  constructor(readonly method: string, o: ErrorOptions = {}) {
    super(`${method}: ${CLIENT_ERRORS.notConnected.message}`, CLIENT_ERRORS.notConnected.code, o);
  }
}

/** The connection dropped (agent gone, network cut, keepalive unanswered) while a call waited for its answer; `cause` says why. */
export class ConnectionLostError extends HostvisorClientError {
  override readonly name = 'ConnectionLostError';
  constructor(message: string, o: ErrorOptions = {}) {
    super(message, CLIENT_ERRORS.connectionLost.code, o);
  }
}

/** Opening the connection failed (refused, TLS, handshake timeout); `cause` is the underlying error. */
export class ConnectFailedError extends HostvisorClientError {
  override readonly name = 'ConnectFailedError';
  constructor(readonly url: string, o: ErrorOptions = {}) {
    super(`${CLIENT_ERRORS.connectFailed.message} at ${url}${o.cause instanceof Error ? `: ${o.cause.message}` : ''}`, CLIENT_ERRORS.connectFailed.code, o);
  }
}

/** The client's owner closed it; calls that were waiting are rejected with this. */
export class ClientClosedError extends HostvisorClientError {
  override readonly name = 'ClientClosedError';
  constructor(what: string) {
    super(`${what}: ${CLIENT_ERRORS.clientClosed.message}`, CLIENT_ERRORS.clientClosed.code);
  }
}

/** Waiting for a connection (whenConnected) ran out of time; `cause` is the last connect error, if any. */
export class WaitTimeoutError extends HostvisorClientError {
  override readonly name = 'WaitTimeoutError';
  constructor(timeoutMs: number, o: ErrorOptions = {}) {
    super(`${CLIENT_ERRORS.waitTimeout.message} (${timeoutMs} ms)`, CLIENT_ERRORS.waitTimeout.code, o);
  }
}
