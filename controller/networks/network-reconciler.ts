// The level-triggered networks loop: every networkObserveIntervalMs, and at once when a link to
// an agent is (re)made, it reads each connected host's networks (the view the health monitor's
// fitness and the scheduler use) and gives each host the cluster networks it lacks: a host
// enrolled after the network was made, one whose agent restarted without them, one whose
// bridge was deleted by hand. A host that refused a network is tried again after
// networkRetryIntervalMs, or at once when the nic map changed or its agent reconnected.
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentLinks } from '../agents/agent-links.js';
import { newCorrelationId } from '../agents/agent-link.js';
import { errorFields, type LogFn } from '../agents/log-fn.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { RuntimeLoop } from '../runtime/controller-runtime.js';
import { hostSpec, mismatch } from './desired.js';
import type { HostNetworkApplier } from './host-applier.js';
import { NET_STATUS, type ClusterNetworkView, type EnrolledHost } from './network-view.js';

/** How long close() waits for a pass in flight (a setupNetworks may take a connectivity timeout). */
const CLOSE_WAIT_MS = 5_000;

export interface NetworkReconcilerOptions {
  links: AgentLinks;
  view: ClusterNetworkView;
  applier: HostNetworkApplier;
  settings: DecisionSettings;
  log: LogFn;
}

export class NetworkReconciler implements RuntimeLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private detach: (() => void) | undefined;
  private readonly abort = new AbortController();
  /** completed passes, for tests and the log */
  passes = 0;

  constructor(private readonly o: NetworkReconcilerOptions) {}

  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.detach = this.o.links.onResync((hostId) => {
      this.o.applier.forgetAttempts(hostId);
      this.kick();
    });
    this.timer = setInterval(() => this.kick(), this.o.settings.networkObserveIntervalMs);
    this.timer.unref();
    this.kick();
  }

  /** A pass soon: now if none runs, else right after the running one. */
  kick(): void {
    if (this.closed) return;
    if (this.running !== null) { this.again = true; return; }
    this.running = this.loop().finally(() => { this.running = null; });
  }

  /** Resolves once a whole pass has begun and ended after this call (tests; an API change that wants it now). */
  async settle(): Promise<void> {
    // A pass in flight may have read the store before the caller's change: wait for the next one.
    const target = this.passes + (this.running !== null ? 2 : 1);
    this.kick();
    for (let i = 0; i < 100 && this.passes < target && !this.closed; i++) {
      await (this.running ?? Promise.resolve());
      if (this.passes < target && this.running === null) this.kick();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.detach?.();
    this.abort.abort(new Error('the controller is stopping'));
    if (this.running !== null) await Promise.race([this.running, sleep(CLOSE_WAIT_MS)]);
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (e) {
        this.o.log('error', 'network reconcile pass failed', errorFields(e));
      }
      this.passes++;
    } while (this.again && !this.closed);
  }

  private async pass(): Promise<void> {
    await this.o.view.refresh();
    await Promise.all(this.o.view.enrolledHosts().map((h) => this.reconcileHost(h).catch((e: unknown) => {
      if (!this.abort.signal.aborted) this.o.log('warn', 'network reconcile of a host failed', { hostId: h.id, ...errorFields(e) });
    })));
  }

  private async reconcileHost(host: EnrolledHost): Promise<void> {
    const { view, applier, links } = this.o;
    // Only hosts we are connected to: the networks of one we cannot reach stay as last seen
    // (unknown is not "missing"); the health monitor deals with the host itself.
    if (links.get(host.id)?.state.phase !== 'connected' || this.abort.signal.aborted) return;
    const correlationId = newCorrelationId('netrec');
    const caps = await applier.readNetworks(host.id, correlationId);
    for (const network of view.networksOf(host.clusterId)) {
      if (this.abort.signal.aborted) return;
      const spec = hostSpec(network, host.id);
      if (spec === null) {
        await view.setStatus(network.id, host.id, NET_STATUS.notAssigned);
        continue;
      }
      const diff = mismatch(caps, spec);
      const status = view.statusOf(network.id, host.id);
      if (diff === null) {
        // There as asked: the job (or an earlier pass) did it; 'applying' is left to whoever is applying.
        if (status !== NET_STATUS.up && status !== NET_STATUS.applying) await view.setStatus(network.id, host.id, NET_STATUS.up);
        continue;
      }
      if (status === NET_STATUS.up) {
        this.o.log('warn', 'a cluster network is gone from a host', { hostId: host.id, network: network.name, why: diff, correlationId });
        await view.setStatus(network.id, host.id, NET_STATUS.missing);
      }
      // The job applying it reports what it did: the loop does not do it behind its back.
      if (view.applyJobUnderWay(network.id) || !applier.mayTry(network, host.id)) continue;
      const r = await applier.ensure(host, network, { correlationId, signal: this.abort.signal });
      if (r.ok) this.o.log('info', 'cluster network set up on a host by the reconciler', { hostId: host.id, network: network.name, action: r.action, correlationId });
    }
  }
}
