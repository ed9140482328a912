// The controller's store: one database (SQLite or PostgreSQL) behind typed repositories.
// Events appended through `events.append` are also published to live subscribers (the
// /events/stream WebSocket); subscribers of another controller process read the table.
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import { DEFAULT_CLUSTER } from '../model/clusters.js';
import type { Event, NewEvent } from '../model/events.js';
import { openDb, type Engine, type StoreOptions } from './connect.js';
import { ClustersRepo } from './repos/clusters.js';
import { DisksRepo } from './repos/disks.js';
import { EventsRepo } from './repos/events.js';
import { HostsRepo } from './repos/hosts.js';
import { JobsRepo } from './repos/jobs.js';
import { NetworksRepo } from './repos/networks.js';
import { StorageDomainsRepo } from './repos/storage-domains.js';
import { TemplatesRepo } from './repos/templates.js';
import { TokensRepo } from './repos/tokens.js';
import { VmsRepo } from './repos/vms.js';
import { VmHibernationsRepo } from './repos/vm-hibernations.js';
import { VmSnapshotsRepo } from './repos/vm-snapshots.js';
import { ConflictError } from './errors.js';
import type { Database } from './tables.js';

export interface EventRetention {
  maxRows: number;
  maxAgeMs: number;
}
export const DEFAULT_EVENT_RETENTION: EventRetention = { maxRows: 100_000, maxAgeMs: 30 * 24 * 3600_000 };
/** Pruning runs once per this many appends, not on each one. */
const PRUNE_EVERY = 200;

/** The repositories over one database handle (the root, or a transaction). */
export class Repos {
  readonly clusters: ClustersRepo;
  readonly hosts: HostsRepo;
  readonly tokens: TokensRepo;
  readonly storageDomains: StorageDomainsRepo;
  readonly networks: NetworksRepo;
  readonly disks: DisksRepo;
  readonly vms: VmsRepo;
  readonly hibernations: VmHibernationsRepo;
  readonly snapshots: VmSnapshotsRepo;
  readonly jobs: JobsRepo;
  readonly eventLog: EventsRepo;
  readonly templates: TemplatesRepo;

  constructor(db: Kysely<Database>, now: () => number) {
    this.clusters = new ClustersRepo(db, now);
    this.hosts = new HostsRepo(db, now);
    this.tokens = new TokensRepo(db, now);
    this.storageDomains = new StorageDomainsRepo(db, now);
    this.networks = new NetworksRepo(db, now);
    this.disks = new DisksRepo(db, now);
    this.vms = new VmsRepo(db, now);
    this.hibernations = new VmHibernationsRepo(db, now);
    this.snapshots = new VmSnapshotsRepo(db, now);
    this.jobs = new JobsRepo(db, now);
    this.eventLog = new EventsRepo(db, now);
    this.templates = new TemplatesRepo(db, now);
  }
}

export class Store extends Repos {
  private readonly bus = new EventEmitter();
  private appends = 0;

  private constructor(readonly db: Kysely<Database>, readonly engine: Engine, private readonly now: () => number,
    private readonly retention: EventRetention) {
    super(db, now);
    this.bus.setMaxListeners(0);
  }

  static async open(opts: StoreOptions & { now?: () => number; retention?: EventRetention }): Promise<Store> {
    const { db, engine } = await openDb(opts);
    const store = new Store(db, engine, opts.now ?? Date.now, opts.retention ?? DEFAULT_EVENT_RETENTION);
    await store.ensureDefaultCluster();
    await store.eventLog.prune(store.retention);
    return store;
  }

  private async ensureDefaultCluster(): Promise<void> {
    if (await this.clusters.find(DEFAULT_CLUSTER)) return;
    try {
      await this.clusters.create({ name: DEFAULT_CLUSTER });
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e; // another controller made it first
    }
  }

  /** Runs `fn` in one transaction with repositories bound to it. */
  async transaction<T>(fn: (repos: Repos) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(new Repos(trx, this.now)));
  }

  /** Appends to the audit log and tells live subscribers. */
  async event(e: NewEvent): Promise<Event> {
    const ev = await this.eventLog.append(e);
    this.bus.emit('event', ev);
    if (++this.appends % PRUNE_EVERY === 0) await this.eventLog.prune(this.retention);
    return ev;
  }

  onEvent(listener: (e: Event) => void): () => void {
    this.bus.on('event', listener);
    return () => this.bus.off('event', listener);
  }

  async close(): Promise<void> {
    this.bus.removeAllListeners();
    await this.db.destroy();
  }
}
