// What the client needs from a connection: send a frame, receive frames, close,
// and learn when (and why) it closed. The JSON-RPC logic (client.ts) knows only
// this; WebSocket over mutual TLS (ws-transport.ts) is the default.

/** Why a transport closed. */
export interface TransportClosed {
  /** The protocol's close code when it has one (WebSocket: 1000 normal, 1001 going away, 1006 dropped, 1009 too big). */
  code?: number;
  reason: string;
  /** True when this side asked for the close (close()). */
  local: boolean;
  /** The error that ended the connection, if one did (reset, TLS failure, keepalive unanswered). */
  error?: Error;
}

export interface Transport {
  /** Sends one frame; rejects if it could not be handed to the connection. */
  send(frame: string | Uint8Array): Promise<void>;
  /** Every frame received, as text; returns a function that stops listening. */
  onFrame(listener: (text: string) => void): () => void;
  /** True while frames can be sent. */
  readonly isOpen: boolean;
  /** Resolves once, when the connection has closed for whatever reason; never rejects. */
  readonly closed: Promise<TransportClosed>;
  /**
   * Closes the connection: politely, then abruptly after `graceMs` (0: at
   * once, for a peer that cannot answer). Resolves once it is closed.
   */
  close(o?: { graceMs?: number }): Promise<void>;
}
