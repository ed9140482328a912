// A libvirt connection: every call is asynchronous, runs off the JS thread,
// and has a timeout. The close callback surfaces as a 'disconnected' event.
import { EventEmitter } from 'node:events';
import { native, type ConnHandle, type Int64, type NodeInfo, type RawDomainEvent, type RawDomainStats } from './native.js';
import { LibvirtError, LibvirtTimeoutError, LibvirtUnavailableError } from './errors.js';
import { ConnectCloseReason } from './generated/enums.js';
import { Domain } from './domain.js';
import { DOMAIN_EVENT_IDS, toDomainEvent, type DomainEvent, type DomainEventKind } from './events.js';
import { domainStatsFlags, type DomainStatsQuery } from './domain-stats.js';

export interface ConnectionOptions {
  readOnly?: boolean;
  /** Default timeout for one call, in ms; 0 disables it. */
  callTimeoutMs?: number;
  /** libvirt keepalive: a dead daemon is noticed after about interval × (count + 1) s. null disables it. */
  keepAlive?: { intervalSec: number; count: number } | null;
}

export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

export interface DisconnectInfo {
  reason: ConnectCloseReason;
  reasonName: string;
}

export interface EventSubscription {
  readonly kind: DomainEventKind;
  readonly callbackId: number;
  close(): Promise<void>;
}

type ConnectionEvents = {
  disconnected: [DisconnectInfo];
  /** A domain-event listener threw; the exception is contained here. */
  'listener-error': [unknown, DomainEventKind];
};

// Open connections stay reachable until close(), so that GC never closes
// one behind the owner's back.
const openConnections = new Set<Connection>();

export function withTimeout<T>(call: string, p: Promise<T>, ms: number): Promise<T> {
  if (!(ms > 0)) return p;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new LibvirtTimeoutError(call, ms)), ms);
    timer.unref();
    p.then(
      (v) => { clearTimeout(timer); resolve(v); },
      (e) => { clearTimeout(timer); reject(e); },
    );
  });
}

export class Connection extends EventEmitter<ConnectionEvents> {
  private closing: Promise<void> | undefined;
  private readonly muxes = new Map<DomainEventKind, EventMux>();
  private disconnectedInfo: DisconnectInfo | undefined;
  readonly callTimeoutMs: number;

  private constructor(readonly uri: string, private readonly handle: ConnHandle, opts: ConnectionOptions) {
    super();
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  static async open(uri: string, opts: ConnectionOptions = {}): Promise<Connection> {
    const timeout = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const handle = await withTimeout('open', native.open(uri, opts.readOnly ?? false), timeout);
    const conn = new Connection(uri, handle, opts);
    openConnections.add(conn);
    try {
      await conn.run('setCloseCallback', () => native.setCloseCallback(handle, (reason) => conn.onClosed(reason)));
      const ka = opts.keepAlive === undefined ? { intervalSec: 5, count: 5 } : opts.keepAlive;
      if (ka) await conn.setKeepAlive(ka.intervalSec, ka.count);
    } catch (e) {
      await conn.close().catch(() => {});
      throw e;
    }
    return conn;
  }

  private onClosed(reason: number): void {
    this.disconnectedInfo = { reason, reasonName: ConnectCloseReason[reason] ?? String(reason) };
    this.emit('disconnected', this.disconnectedInfo);
  }

  /** True until close() or until libvirt reported the connection closed. */
  get isOpen(): boolean {
    return !this.closing && this.disconnectedInfo === undefined && native.isAlive(this.handle);
  }

  /** @internal Wraps one native call: refuses after close, applies the timeout. */
  run<T>(call: string, fn: () => Promise<T>, timeoutMs: number = this.callTimeoutMs): Promise<T> {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      return Promise.reject(e); // e.g. closed: callers always get a rejection, never a throw
    }
    return withTimeout(call, p, timeoutMs);
  }

  /** @internal The handle for a native call; throws when closed. */
  h(): ConnHandle {
    if (this.closing) throw new LibvirtUnavailableError(`libvirt connection to ${this.uri} is closed`);
    if (this.disconnectedInfo) throw new LibvirtUnavailableError(`libvirt connection to ${this.uri} was lost (${this.disconnectedInfo.reasonName})`);
    return this.handle;
  }

  /** Closes the connection. Explicit and asynchronous: closing is an RPC, so it never runs in a GC finalizer. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // Deregister first so libvirt stops calling us even if domain handles
    // keep the underlying connection object alive after the close.
    const regs = [...this.muxes.values()].map((m) => m.registration);
    this.muxes.clear();
    await Promise.allSettled(regs.map(async (r) => {
      const id = await r;
      if (id !== undefined) await withTimeout('domainEventDeregister', native.domainEventDeregister(this.handle, id), 5_000);
    }));
    try {
      await withTimeout('close', native.close(this.handle), this.callTimeoutMs);
    } finally {
      openConnections.delete(this);
    }
  }

  async setKeepAlive(intervalSec: number, count: number): Promise<boolean> {
    try {
      return (await this.run('setKeepAlive', () => native.setKeepAlive(this.h(), intervalSec, count))) === 0;
    } catch (e) {
      // Drivers without a remote side (test:///, in-process) do not support keepalive.
      if (e instanceof LibvirtError) return false;
      throw e;
    }
  }

  hostname(): Promise<string> { return this.run('getHostname', () => native.getHostname(this.h())); }
  getURI(): Promise<string> { return this.run('getURI', () => native.getURI(this.h())); }
  capabilities(): Promise<string> { return this.run('getCapabilities', () => native.getCapabilities(this.h())); }
  domainCapabilities(o: { emulator?: string; arch?: string; machine?: string; virtType?: string; flags?: number } = {}): Promise<string> {
    return this.run('getDomainCapabilities', () => native.getDomainCapabilities(this.h(), o.emulator ?? null, o.arch ?? null,
      o.machine ?? null, o.virtType ?? null, o.flags ?? 0));
  }
  versions(): Promise<{ hypervisor: number; libvirt: number; type: string }> {
    return this.run('getVersions', () => native.getVersions(this.h()));
  }
  nodeInfo(): Promise<NodeInfo> { return this.run('nodeGetInfo', () => native.nodeGetInfo(this.h())); }
  /** Starts a domain from a state file that Domain.save wrote; `dxml` may replace its XML (same ABI). */
  restore(path: string, dxml: string | null = null, flags = 0): Promise<void> { return this.run('connRestore', () => native.connRestore(this.h(), path, dxml, flags)); }
  /** The domain XML a saved memory image (hibernation, memory snapshot) holds. */
  saveImageXml(path: string, flags = 0): Promise<string> { return this.run('connSaveImageGetXMLDesc', () => native.connSaveImageGetXMLDesc(this.h(), path, flags)); }
  /** cpu -1 = all CPUs (VIR_NODE_CPU_STATS_ALL_CPUS). */
  nodeCPUStats(cpu = -1, flags = 0): Promise<Record<string, Int64>> {
    return this.run('nodeGetCPUStats', () => native.nodeGetCPUStats(this.h(), cpu, flags));
  }
  /** cell -1 = all cells (VIR_NODE_MEMORY_STATS_ALL_CELLS). */
  nodeMemoryStats(cell = -1, flags = 0): Promise<Record<string, Int64>> {
    return this.run('nodeGetMemoryStats', () => native.nodeGetMemoryStats(this.h(), cell, flags));
  }

  async listAllDomains(flags = 0): Promise<Domain[]> {
    const handles = await this.run('listAllDomains', () => native.listAllDomains(this.h(), flags));
    return handles.map((d) => new Domain(this, d));
  }
  async lookupByName(name: string): Promise<Domain> {
    return new Domain(this, await this.run('lookupByName', () => native.lookupByName(this.h(), name)));
  }
  async lookupByUUID(uuid: string): Promise<Domain> {
    return new Domain(this, await this.run('lookupByUUID', () => native.lookupByUUID(this.h(), uuid)));
  }
  async defineXML(xml: string, flags = 0): Promise<Domain> {
    return new Domain(this, await this.run('defineXML', () => native.defineXML(this.h(), xml, flags)));
  }
  async createXML(xml: string, flags = 0, timeoutMs?: number): Promise<Domain> {
    return new Domain(this, await this.run('createXML', () => native.createXML(this.h(), xml, flags), timeoutMs));
  }

  /** One bulk call for every domain (virConnectGetAllDomainStats). stats = DomainStatsTypes bits, 0 = all. */
  getAllDomainStats(stats = 0, flags = 0): Promise<RawDomainStats[]> {
    return this.run('getAllDomainStats', () => native.getAllDomainStats(this.h(), stats, flags));
  }

  /** The same bulk call, asked for by stats group and domain state names. */
  domainStats(q: DomainStatsQuery): Promise<RawDomainStats[]> {
    const { stats, flags } = domainStatsFlags(q);
    return this.getAllDomainStats(stats, flags);
  }

  /**
   * Subscribes to one kind of domain event, for all domains or one. The
   * subscription keeps Node alive until it is closed or the connection is.
   * A listener that throws is reported as 'listener-error', never crashes.
   *
   * libvirt refuses a second registration of the same callback for the same
   * event on one connection, so each kind is registered once and fanned out
   * to its listeners here.
   */
  async subscribe<K extends DomainEventKind>(kind: K, listener: (ev: DomainEvent<K>) => void, domain?: Domain): Promise<EventSubscription> {
    const entry = { listener: listener as (ev: DomainEvent) => void, uuid: domain?.uuid };
    let mux = this.muxes.get(kind);
    if (!mux) {
      const created: EventMux = { listeners: new Set(), registration: undefined };
      mux = created;
      this.muxes.set(kind, created);
      created.registration = this.run('domainEventRegister', () =>
        native.domainEventRegister(this.h(), null, DOMAIN_EVENT_IDS[kind], (raw) => this.dispatch(kind, created, raw)));
      created.registration.catch(() => { if (this.muxes.get(kind) === created) this.muxes.delete(kind); });
    }
    mux.listeners.add(entry);
    let callbackId: number;
    try {
      callbackId = await mux.registration!;
    } catch (e) {
      mux.listeners.delete(entry);
      throw e;
    }
    const m = mux;
    let open = true;
    return {
      kind,
      callbackId,
      close: async () => {
        if (!open) return;
        open = false;
        m.listeners.delete(entry);
        if (m.listeners.size > 0 || this.closing || this.disconnectedInfo) return;
        if (this.muxes.get(kind) === m) this.muxes.delete(kind);
        await this.run('domainEventDeregister', () => native.domainEventDeregister(this.h(), callbackId));
      },
    };
  }

  private dispatch(kind: DomainEventKind, mux: EventMux, raw: RawDomainEvent): void {
    const ev = toDomainEvent(kind, raw);
    for (const { listener, uuid } of mux.listeners) {
      if (uuid !== undefined && uuid !== ev.domain.uuid) continue;
      try {
        listener(ev);
      } catch (e) {
        if (this.listenerCount('listener-error') > 0) this.emit('listener-error', e, kind);
        else process.emitWarning(`domain event listener for ${kind} threw: ${String(e)}`);
      }
    }
  }
}

interface EventMux {
  listeners: Set<{ listener: (ev: DomainEvent) => void; uuid: string | undefined }>;
  registration: Promise<number> | undefined;
}
