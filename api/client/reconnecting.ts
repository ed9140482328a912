// The client a long-running caller (the controller, one per host) holds: it
// keeps one connection open, reconnecting with capped, jittered exponential
// backoff when it drops. Its event listeners live here, not on a connection,
// so they hear every connection's events. Calls fail fast with
// NotConnectedError while there is no connection; a caller that wants to wait
// says for how long (whenConnected). close() leaves no timer or socket behind.
import type { MethodName, ParamsOf, ResultOf } from '../schema.js';
import { HostvisorClient, type ClientOptions } from './client.js';
import { callEach, raiseListenerError, type ListenerErrorHandler } from './event-hub.js';
import { ClientBase } from './client-base.js';
import { ClientClosedError, ConnectFailedError, NotConnectedError, WaitTimeoutError } from './errors.js';
import { backoffDelay, backoffSettings, NODE_TIMERS, type BackoffOptions, type Timers } from './backoff.js';
import type { CallOptions } from './tasks.js';

export type ConnectionPhase = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface ConnectionState {
  phase: ConnectionPhase;
  /** connecting: which attempt since the last connection (1, 2, ...); disconnected: how many have failed since (0 right after a drop). */
  attempt: number;
  /** Why the last connection ended or the last attempt failed. */
  lastError?: Error;
  /** disconnected: ms until the next attempt. */
  retryInMs?: number;
  /** Connections made so far: when it grows, events may have been missed in between, so a caller resyncs. */
  connections: number;
}

export interface ReconnectingOptions {
  /** Opens one connection; `signal` aborts it when the client is closed. */
  connect: (signal: AbortSignal) => Promise<HostvisorClient>;
  /** Names the peer in errors (e.g. its URL). */
  peer?: string;
  backoff?: BackoffOptions;
  /** Bound on one connect attempt, ms (default 15 s); a slower one counts as failed. */
  attemptTimeoutMs?: number;
  timers?: Timers;
  /** In [0, 1), like Math.random (the default). */
  random?: () => number;
  /** Gets what an event or state listener throws; default: raised as an uncaught exception. */
  onListenerError?: ListenerErrorHandler;
}

interface Waiter { resolve: () => void; reject: (e: Error) => void; timer: unknown }

export class ReconnectingClient extends ClientBase {
  private readonly stateListeners = new Set<(s: ConnectionState) => void>();
  private readonly waiters = new Set<Waiter>();
  private readonly backoff: Required<BackoffOptions>;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly peer: string;
  private st: ConnectionState = { phase: 'connecting', attempt: 1, connections: 0 };
  private current: HostvisorClient | undefined;
  private failures = 0;
  private closed = false;
  private retryTimer: unknown;
  private abortAttempt: (() => void) | undefined;
  private attemptDone: Promise<void>;

  /** Over WebSocket with mutual TLS, to one agent. */
  static connect(o: ClientOptions & Omit<ReconnectingOptions, 'connect' | 'peer'>): ReconnectingClient {
    return new ReconnectingClient({ ...o, peer: o.url, connect: (signal) => HostvisorClient.connect({ ...o, signal }) });
  }

  /** Starts connecting at once. */
  constructor(private readonly o: ReconnectingOptions) {
    super(o.onListenerError);
    this.backoff = backoffSettings(o.backoff);
    this.timers = o.timers ?? NODE_TIMERS;
    this.random = o.random ?? Math.random;
    this.peer = o.peer ?? 'the agent';
    this.attemptDone = this.attempt();
  }

  get state(): ConnectionState {
    return { ...this.st };
  }

  /** Hears every state change; returns a function that stops it. */
  onState(listener: (s: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => { this.stateListeners.delete(listener); };
  }

  /** On the current connection; NotConnectedError at once while there is none. */
  call<M extends MethodName>(method: M, params: ParamsOf<M>, opts: CallOptions = {}): Promise<ResultOf<M>> {
    const c = this.current;
    if (!c?.isConnected) return Promise.reject(this.notConnected(method));
    return c.call(method, params, opts);
  }

  callRaw(method: string, params: unknown, opts: CallOptions = {}): Promise<unknown> {
    const c = this.current;
    if (!c?.isConnected) return Promise.reject(this.notConnected(method));
    return c.callRaw(method, params, opts);
  }

  /** Resolves once connected; WaitTimeoutError (its cause: the last error) after timeoutMs, ClientClosedError if closed first. */
  whenConnected(timeoutMs: number): Promise<void> {
    if (this.st.phase === 'connected') return Promise.resolve();
    if (this.closed) return Promise.reject(new ClientClosedError('whenConnected'));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve, reject,
        timer: this.timers.setTimeout(() => {
          this.waiters.delete(w);
          reject(new WaitTimeoutError(timeoutMs, this.st.lastError ? { cause: this.st.lastError } : {}));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  /** Stops reconnecting and closes the connection; afterwards no timer or socket of this client is left. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.timers.clearTimeout(this.retryTimer);
      this.abortAttempt?.();
      this.settleWaiters(new ClientClosedError('whenConnected'));
      const c = this.current;
      this.current = undefined;
      this.setState({ phase: 'closed', attempt: 0 });
      await c?.close();
    }
    await this.attemptDone;
  }

  private async attempt(): Promise<void> {
    this.retryTimer = undefined;
    if (this.closed) return;
    this.setState({ phase: 'connecting', attempt: this.failures + 1 });
    let client: HostvisorClient;
    try {
      client = await this.connectBounded();
    } catch (e) {
      if (this.closed) return;
      this.failures++;
      this.scheduleRetry(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (this.closed) {
      await client.close({ graceMs: 0 });
      return;
    }
    this.failures = 0;
    this.current = client;
    const off = client.onEvent((method, params) => this.hub.dispatch(method, params));
    this.setState({ phase: 'connected', attempt: 0, connections: this.st.connections + 1 });
    this.settleWaiters();
    void client.disconnected.then((d) => {
      off();
      if (this.current !== client) return; // closed by close()
      this.current = undefined;
      this.scheduleRetry(d.error);
    });
  }

  /** One connect attempt, bounded by attemptTimeoutMs and cut short by close(). */
  private connectBounded(): Promise<HostvisorClient> {
    const abort = new AbortController();
    const limitMs = this.o.attemptTimeoutMs ?? 15_000;
    return new Promise<HostvisorClient>((resolve, reject) => {
      let over = false;
      const end = (err: Error): void => {
        if (over) return;
        over = true;
        this.timers.clearTimeout(timer);
        abort.abort(err);
        reject(err);
      };
      const timer = this.timers.setTimeout(() => end(new ConnectFailedError(this.peer, { cause: new Error(`no connection within ${limitMs} ms`) })), limitMs);
      this.abortAttempt = () => end(new ClientClosedError('connect'));
      let started: Promise<HostvisorClient>;
      try { started = this.o.connect(abort.signal); } catch (e) { started = Promise.reject(e); } // a throw is a failed attempt too
      started.then((c) => {
        if (over) { void c.close({ graceMs: 0 }); return; } // too late: nobody holds it
        over = true;
        this.timers.clearTimeout(timer);
        resolve(c);
      }, (e: unknown) => end(e instanceof Error ? e : new ConnectFailedError(this.peer, { cause: e })));
    }).finally(() => { this.abortAttempt = undefined; });
  }

  private scheduleRetry(lastError: Error): void {
    const delay = backoffDelay(this.failures, this.backoff, this.random);
    this.setState({ phase: 'disconnected', attempt: this.failures, lastError, retryInMs: delay });
    this.retryTimer = this.timers.setTimeout(() => { this.attemptDone = this.attempt(); }, delay);
  }

  private notConnected(method: string): NotConnectedError {
    return new NotConnectedError(method, this.st.lastError ? { cause: this.st.lastError, data: this.state } : { data: this.state });
  }

  private settleWaiters(err?: Error): void {
    for (const w of this.waiters) {
      this.timers.clearTimeout(w.timer);
      if (err) w.reject(err); else w.resolve();
    }
    this.waiters.clear();
  }

  private setState(s: Omit<ConnectionState, 'connections' | 'lastError'> & { connections?: number; lastError?: Error }): void {
    const next: ConnectionState = { phase: s.phase, attempt: s.attempt, connections: s.connections ?? this.st.connections };
    const lastError = s.lastError ?? this.st.lastError;
    if (lastError) next.lastError = lastError;
    if (s.retryInMs !== undefined) next.retryInMs = s.retryInMs;
    this.st = next;
    callEach([...this.stateListeners].map((l) => () => l({ ...next })), this.o.onListenerError ?? raiseListenerError);
  }
}
