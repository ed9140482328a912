// What runs inside the controller besides the REST API: one reconnecting link per enrolled host,
// the health monitor over them (its observations persisted by the StoreSink), the job executor,
// and the level-triggered loops other parts add (storage, networks, VM reconcile). Hosts are
// taken from the store every hostSyncIntervalMs and at once after an API change (kick()), so a
// host enrolled or deleted through the API is followed without a restart.
import type { Store } from '../store/store.js';
import { AgentLinks } from '../agents/agent-links.js';
import type { AgentEndpoint, ControllerCredentials } from '../agents/agent-link.js';
import { HealthMonitor, type HostContext } from '../monitor/health-monitor.js';
import type { DecisionSettings } from '../decision-settings.js';
import { JobExecutor, type JobHandlers } from '../jobs/executor.js';
import { errorFields, noLog, type LogFn } from '../agents/log-fn.js';
import { FIT, type FitnessObservation } from '../health/fitness.js';
import { StoreSink, hostHealthFromStore } from './store-sink.js';

export interface RuntimeOptions {
  store: Store;
  credentials: ControllerCredentials;
  settings: DecisionSettings;
  handlers?: JobHandlers;
  maxConcurrentJobs?: number;
  /** how often the set of hosts is read from the store (a safety net; the API kicks at once) */
  hostSyncIntervalMs?: number;
  log?: LogFn;
  clock?: () => number;
}

/** A loop another part runs while the controller runs: started after the links, closed before them. */
export interface RuntimeLoop {
  start(): void;
  close(): Promise<void>;
}

export class ControllerRuntime {
  readonly links: AgentLinks;
  readonly sink: StoreSink;
  readonly monitor: HealthMonitor;
  readonly executor: JobExecutor;
  /** Parts that know a host's SPM role or fitness install them here (default: not SPM, fit). */
  readonly hostContext: { isSpm: (hostId: string) => boolean; fitness: (hostId: string) => FitnessObservation } = {
    isSpm: () => false, fitness: () => FIT,
  };
  private readonly loops: RuntimeLoop[] = [];
  private readonly log: LogFn;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | null = null;
  private syncAgain = false;
  private started = false;
  private closed = false;

  constructor(private readonly o: RuntimeOptions) {
    this.log = o.log ?? noLog;
    this.links = new AgentLinks({ credentials: o.credentials, settings: o.settings, log: this.log });
    this.sink = new StoreSink(o.store, this.log);
    const context: HostContext = { isSpm: (id) => this.hostContext.isSpm(id), fitness: (id) => this.hostContext.fitness(id) };
    this.monitor = new HealthMonitor({ agents: this.links, sink: this.sink, settings: o.settings, context, clock: o.clock, log: this.log });
    this.executor = new JobExecutor({ store: o.store, handlers: { ...o.handlers }, maxConcurrent: o.maxConcurrentJobs ?? 16, log: this.log });
  }

  /** Adds a loop (storage, networks, reconcile); started with the runtime, or at once if it runs. */
  addLoop(loop: RuntimeLoop): void {
    this.loops.push(loop);
    if (this.started) loop.start();
  }

  /** Loads the hosts, starts the links, the monitor and the loops, then resumes unfinished jobs. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.syncHosts();
    this.monitor.start();
    for (const l of this.loops) l.start();
    const interval = this.o.hostSyncIntervalMs ?? 5_000;
    this.syncTimer = setInterval(() => this.kick(), interval);
    this.syncTimer.unref();
    await this.executor.resume(await this.o.store.jobs.unfinished());
  }

  /** Reads the hosts again soon (after an enrolment, an address change or a delete). */
  kick(): void {
    if (this.closed) return;
    if (this.syncing) { this.syncAgain = true; return; }
    void this.syncHosts();
  }

  /** Level-triggered: one link and one watch per stored host that has a certificate. */
  syncHosts(): Promise<void> {
    if (this.syncing) return this.syncing;
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        try {
          const hosts = await this.o.store.hosts.list();
          const enrolled = hosts.filter((h) => h.certFingerprint !== null);
          const endpoints: AgentEndpoint[] = enrolled.map((h) => ({ hostId: h.id, address: h.address, port: h.port }));
          if (this.closed) return;
          await this.links.sync(endpoints);
          const now = (this.o.clock ?? Date.now)();
          const ids = new Set(enrolled.map((h) => h.id));
          for (const h of enrolled) this.monitor.track(hostHealthFromStore(h, now));
          for (const id of this.monitor.trackedHosts()) if (!ids.has(id)) this.monitor.untrack(id);
        } catch (e) {
          this.log('error', 'could not read the hosts from the store', errorFields(e));
        }
      } while (this.syncAgain && !this.closed);
    })().finally(() => { this.syncing = null; });
    return this.syncing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    await this.executor.close();
    await Promise.allSettled(this.loops.map((l) => l.close()));
    await this.monitor.close();
    await this.syncing;
    await this.sink.flushed();
    await this.links.close();
  }
}
