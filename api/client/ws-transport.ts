// The default transport: WebSocket over mutual TLS (the agent's listener).
// Connecting is bounded and can be aborted; an optional keepalive ends a
// connection whose peer stopped answering (a host cut off without a TCP reset).
import WebSocket from 'ws';
import type { Transport, TransportClosed } from './transport.js';
import { ConnectFailedError } from './errors.js';

export interface WsTlsOptions {
  /** wss://host:port/ */
  url: string;
  key: Buffer | string;
  cert: Buffer | string;
  ca: Buffer | string;
  /** Checked against the agent certificate's name; default: the URL's host. */
  servername?: string;
  /** Bound on TCP, TLS and the WebSocket upgrade together (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Ping interval, ms; a connection that neither answers a ping nor sends
   * anything before the next one is ended. Off by default: the agent stops
   * reading a connection with too many calls in flight, and its pongs with it.
   */
  keepaliveMs?: number;
  /** Aborts a connect in progress (a reconnecting client being closed). */
  signal?: AbortSignal;
  maxPayloadBytes?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_CLOSE_GRACE_MS = 2_000;

export class WsTransport implements Transport {
  readonly closed: Promise<TransportClosed>;
  private readonly listeners = new Set<(text: string) => void>();
  private closeRequested = false;
  private firstError: Error | undefined;
  private keepalive: NodeJS.Timeout | undefined;

  /** Opens a connection; rejects with ConnectFailedError (its cause says why) within connectTimeoutMs. */
  static connect(o: WsTlsOptions): Promise<WsTransport> {
    return new Promise((resolve, reject) => {
      if (o.signal?.aborted) return reject(new ConnectFailedError(o.url, { cause: o.signal.reason }));
      const limitMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
      const ws = new WebSocket(o.url, {
        key: o.key, cert: o.cert, ca: o.ca,
        perMessageDeflate: false,
        handshakeTimeout: limitMs,
        ...(o.servername ? { servername: o.servername } : {}),
        maxPayload: o.maxPayloadBytes ?? 256 * 1024 * 1024,
      });
      const settle = (): void => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        ws.off('open', onOpen);
        ws.off('error', fail);
      };
      const fail = (cause: unknown): void => {
        settle();
        ws.on('error', () => { /* terminating a connect in progress reports one more error */ });
        ws.terminate();
        reject(new ConnectFailedError(o.url, { cause }));
      };
      const onAbort = (): void => fail(o.signal?.reason ?? new Error('connect aborted'));
      const onOpen = (): void => { settle(); resolve(new WsTransport(ws, o.keepaliveMs ?? 0)); };
      const timer = setTimeout(() => fail(new Error(`no connection within ${limitMs} ms`)), limitMs);
      o.signal?.addEventListener('abort', onAbort, { once: true });
      ws.once('open', onOpen);
      ws.once('error', fail);
    });
  }

  private constructor(private readonly ws: WebSocket, keepaliveMs: number) {
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        clearInterval(this.keepalive);
        resolve({
          code,
          reason: reason.toString() || describeClose(code),
          local: this.closeRequested,
          ...(this.firstError ? { error: this.firstError } : {}),
        });
      });
    });
    ws.on('error', (err: Error) => { this.firstError ??= err; });
    ws.on('message', (data: WebSocket.RawData) => {
      const text = Buffer.isBuffer(data) ? data.toString('utf8')
        : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
      for (const l of this.listeners) l(text);
    });
    if (keepaliveMs > 0) this.startKeepalive(keepaliveMs);
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) return reject(new Error('the WebSocket is not open'));
      this.ws.send(frame, (err) => (err ? reject(err) : resolve()));
    });
  }

  onFrame(listener: (text: string) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async close(o: { graceMs?: number } = {}): Promise<void> {
    this.closeRequested = true;
    const graceMs = o.graceMs ?? DEFAULT_CLOSE_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    if (this.ws.readyState !== WebSocket.CLOSED) {
      if (graceMs <= 0) {
        this.ws.terminate();
      } else {
        this.ws.close(1000);
        // A peer that cannot answer the close handshake must not hold us for ws's own 30 s.
        timer = setTimeout(() => this.ws.terminate(), graceMs);
      }
    }
    await this.closed;
    clearTimeout(timer);
  }

  private startKeepalive(ms: number): void {
    let heard = true;
    const alive = (): void => { heard = true; };
    this.ws.on('pong', alive);
    this.ws.on('message', alive);
    this.keepalive = setInterval(() => {
      if (!heard) {
        this.firstError ??= new Error(`keepalive: nothing heard from the agent for ${ms} ms`);
        this.ws.terminate();
        return;
      }
      heard = false;
      this.ws.ping();
    }, ms);
    this.keepalive.unref(); // the socket itself keeps the process alive while it is open
  }
}

/** Words for a close that came without a reason (RFC 6455 section 7.4.1). */
function describeClose(code: number): string {
  switch (code) {
    case 1000: return 'closed normally';
    case 1001: return 'going away';
    case 1006: return 'dropped without a close frame';
    case 1009: return 'message too big';
    default: return 'closed';
  }
}
