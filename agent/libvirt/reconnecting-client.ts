// Keeps a libvirt connection up: reconnects with exponential backoff after
// the daemon goes away, and re-registers every durable event subscription on
// each new connection (libvirt forgets them with the old one).
import { EventEmitter } from 'node:events';
import { Connection, type ConnectionOptions, type DisconnectInfo, type EventSubscription } from './connection.js';
import { LibvirtUnavailableError } from './errors.js';
import type { DomainEvent, DomainEventKind } from './events.js';
import { silentLogger, type Logger } from '../log.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export interface ReconnectingClientOptions extends ConnectionOptions {
  backoff?: Partial<BackoffOptions>;
  log?: Logger;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 10_000, factor: 2 };

type ClientEvents = {
  /** A connection is (re-)established and every subscription is registered on it. */
  connected: [{ generation: number; attempts: number }];
  disconnected: [DisconnectInfo & { generation: number }];
};

interface Durable {
  kind: DomainEventKind;
  listener: (ev: DomainEvent) => void;
  current?: EventSubscription;
}

export interface DurableSubscription {
  readonly kind: DomainEventKind;
  close(): Promise<void>;
}

/** Delay before reconnect attempt n (0-based), with ±20 % jitter so that many agents do not retry in step. */
export function backoffDelay(n: number, b: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, n));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export class ReconnectingLibvirtClient extends EventEmitter<ClientEvents> {
  private conn: Connection | undefined;
  private generation = 0;
  private stopped = false;
  private connecting: Promise<void> | undefined;
  private readonly durables = new Set<Durable>();
  private readonly backoff: BackoffOptions;
  private readonly log: Logger;
  private wakeRetry: (() => void) | undefined;

  constructor(readonly uri: string, private readonly opts: ReconnectingClientOptions = {}) {
    super();
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.log = (opts.log ?? silentLogger).child({ component: 'libvirt', uri });
  }

  /** Connects (retrying with backoff) and resolves once the first connection is up. */
  start(): Promise<void> {
    this.stopped = false;
    if (!this.connecting) this.connecting = this.connectLoop().finally(() => { this.connecting = undefined; });
    return this.connecting;
  }

  get connected(): boolean {
    return this.conn !== undefined && this.conn.isOpen;
  }

  /** The live connection; throws LibvirtUnavailableError during an outage, so callers fail fast. */
  get connection(): Connection {
    if (!this.conn || !this.conn.isOpen) throw new LibvirtUnavailableError(`libvirt (${this.uri}) is not connected`);
    return this.conn;
  }

  /** A subscription that survives reconnects. */
  async subscribe<K extends DomainEventKind>(kind: K, listener: (ev: DomainEvent<K>) => void): Promise<DurableSubscription> {
    const d: Durable = { kind, listener: listener as (ev: DomainEvent) => void };
    this.durables.add(d);
    if (this.conn?.isOpen) await this.register(this.conn, d);
    return {
      kind,
      close: async () => {
        this.durables.delete(d);
        const cur = d.current;
        d.current = undefined;
        if (cur) await cur.close().catch(() => {});
      },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeRetry?.();
    const c = this.conn;
    this.conn = undefined;
    for (const d of this.durables) d.current = undefined;
    if (c) await c.close().catch((e) => this.log.warn('close failed', { err: e }));
  }

  private async register(conn: Connection, d: Durable): Promise<void> {
    d.current = await conn.subscribe(d.kind, d.listener);
  }

  private async connectLoop(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      const t0 = performance.now();
      try {
        const conn = await Connection.open(this.uri, this.opts);
        const opened = performance.now();
        conn.on('disconnected', (info) => this.onDisconnected(conn, info));
        try {
          for (const d of this.durables) await this.register(conn, d);
        } catch (e) {
          await conn.close().catch(() => {}); // never leave a half-set-up connection open
          throw e;
        }
        if (this.stopped) { await conn.close(); return; }
        this.conn = conn;
        this.generation++;
        this.log.info('libvirt connected', {
          generation: this.generation, attempts: attempt + 1,
          phasesMs: { open: Math.round(opened - t0), subscribe: Math.round(performance.now() - opened) },
          subscriptions: this.durables.size,
        });
        this.emit('connected', { generation: this.generation, attempts: attempt + 1 });
        return;
      } catch (e) {
        const delay = backoffDelay(attempt, this.backoff);
        this.log.warn('libvirt connect failed; retrying', { err: e, attempt: attempt + 1, retryInMs: delay });
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.wakeRetry = () => { clearTimeout(t); resolve(); };
        });
        this.wakeRetry = undefined;
      }
    }
  }

  private onDisconnected(conn: Connection, info: DisconnectInfo): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    for (const d of this.durables) d.current = undefined;
    this.log.warn('libvirt disconnected', { reason: info.reasonName, generation: this.generation });
    this.emit('disconnected', { ...info, generation: this.generation });
    // The dead connection still holds its callbacks; closing frees them.
    void conn.close().catch(() => {});
    if (!this.stopped) void this.start();
  }
}
