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

/** A connection held more than rpc.maxConnectionBytes (queued requests + unsent replies) for rpc.overLimitCloseMs. */
export class OverConnectionBoundError extends ConnectionLimitError {
  override readonly name = 'OverConnectionBoundError';
  readonly code = CLOSE_POLICY;

  constructor(peer: string, heldBytes: number, boundBytes: number, overMs: number) {
    super(peer, `held ${heldBytes} bytes (queued requests and unread replies), over its bound of ${boundBytes}, for ${overMs} ms`);
  }
}

/** While all connections together held more than rpc.maxTotalBytes, this one held more than its share for rpc.overLimitCloseMs. */
export class OverTotalShareError extends ConnectionLimitError {
  override readonly name = 'OverTotalShareError';
  readonly code = CLOSE_TRY_AGAIN;

  constructor(peer: string, heldBytes: number, shareBytes: number, overMs: number) {
    super(peer, `held ${heldBytes} bytes, over its share of ${shareBytes} of the agent's total, for ${overMs} ms`);
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

/** A peer address already had rpc.maxConnectionsPerPeer connections, or the agent had rpc.maxConnections. */
export class TooManyConnectionsError extends ConnectionLimitError {
  override readonly name = 'TooManyConnectionsError';
  readonly code = CLOSE_TRY_AGAIN;

  constructor(peer: string, limit: number, scope: 'peer' | 'agent') {
    super(peer, scope === 'peer' ? `this address already has ${limit} connections` : `the agent already has ${limit} connections`);
  }
}
