// The controller's connection to one host's agent: a ReconnectingClient over mutual TLS with the
// controller's client certificate, a keepalive, bounded connects and calls, and a Correlation-Id
// on every call (the agent logs it with the call). It tells its owner each time a connection is
// made, because events may have been missed while there was none: the owner resyncs then.
import { randomUUID } from 'node:crypto';
import { ReconnectingClient, type ConnectionState } from '../../api/client/reconnecting.js';
import type { EventListenerOf, RawEventListener } from '../../api/client/event-hub.js';
import type { EventName } from '../../api/events.js';
import type { MethodName, ParamsOf, ResultOf } from '../../api/schema.js';
import type { DecisionSettings } from '../decision-settings.js';
import { errorFields, noLog, type LogFn } from './log-fn.js';

/** Where a host's agent listens. */
export interface AgentEndpoint {
  hostId: string;
  address: string;
  port: number;
  /** the name the agent's certificate must carry; default: the address */
  servername?: string;
}

/** The controller's client certificate and key, and the CA that signed the agents' certificates. */
export interface ControllerCredentials {
  key: Buffer | string;
  cert: Buffer | string;
  ca: Buffer | string;
}

export interface LinkCallOptions {
  /** carried to the agent as the JSON-RPC correlationId; a fresh one when not given */
  correlationId?: string;
  /** bound on waiting for the answer; default agentCallTimeoutMs */
  timeoutMs?: number;
}

/** wss://address:port/, with an IPv6 address in brackets. */
export function agentUrl(address: string, port: number): string {
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
  return `wss://${host}:${port}/`;
}

/** A short id for a call that no job carries: enough to find the call in the agent's log. */
export function newCorrelationId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function sameEndpoint(a: AgentEndpoint, b: AgentEndpoint): boolean {
  return a.hostId === b.hostId && a.address === b.address && a.port === b.port && a.servername === b.servername;
}

export interface AgentLinkHooks {
  /** a connection was made; `connections` counts them since the link was created (1 for the first) */
  onConnected?: (link: AgentLink, connections: number) => void;
  log?: LogFn;
}

export class AgentLink {
  private readonly client: ReconnectingClient;
  private readonly log: LogFn;
  private readonly callTimeoutMs: number;
  private seenConnections = 0;
  private lostLogged = false;

  constructor(readonly endpoint: AgentEndpoint, creds: ControllerCredentials, s: DecisionSettings, private readonly hooks: AgentLinkHooks = {}) {
    const base = hooks.log ?? noLog;
    const where = { hostId: endpoint.hostId, address: endpoint.address, port: endpoint.port };
    this.log = (level, msg, fields) => base(level, msg, { ...where, ...fields });
    this.callTimeoutMs = s.agentCallTimeoutMs;
    this.client = ReconnectingClient.connect({
      url: agentUrl(endpoint.address, endpoint.port),
      key: creds.key, cert: creds.cert, ca: creds.ca,
      ...(endpoint.servername !== undefined ? { servername: endpoint.servername } : {}),
      connectTimeoutMs: s.agentConnectTimeoutMs,
      attemptTimeoutMs: s.agentConnectTimeoutMs,
      keepaliveMs: s.agentKeepaliveMs,
      timeoutMs: s.agentCallTimeoutMs,
      backoff: { maxMs: s.agentReconnectMaxMs },
      // A listener of ours that throws is a bug to log, not a reason to take the controller down.
      onListenerError: (err) => this.log('error', 'agent event listener failed', errorFields(err)),
    });
    this.client.onState((st) => this.onState(st));
  }

  get hostId(): string {
    return this.endpoint.hostId;
  }

  get state(): ConnectionState {
    return this.client.state;
  }

  /** Resolves once connected; WaitTimeoutError (1105) after timeoutMs, ClientClosedError (1104) if closed first. */
  whenConnected(timeoutMs: number): Promise<void> {
    return this.client.whenConnected(timeoutMs);
  }

  /** A typed call, bounded, with a Correlation-Id; NotConnectedError (1101) at once while there is no connection. */
  call<M extends MethodName>(method: M, params: ParamsOf<M>, o: LinkCallOptions = {}): Promise<ResultOf<M>> {
    return this.client.call(method, params, {
      correlationId: o.correlationId ?? newCorrelationId('ctl'),
      timeoutMs: o.timeoutMs ?? this.callTimeoutMs,
    });
  }

  /** A typed listener for one of the agent's events, on every connection of this link. */
  on<E extends EventName>(name: E, listener: EventListenerOf<E>): () => void {
    return this.client.on(name, listener);
  }

  /**
   * Every notification as sent (method, params), on every connection of this link: for events
   * keyed by something other than a VM id (|storage|task_status|<taskID>), which the typed
   * listeners do not match.
   */
  onEvent(listener: RawEventListener): () => void {
    return this.client.onEvent(listener);
  }

  /** Stops reconnecting and closes the connection; leaves no timer or socket. */
  close(): Promise<void> {
    return this.client.close();
  }

  private onState(st: ConnectionState): void {
    if (st.phase === 'connected' && st.connections > this.seenConnections) {
      this.seenConnections = st.connections;
      this.lostLogged = false;
      this.log('info', 'agent connected', { connections: st.connections });
      this.hooks.onConnected?.(this, st.connections);
    } else if (st.phase === 'disconnected') {
      // The first failure after a connection is news; the retries of a long outage are not.
      const level = this.lostLogged ? 'debug' : 'warn';
      this.lostLogged = true;
      this.log(level, 'agent not connected', { attempt: st.attempt, retryInMs: st.retryInMs, ...(st.lastError ? errorFields(st.lastError) : {}) });
    }
  }
}
