// The health monitor: a level-triggered loop that polls every tracked host's Host.getStats each
// pollIntervalMs, turns the outcome into a poll observation, moves the host's record with
// nextHostHealth on the real clock, and hands the record and its transition events to the sink.
// It also follows each agent's VM_status events and fetches Host.getVMList (every
// vmListIntervalMs, and at once after a new connection or a change of the host's status), and
// hands what it knows of the host's VMs to the sink for controller/reconcile. When a host turns
// NonResponsive its VMs are handed on as Unknown, never Down.
//
// A poll includes connecting, as in oVirt: while the link's connect attempt is in progress the
// poll waits for it, within the same bound (pollTimeoutMs, at most one period). So a controller
// that just started does not call its hosts Connecting for want of a connection it is making.
import type { ConnectionState } from '../../api/client/reconnecting.js';
import type { EventListenerOf } from '../../api/client/event-hub.js';
import type { EventName, VmStatusEventBody } from '../../api/events.js';
import type { MethodName, ParamsOf, ResultOf } from '../../api/schema.js';
import type { DecisionSettings } from '../decision-settings.js';
import { FIT, type FitnessObservation } from '../health/fitness.js';
import { agentAnswering, type HostHealth } from '../health/host-status.js';
import { nextHostHealth, type PollOutcome } from '../health/next-host-health.js';
import { newCorrelationId, type LinkCallOptions } from '../agents/agent-link.js';
import { NoAgentLinkError } from '../agents/agent-links.js';
import { errorFields, noLog, type LogFn } from '../agents/log-fn.js';
import type { HostObservationSink, VmChange, VmObservationSource } from './observation-sink.js';
import { answeredPoll, failedPoll, type HostStats } from './poll-outcome.js';
import { VmView } from './vm-view.js';
import type { DecisionEvent } from '../decision-event.js';

/** What the monitor needs of one agent link (AgentLink). */
export interface MonitorLink {
  readonly hostId: string;
  readonly state: ConnectionState;
  whenConnected(timeoutMs: number): Promise<void>;
  call<M extends MethodName>(method: M, params: ParamsOf<M>, o?: LinkCallOptions): Promise<ResultOf<M>>;
  on<E extends EventName>(name: E, listener: EventListenerOf<E>): () => void;
}

/** What the monitor needs of the set of links (AgentLinks). */
export interface MonitoredAgents {
  get(hostId: string): MonitorLink | undefined;
  onResync(listener: (hostId: string, connections: number) => void): () => void;
  forEachLink(attach: (link: MonitorLink) => (() => void) | void): () => void;
}

/** What other parts know about a host that its health depends on. */
export interface HostContext {
  /** the host is the SPM: a longer grace (default: no host is) */
  isSpm(hostId: string): boolean;
  /** its required networks and pool storage as last seen (default: fit) */
  fitness(hostId: string): FitnessObservation;
}

export interface HealthMonitorOptions {
  agents: MonitoredAgents;
  sink: HostObservationSink;
  settings: DecisionSettings;
  context?: Partial<HostContext>;
  /** ms since the epoch (default Date.now): the decision functions' clock */
  clock?: () => number;
  log?: LogFn;
}

interface Watch {
  hostId: string;
  health: HostHealth;
  vms: VmView;
  polling: Promise<void> | null;
  /** a tick came while the poll still ran: the next poll starts as soon as it ends */
  tickOwed: boolean;
  /** a fresh VM list is wanted while wanted > listed (counters, so a want during a fetch is not lost) */
  listWanted: number;
  listed: number;
}

export class HealthMonitor {
  private readonly watches = new Map<string, Watch>();
  private readonly s: DecisionSettings;
  private readonly ctx: HostContext;
  private readonly clock: () => number;
  private readonly log: LogFn;
  private readonly detach: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private nextTickAt = 0;
  private started = false;
  private closed = false;

  constructor(private readonly o: HealthMonitorOptions) {
    this.s = o.settings;
    this.ctx = { isSpm: o.context?.isSpm ?? (() => false), fitness: o.context?.fitness ?? (() => FIT) };
    this.clock = o.clock ?? Date.now;
    this.log = o.log ?? noLog;
    this.detach.push(o.agents.forEachLink((link) => link.on('VM_status', (vmId, body) => this.onVmStatus(link.hostId, vmId, body))));
    this.detach.push(o.agents.onResync((hostId, connections) => this.onResync(hostId, connections)));
  }

  /** Starts the loop: every tracked host is polled at once, then every pollIntervalMs. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.nextTickAt = performance.now();
    this.tick();
  }

  /** Watches a host from its stored record (enrolledHost() for a new one); polled at the next tick. */
  track(initial: HostHealth): void {
    if (this.closed || this.watches.has(initial.hostId)) return;
    this.watches.set(initial.hostId, { hostId: initial.hostId, health: initial, vms: new VmView(), polling: null, tickOwed: false, listWanted: 1, listed: 0 });
  }

  /** The hosts being watched. */
  trackedHosts(): string[] {
    return [...this.watches.keys()];
  }

  /** Stops watching a host; a poll of it in flight is discarded. */
  untrack(hostId: string): void {
    this.watches.delete(hostId);
  }

  /** The host's current record, or undefined when it is not tracked. */
  health(hostId: string): HostHealth | undefined {
    return this.watches.get(hostId)?.health;
  }

  /**
   * An admin's state move (maintenance, activate, cancel; controller/health/maintenance.ts): applied
   * to the record at once, persisted and fanned out as a poll's step is. Undefined when the host is
   * not tracked; whatever `move` throws (a move the state forbids) is thrown.
   */
  adminMove(hostId: string, move: (h: HostHealth, now: number) => { host: HostHealth; events: DecisionEvent[] }): HostHealth | undefined {
    const w = this.watches.get(hostId);
    if (w === undefined || this.closed) return undefined;
    const before = w.health.status;
    const step = move(w.health, this.clock());
    w.health = step.host;
    for (const e of step.events) this.log('info', e.kind, { hostId, reason: e.reason, ...e.data });
    this.deliver('health', () => this.o.sink.health({ host: step.host, events: step.events, stats: null }));
    if (step.host.status !== before) {
      w.listWanted++;
      this.emitVms(w, 'host-status', [], this.clock());
    }
    return step.host;
  }

  /** Stops the loop and waits for the polls in flight (each bounded); leaves no timer behind. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const d of this.detach.splice(0)) d();
    await Promise.all([...this.watches.values()].map((w) => w.polling));
  }

  private get pollTimeoutMs(): number {
    return Math.min(this.s.pollTimeoutMs, this.s.pollIntervalMs);
  }

  /**
   * Fixed rate. A host whose last poll is still running is polled as soon as that poll ends:
   * a hung agent's poll ends by its timeout, one period after it began, just when the next tick
   * comes, and waiting for the tick after would poll it every other period only.
   */
  private tick(): void {
    this.timer = undefined;
    if (this.closed) return;
    for (const w of this.watches.values()) {
      if (w.polling === null) this.startPoll(w);
      else w.tickOwed = true;
    }
    const now = performance.now();
    this.nextTickAt += this.s.pollIntervalMs;
    if (this.nextTickAt < now) this.nextTickAt = now + this.s.pollIntervalMs; // a stalled event loop skips ticks, never bunches them
    this.timer = setTimeout(() => this.tick(), this.nextTickAt - now);
  }

  private startPoll(w: Watch): void {
    w.tickOwed = false;
    const p = this.pollHost(w)
      .catch((e: unknown) => this.log('error', 'health poll failed unexpectedly', { hostId: w.hostId, ...errorFields(e) }))
      .finally(() => {
        if (w.polling !== p) return;
        w.polling = null;
        if (w.tickOwed && this.live(w)) this.startPoll(w);
      });
    w.polling = p;
  }

  private live(w: Watch): boolean {
    return !this.closed && this.watches.get(w.hostId) === w;
  }

  private async pollHost(w: Watch): Promise<void> {
    const link = this.o.agents.get(w.hostId);
    let outcome: PollOutcome;
    let stats: HostStats | null = null;
    try {
      stats = await this.getStats(w.hostId, link);
      outcome = answeredPoll(stats, this.ctx.fitness(w.hostId));
    } catch (e) {
      outcome = failedPoll(e);
    }
    if (!this.live(w)) return;
    this.apply(w, outcome, stats);
    const listAge = w.vms.at === null ? Infinity : this.clock() - w.vms.at;
    if (link !== undefined && agentAnswering(w.health.status) && (w.listWanted > w.listed || listAge >= this.s.vmListIntervalMs)) {
      await this.fetchList(w, link);
    }
  }

  /** Host.getStats within pollTimeoutMs, the wait for a connect attempt in progress included. */
  private async getStats(hostId: string, link: MonitorLink | undefined): Promise<HostStats> {
    if (link === undefined) throw new NoAgentLinkError(hostId);
    const limitMs = this.pollTimeoutMs;
    const t0 = performance.now();
    if (link.state.phase === 'connecting') await link.whenConnected(limitMs);
    const leftMs = Math.max(1, Math.round(limitMs - (performance.now() - t0)));
    return link.call('Host.getStats', {}, { timeoutMs: leftMs, correlationId: newCorrelationId('poll') });
  }

  private apply(w: Watch, outcome: PollOutcome, stats: HostStats | null): void {
    const now = this.clock();
    const before = w.health.status;
    const step = nextHostHealth(w.health, outcome, { isSpm: this.ctx.isSpm(w.hostId) }, now, this.s);
    w.health = step.host;
    if (outcome.kind === 'failed') this.log('debug', 'poll failed', { hostId: w.hostId, failedPolls: step.host.failedPolls, error: outcome.error });
    for (const e of step.events) {
      this.log(e.severity === 'info' ? 'info' : e.severity === 'warning' ? 'warn' : 'error', e.kind, { hostId: w.hostId, reason: e.reason, ...e.data });
    }
    this.deliver('health', () => this.o.sink.health({ host: step.host, events: step.events, stats }));
    if (step.host.status === before) return;
    // Whatever the new status, the VM list under it must be taken again once the agent answers.
    w.listWanted++;
    this.emitVms(w, step.vmsTurnedUnknown ? 'host-lost' : 'host-status', step.vmsTurnedUnknown ? w.vms.allUnknown() : [], now);
  }

  private async fetchList(w: Watch, link: MonitorLink): Promise<void> {
    const want = w.listWanted;
    w.vms.listRequested();
    try {
      const r = await link.call('Host.getVMList', {}, { timeoutMs: this.pollTimeoutMs, correlationId: newCorrelationId('vmlist') });
      if (!this.live(w)) return;
      const at = this.clock();
      const changes = w.vms.applyList(r.vmList, at);
      w.listed = want;
      this.emitVms(w, 'list', changes, at);
    } catch (e) {
      w.vms.listFailed();
      this.log('debug', 'VM list failed; taken again at the next poll', { hostId: w.hostId, ...errorFields(e) });
    }
  }

  private onVmStatus(hostId: string, vmId: string, body: VmStatusEventBody): void {
    const w = this.watches.get(hostId);
    if (w === undefined || this.closed) return;
    const changes = w.vms.applyEvent(vmId, body);
    if (changes.length > 0) this.emitVms(w, 'event', changes, this.clock());
  }

  /** A new connection: events may have been missed, so the list is taken again, and the host polled now. */
  private onResync(hostId: string, connections: number): void {
    const w = this.watches.get(hostId);
    if (w === undefined || this.closed) return;
    w.listWanted++;
    this.log('debug', 'agent connection made: resync', { hostId, connections });
    if (this.started && w.polling === null) this.startPoll(w);
  }

  private emitVms(w: Watch, source: VmObservationSource, changes: VmChange[], observedAt: number): void {
    const report = { hostId: w.hostId, status: w.health.status, vms: new Map(w.vms.current), ...(w.vms.at !== null ? { at: w.vms.at } : {}) };
    this.deliver('vms', () => this.o.sink.vms({ report, changes, source, observedAt }));
  }

  private deliver(what: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      this.log('error', `observation sink failed (${what})`, errorFields(e));
    }
  }
}
