// Why the agent closed or refused a connection. Each error's code is the
// WebSocket close code the agent sends (or would send, for a connection
// that never became WebSocket): 1008, the peer broke the agent's policy;
// 1013, the agent is short of room, try again later. They are the peer's
// doing, so they are logged at info, never as server faults.

export const CLOSE_POLICY = 1008;
export const CLOSE_TRY_AGAIN = 1013;

export abstract class ConnectionLimitError extends Error {
  abstract readonly code: number;

  constructor(readonly peer: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A connection read none of its replies for rpc.stalledCloseMs while holding more than rpc.maxConnectionBytes. */
export class OverConnectionBoundError extends ConnectionLimitError {
  override readonly name = 'OverConnectionBoundError';
  readonly code = CLOSE_POLICY;

  constructor(peer: string, heldBytes: number, boundBytes: number, stalledMs: number) {
    super(peer, `read none of its replies for ${stalledMs} ms, holding ${heldBytes} bytes (queued requests and unread replies), over its bound of ${boundBytes}`);
  }
}

/** A connection read none of its replies for rpc.stalledCloseMs while holding more than its share of a pressed rpc.maxTotalBytes. */
export class OverTotalShareError extends ConnectionLimitError {
  override readonly name = 'OverTotalShareError';
  readonly code = CLOSE_TRY_AGAIN;

  constructor(peer: string, heldBytes: number, shareBytes: number, stalledMs: number) {
    super(peer, `read none of its replies for ${stalledMs} ms, holding ${heldBytes} bytes, over its share of ${shareBytes} of the agent's total`);
  }
}

/** A connection read none of its replies for rpc.stalledCloseMs (while under its bounds). */
export class NotReadingError extends ConnectionLimitError {
  override readonly name = 'NotReadingError';
  readonly code = CLOSE_POLICY;

  constructor(peer: string, heldBytes: number, stalledMs: number) {
    super(peer, `read none of its replies for ${stalledMs} ms, holding ${heldBytes} bytes`);
  }
}

/** A connection was not a WebSocket rpc.upgradeTimeoutMs after it was accepted. */
export class UpgradeTimeoutError extends ConnectionLimitError {
  override readonly name = 'UpgradeTimeoutError';
  readonly code = CLOSE_POLICY;

  constructor(peer: string, stage: string, timeoutMs: number) {
    super(peer, `not upgraded to WebSocket within ${timeoutMs} ms of accept (${stage})`);
  }
}

/** A message was begun and not finished within rpc.partialMessageTimeoutMs. */
export class PartialMessageTimeoutError extends ConnectionLimitError {
  override readonly name = 'PartialMessageTimeoutError';
  readonly code = CLOSE_POLICY;

  constructor(peer: string, incompleteMs: number, timeoutMs: number) {
    super(peer, `left a message incomplete for ${incompleteMs} ms (the bound is ${timeoutMs} ms)`);
  }
}

/** A peer address already had rpc.maxConnectionsPerPeer connections, or the agent had rpc.maxConnections. */
export class TooManyConnectionsError extends ConnectionLimitError {
  override readonly name = 'TooManyConnectionsError';
  readonly code = CLOSE_TRY_AGAIN;

  constructor(peer: string, limit: number, scope: 'peer' | 'agent') {
    super(peer, scope === 'peer' ? `this address already has ${limit} connections` : `the agent already has ${limit} connections`);
  }
}
