// One AgentLink per host, kept in step with the hosts the controller knows: sync() adds the links
// of new hosts, closes those of removed hosts and redials a host whose address changed. Parts
// that follow every agent (the health monitor, reconcile) attach to each link as it comes
// (forEachLink) and hear when a connection is (re)established (onResync).
import type { MethodName, ParamsOf, ResultOf } from '../../api/schema.js';
import type { DecisionSettings } from '../decision-settings.js';
import { AgentLink, sameEndpoint, type AgentEndpoint, type ControllerCredentials, type LinkCallOptions } from './agent-link.js';
import { errorFields, noLog, type LogFn } from './log-fn.js';

/** A call for a host the controller has no link to (unknown, or removed). */
export class NoAgentLinkError extends Error {
  override readonly name = 'NoAgentLinkError';
  readonly code = 1210;
  constructor(readonly hostId: string, options?: { cause?: unknown }) {
    super(`no connection to the agent of host ${hostId}: the host is not known to the controller`, options);
  }
}

export interface AgentLinksOptions {
  credentials: ControllerCredentials;
  settings: DecisionSettings;
  log?: LogFn;
}

export type ResyncListener = (hostId: string, connections: number) => void;
/** Called for each link, now and as links come; what it returns is called when that link goes. */
export type LinkAttacher = (link: AgentLink) => (() => void) | void;

export class AgentLinks {
  private readonly links = new Map<string, AgentLink>();
  private readonly resyncListeners = new Set<ResyncListener>();
  private readonly attachers = new Map<LinkAttacher, Map<AgentLink, () => void>>();
  private readonly closing = new Set<Promise<void>>();
  private readonly log: LogFn;
  private closed = false;

  constructor(private readonly o: AgentLinksOptions) {
    this.log = o.log ?? noLog;
  }

  /** Adds the host's link, or redials it if its endpoint changed; returns the link. */
  set(endpoint: AgentEndpoint): AgentLink {
    if (this.closed) throw new Error('AgentLinks is closed');
    const old = this.links.get(endpoint.hostId);
    if (old !== undefined && sameEndpoint(old.endpoint, endpoint)) return old;
    if (old !== undefined) {
      this.log('info', 'agent endpoint changed: redialling', { hostId: endpoint.hostId, from: `${old.endpoint.address}:${old.endpoint.port}`, to: `${endpoint.address}:${endpoint.port}` });
      this.drop(old);
    }
    const link = new AgentLink(endpoint, this.o.credentials, this.o.settings, {
      log: this.log,
      onConnected: (l, n) => this.resynced(l, n),
    });
    this.links.set(endpoint.hostId, link);
    for (const [attach, attached] of this.attachers) this.attach(attach, attached, link);
    return link;
  }

  /** Closes the host's link, if there is one. */
  async remove(hostId: string): Promise<void> {
    const link = this.links.get(hostId);
    if (link !== undefined) await this.drop(link);
  }

  /** Level-triggered: afterwards there is exactly one link per given host, at its given endpoint. */
  async sync(endpoints: readonly AgentEndpoint[]): Promise<void> {
    const wanted = new Set(endpoints.map((e) => e.hostId));
    const gone = [...this.links.values()].filter((l) => !wanted.has(l.hostId)).map((l) => this.drop(l));
    for (const e of endpoints) this.set(e);
    await Promise.all(gone);
  }

  get(hostId: string): AgentLink | undefined {
    return this.links.get(hostId);
  }

  hostIds(): string[] {
    return [...this.links.keys()];
  }

  /** A call to the host's agent: bounded, with a Correlation-Id; NoAgentLinkError (1210) for a host without a link. */
  call<M extends MethodName>(hostId: string, method: M, params: ParamsOf<M>, o: LinkCallOptions = {}): Promise<ResultOf<M>> {
    const link = this.links.get(hostId);
    if (link === undefined) return Promise.reject(new NoAgentLinkError(hostId));
    return link.call(method, params, o);
  }

  /** Hears every connection made to any agent (the first and each reconnection): events may have been missed, so resync. */
  onResync(listener: ResyncListener): () => void {
    this.resyncListeners.add(listener);
    return () => { this.resyncListeners.delete(listener); };
  }

  /** Attaches to every link, present and future; the returned function detaches from all. */
  forEachLink(attach: LinkAttacher): () => void {
    const attached = new Map<AgentLink, () => void>();
    this.attachers.set(attach, attached);
    for (const link of this.links.values()) this.attach(attach, attached, link);
    return () => {
      this.attachers.delete(attach);
      for (const detach of attached.values()) detach();
      attached.clear();
    };
  }

  /** Closes every link; afterwards no timer or socket of them is left. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.links.values()].map((l) => this.drop(l)));
    await Promise.all([...this.closing]);
  }

  private attach(attach: LinkAttacher, attached: Map<AgentLink, () => void>, link: AgentLink): void {
    try {
      const detach = attach(link);
      if (detach) attached.set(link, detach);
    } catch (e) {
      this.log('error', 'attaching to an agent link failed', { hostId: link.hostId, ...errorFields(e) });
    }
  }

  private drop(link: AgentLink): Promise<void> {
    if (this.links.get(link.hostId) === link) this.links.delete(link.hostId);
    for (const attached of this.attachers.values()) {
      attached.get(link)?.();
      attached.delete(link);
    }
    const p = link.close().finally(() => { this.closing.delete(p); });
    this.closing.add(p);
    return p;
  }

  private resynced(link: AgentLink, connections: number): void {
    if (this.links.get(link.hostId) !== link) return; // replaced meanwhile
    for (const l of this.resyncListeners) {
      try {
        l(link.hostId, connections);
      } catch (e) {
        this.log('error', 'resync listener failed', { hostId: link.hostId, ...errorFields(e) });
      }
    }
  }
}
