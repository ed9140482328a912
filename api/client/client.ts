// A typed client for the agent's API, derived from the schema: call('VM.create', ...)
// checks the params and result types at compile time, and on('VM_status', ...)
// the events'. One client is one connection: `disconnected` says when and why
// it ended, and every call still waiting is rejected then with a named error.
// ReconnectingClient (reconnecting.ts) is what a long-running caller holds.
// The JSON-RPC logic here knows only the Transport interface; WebSocket over
// mutual TLS (ws-transport.ts) is the default.
import type { MethodName, ParamsOf, ResultOf } from '../schema.js';
import type { Transport, TransportClosed } from './transport.js';
import { WsTransport, type WsTlsOptions } from './ws-transport.js';
import type { ListenerErrorHandler } from './event-hub.js';
import { ClientBase } from './client-base.js';
import { CallTimeoutError, ClientClosedError, ConnectionLostError, NotConnectedError, RpcCallError } from './errors.js';
import type { CallOptions } from './tasks.js';

export * from './errors.js';
export { TaskFailedError, TaskWaitTimeoutError, type CallOptions, type Caller, type TaskWaitOptions } from './tasks.js';
export type { Transport, TransportClosed } from './transport.js';
export { WsTransport, type WsTlsOptions } from './ws-transport.js';
export { parseEvent, type EventListenerOf, type RawEventListener, type VmEventName, type HostEventName, type EventParamsOf, type EventBodyOf, type ListenerErrorHandler } from './event-hub.js';

export interface CommonOptions {
  /** Default bound on waiting for a call's answer, ms (default 60 s). */
  timeoutMs?: number;
  /** Gets what an event listener throws (e.g. to log it); default: raised as an uncaught exception. */
  onListenerError?: ListenerErrorHandler;
}

export interface ClientOptions extends WsTlsOptions, CommonOptions {}

/** How a connection ended. */
export interface Disconnect {
  /** ConnectionLostError when the agent or the network ended it (its cause says how); ClientClosedError when close() did. */
  error: ConnectionLostError | ClientClosedError;
  /** The transport's close code (WebSocket: 1006 dropped, 1001 agent stopping, 1009 frame too big). */
  code?: number;
  reason: string;
}

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Answer {
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: { code?: unknown; message?: unknown; data?: unknown };
}

export class HostvisorClient extends ClientBase {
  /** Resolves once, when the connection has ended, with the cause; never rejects. */
  readonly disconnected: Promise<Disconnect>;
  private readonly pending = new Map<number, Pending>();
  private readonly timeoutMs: number;
  private nextId = 1;
  private closing = false;
  private ended: TransportClosed | undefined;

  /** Connects over WebSocket with mutual TLS; rejects with ConnectFailedError within connectTimeoutMs. */
  static async connect(o: ClientOptions): Promise<HostvisorClient> {
    return new HostvisorClient(await WsTransport.connect(o), o);
  }

  /** A client over any open transport. */
  constructor(readonly transport: Transport, o: CommonOptions = {}) {
    super(o.onListenerError);
    this.timeoutMs = o.timeoutMs ?? 60_000;
    transport.onFrame((text) => this.onFrame(text));
    this.disconnected = transport.closed.then((c) => this.onClosed(c));
  }

  /** True until the connection ends or close() is called. */
  get isConnected(): boolean {
    return !this.closing && !this.ended && this.transport.isOpen;
  }

  call<M extends MethodName>(method: M, params: ParamsOf<M>, opts: CallOptions = {}): Promise<ResultOf<M>> {
    return this.request(method, params, opts) as Promise<ResultOf<M>>;
  }

  callRaw(method: string, params: unknown, opts: CallOptions = {}): Promise<unknown> {
    return this.request(method, params, opts);
  }

  /**
   * Closes the connection (abruptly after graceMs, default 2 s; 0 at once).
   * Calls still waiting are rejected with ClientClosedError.
   */
  async close(o: { graceMs?: number } = {}): Promise<void> {
    this.closing = true;
    await this.transport.close(o);
    await this.disconnected;
  }

  private request(method: string, params: unknown, opts: CallOptions): Promise<unknown> {
    if (!this.isConnected) {
      return Promise.reject(new NotConnectedError(method, this.ended ? { data: this.ended } : {}));
    }
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const frame: Record<string, unknown> = { jsonrpc: '2.0', id, method, params };
    if (opts.correlationId) frame.correlationId = opts.correlationId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CallTimeoutError(method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      this.transport.send(JSON.stringify(frame)).catch((err: unknown) => {
        if (!this.pending.delete(id)) return; // already answered or timed out
        clearTimeout(timer);
        reject(new ConnectionLostError(`${method}: could not be sent to the agent`, { cause: err }));
      });
    });
  }

  private onFrame(text: string): void {
    let msg: unknown;
    try { msg = JSON.parse(text); } catch { return; }
    for (const m of (Array.isArray(msg) ? msg : [msg]) as Answer[]) {
      if (!m || typeof m !== 'object') continue;
      if (typeof m.method === 'string' && m.id === undefined) {
        this.hub.dispatch(m.method, m.params);
        continue;
      }
      // Not ours: id null (the agent could not read a frame), or an answer after its call timed out.
      const p = typeof m.id === 'number' ? this.pending.get(m.id) : undefined;
      if (!p) continue;
      this.pending.delete(m.id as number);
      clearTimeout(p.timer);
      if (m.error && typeof m.error === 'object') p.reject(new RpcCallError(String(m.error.message), Number(m.error.code), m.error.data));
      else p.resolve(m.result);
    }
  }

  private onClosed(c: TransportClosed): Disconnect {
    this.ended = c;
    const byUs = this.closing || c.local;
    const how = `${c.error?.message ?? c.reason}${c.code === undefined ? '' : ` (code ${c.code})`}`;
    const cause = c.error ?? new Error(how);
    const lost = (what: string): ConnectionLostError | ClientClosedError => (byUs
      ? new ClientClosedError(what)
      : new ConnectionLostError(`${what}: the connection to the agent was lost: ${how}`, { cause, data: c }));
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(lost(p.method));
    }
    this.pending.clear();
    return { error: lost('connection'), ...(c.code === undefined ? {} : { code: c.code }), reason: c.reason };
  }
}
