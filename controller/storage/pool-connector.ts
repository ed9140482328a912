// Keeps every Up (or NonOperational) host of a cluster that has a pool connected to it, level
// triggered: each pass asks each host for the pool as it sees it (StoragePool.getInfo) and its
// domain monitors (Host.getStorageRepoStats). A host that answers 309 (not connected: new, or
// its agent restarted) is connected with its pool host id and the master domain; a connected
// host that lacks a pool domain is given it (StoragePool.connect again with every domain).
// Then each domain's record gets its status per host, its size and free space. A connect runs
// in the background, so one slow host never holds up the others' observation.
import { randomUUID } from 'node:crypto';
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { Store } from '../store/store.js';
import type { Host } from '../model/hosts.js';
import type { StorageDomain } from '../model/storage.js';
import type { ResultOf } from '../../api/schema.js';
import { agentAnswering, type HostStatus } from '../health/host-status.js';
import { decisionEvent } from '../decision-event.js';
import { recordDecisionEvent } from '../runtime/record-event.js';
import { errorFields, type LogFn } from '../agents/log-fn.js';
import { PeriodicLoop } from './periodic-loop.js';
import { PoolState, type HostDomainView, type HostPoolView } from './pool-state.js';
import { agentCode, answered, errorText } from './agent-answer.js';
import { hostDomainStatus, poolOf, type PoolPlan } from './pool-plan.js';

const RECOVERING = 99;

export interface PoolConnectorOptions {
  runtime: ControllerRuntime;
  store: Store;
  settings: DecisionSettings;
  state: PoolState;
  log: LogFn;
  clock?: () => number;
}

export class PoolConnector {
  readonly loop: PeriodicLoop;
  private readonly connecting = new Map<string, Promise<void>>();
  /** storage domain id -> name, for the reasons a person reads */
  readonly domainNames = new Map<string, string>();
  private readonly clock: () => number;

  constructor(private readonly o: PoolConnectorOptions) {
    this.clock = o.clock ?? Date.now;
    this.loop = new PeriodicLoop('pool connector', () => o.settings.pollIntervalMs, () => this.pass(), o.log);
  }

  async close(): Promise<void> {
    await this.loop.close();
    await Promise.allSettled([...this.connecting.values()]);
  }

  private statusOf(h: Host): HostStatus {
    return this.o.runtime.monitor.health(h.id)?.status ?? h.status;
  }

  private async pass(): Promise<void> {
    const { store, state } = this.o;
    const seen = new Set<string>();
    for (const c of await store.clusters.list()) {
      const domains = await store.storageDomains.list({ clusterId: c.id });
      for (const d of domains) this.domainNames.set(d.id, d.name);
      const hosts = (await store.hosts.list({ clusterId: c.id })).filter((h) => h.certFingerprint !== null);
      const plan = poolOf(c, domains);
      if (plan === null) continue;
      for (const h of hosts) seen.add(h.id);
      await Promise.all(hosts.map((h) => this.observe(h, plan).catch((e: unknown) =>
        this.o.log('error', 'pool connector: observing a host failed', { hostId: h.id, ...errorFields(e) }))));
      await this.record(domains, hosts);
    }
    for (const id of state.hostIds()) if (!seen.has(id)) state.forget(id);
  }

  private async observe(h: Host, plan: PoolPlan): Promise<void> {
    const { state, runtime, settings } = this.o;
    const now = this.clock();
    if (this.connecting.has(h.id)) return; // its view says connecting until the call ends
    const status = this.statusOf(h);
    const link = runtime.links.get(h.id);
    if (!agentAnswering(status) || link === undefined || link.state.phase !== 'connected') {
      state.update(h.id, plan.poolId, { state: 'unknown', domains: {}, error: `host ${status}${link?.state.phase === 'connected' ? '' : ', no connection to its agent'}` }, now);
      return;
    }
    const timeoutMs = Math.min(settings.pollTimeoutMs, settings.pollIntervalMs);
    const correlationId = `pool-${randomUUID().slice(0, 8)}`;
    let info: ResultOf<'StoragePool.getInfo'>;
    try {
      info = await runtime.links.call(h.id, 'StoragePool.getInfo', { storagepoolID: plan.poolId }, { timeoutMs, correlationId });
    } catch (e) {
      if (answered(e, 'storagePoolUnknown')) {
        this.startConnect(h, plan, status, 'the host is not connected to the pool');
      } else {
        state.update(h.id, plan.poolId, { state: 'unknown', domains: {}, error: `StoragePool.getInfo: ${errorText(e)}` }, now);
      }
      return;
    }
    // A host in Maintenance stays out of the pool (once it no longer holds the SPM role: the SPM loop stops it first).
    if (status === 'Maintenance' && !runtime.hostContext.isSpm(h.id)) {
      await this.disconnect(h, plan, correlationId);
      return;
    }
    // The monitors' own view (validity, lockspace); getInfo adds sizes. Without it, getInfo's status serves.
    const stats = await runtime.links.call(h.id, 'Host.getStorageRepoStats', { domains: Object.keys(info.dominfo) }, { timeoutMs, correlationId })
      .catch(() => ({} as ResultOf<'Host.getStorageRepoStats'>));
    const domains: Record<string, HostDomainView> = {};
    for (const [sd, di] of Object.entries(info.dominfo)) {
      const st = stats[sd];
      domains[sd] = {
        valid: st?.valid ?? di.status !== 'Inactive',
        code: st?.code ?? di.alerts[0]?.code ?? 0,
        ...((st?.error ?? di.alerts[0]?.message) ? { error: st?.error ?? di.alerts[0]?.message } : {}),
        acquired: st?.acquired ?? false,
        ...(di.disktotal !== undefined ? { totalBytes: di.disktotal } : {}),
        ...(di.diskfree !== undefined ? { freeBytes: di.diskfree } : {}),
      };
    }
    const view = state.update(h.id, plan.poolId, { state: 'connected', domains, error: null }, now);
    const missing = Object.keys(plan.domains).filter((sd) => !(sd in info.dominfo));
    if (missing.length > 0) this.startConnect(h, plan, status, `the host lacks pool domain(s) ${missing.map((sd) => this.domainNames.get(sd) ?? sd).join(', ')}`, view);
  }

  /** StoragePool.disconnect of a host in Maintenance; it stays disconnected (startConnect connects only Up hosts). */
  private async disconnect(h: Host, plan: PoolPlan, correlationId: string): Promise<void> {
    const { state, runtime } = this.o;
    try {
      await runtime.links.call(h.id, 'StoragePool.disconnect', { storagepoolID: plan.poolId }, { correlationId });
    } catch (e) {
      if (!answered(e, 'storagePoolUnknown')) {
        state.update(h.id, plan.poolId, { state: 'unknown', domains: {}, error: `StoragePool.disconnect: ${errorText(e)}` }, this.clock());
        return;
      }
    }
    state.update(h.id, plan.poolId, { state: 'disconnected', domains: {}, error: 'the host is in Maintenance' }, this.clock());
    this.o.log('info', 'host in Maintenance disconnected from the storage pool', { hostId: h.id, poolId: plan.poolId });
    await this.event('storage.pool-disconnected', 'info', h.id, `disconnected from pool ${plan.poolId}: the host is in Maintenance`, { poolId: plan.poolId });
  }

  /** StoragePool.connect in the background (at most one per host; a failed one is retried after poolConnectRetryMs). */
  private startConnect(h: Host, plan: PoolPlan, status: HostStatus, why: string, connected?: HostPoolView): void {
    const { state, settings, runtime } = this.o;
    const now = this.clock();
    const prev = state.get(h.id);
    if (status !== 'Up' && status !== 'NonOperational') {
      if (!connected) state.update(h.id, plan.poolId, { state: 'disconnected', domains: {}, error: `${why}; not connected while the host is ${status}` }, now);
      return;
    }
    if (h.poolHostId === null) {
      state.update(h.id, plan.poolId, { state: 'disconnected', domains: {}, error: 'the host has no pool host id' }, now);
      return;
    }
    if (prev?.poolId === plan.poolId && prev.connectFailedAt !== null && now - prev.connectFailedAt < settings.poolConnectRetryMs) {
      if (!connected && prev.state !== 'disconnected') state.update(h.id, plan.poolId, { state: 'disconnected' }, now);
      return;
    }
    if (!connected) state.update(h.id, plan.poolId, { state: 'connecting', error: null }, now);
    const hostID = h.poolHostId;
    const t0 = performance.now();
    const run = (async () => {
      try {
        await runtime.links.call(h.id, 'StoragePool.connect', { storagepoolID: plan.poolId, hostID, masterSdUUID: plan.masterId, domains: plan.domains },
          { correlationId: `pool-connect-${randomUUID().slice(0, 8)}` });
        const ms = Math.round(performance.now() - t0);
        this.o.log('info', 'host connected to the storage pool', { hostId: h.id, poolId: plan.poolId, poolHostId: hostID, why, ms });
        state.update(h.id, plan.poolId, { state: 'connected', domains: connected?.domains ?? {}, error: null, connectFailedAt: null }, this.clock());
        await this.event('storage.pool-connected', 'info', h.id, `connected to pool ${plan.poolId} as pool host ${hostID} (${why}) in ${ms} ms`, { poolId: plan.poolId, poolHostId: hostID });
      } catch (e) {
        const code = agentCode(e);
        const error = `StoragePool.connect: ${errorText(e)}`;
        this.o.log('warn', 'storage pool connect failed', { hostId: h.id, poolId: plan.poolId, why, ...errorFields(e) });
        if (connected) {
          state.update(h.id, plan.poolId, { connectFailedAt: this.clock() }, this.clock());
        } else {
          // A host that answered but cannot join the pool reaches none of it: the master is unreachable from it
          // (unless the agent only said it is still recovering, which says nothing about storage).
          const unreachable = code !== undefined && code !== RECOVERING;
          const domains: Record<string, HostDomainView> = unreachable ? { [plan.masterId]: { valid: false, code, error: errorText(e), acquired: false } } : {};
          state.update(h.id, plan.poolId, { state: 'disconnected', domains, error, connectFailedAt: this.clock() }, this.clock());
        }
        if (prev?.error !== error) await this.event('storage.pool-connect-failed', 'warning', h.id, `cannot connect to pool ${plan.poolId} (${why}): ${errorText(e)}`, { poolId: plan.poolId });
      } finally {
        this.connecting.delete(h.id);
      }
      this.loop.kick(); // the records and the SPM loop see the new state at once
    })();
    this.connecting.set(h.id, run);
  }

  /** Each domain's record: status per host, overall status, size and free space; written only when it changed. */
  private async record(domains: StorageDomain[], hosts: Host[]): Promise<void> {
    const { state, store } = this.o;
    for (const d of domains) {
      if (d.status !== 'active' && d.status !== 'inactive') continue; // being created, or failed: the job's
      const perHost: Record<string, string> = {};
      let reachable = false;
      let size: HostDomainView | undefined;
      for (const h of hosts) {
        const view = state.get(h.id);
        perHost[h.id] = hostDomainStatus(view, d.id);
        const dv = view?.state === 'connected' ? view.domains[d.id] : undefined;
        if (dv?.valid) reachable = true;
        if (dv?.totalBytes !== undefined && (size === undefined || (dv.valid && !size.valid))) size = dv;
      }
      const status = reachable ? 'active' : 'inactive';
      const sizeBytes = size?.totalBytes ?? d.sizeBytes;
      const freeBytes = size?.freeBytes ?? d.freeBytes;
      if (status === d.status && sizeBytes === d.sizeBytes && freeBytes === d.freeBytes && JSON.stringify(perHost) === JSON.stringify(d.hosts)) continue;
      await store.storageDomains.update(d.id, { status, sizeBytes, freeBytes, hosts: perHost });
      if (status !== d.status) {
        await store.event({ kind: 'storage-domain.status', severity: status === 'active' ? 'info' : 'warning', subjectKind: 'storage-domain', subjectId: d.id,
          message: `storage domain ${d.name} is ${status}: ${Object.entries(perHost).map(([h, s]) => `${h}: ${s}`).join('; ') || 'no host'}`, details: { from: d.status, to: status, hosts: perHost } });
      }
    }
  }

  private async event(kind: string, severity: 'info' | 'warning', hostId: string, reason: string, data: Record<string, unknown>): Promise<void> {
    await recordDecisionEvent(this.o.store, decisionEvent(this.clock(), kind, severity, reason, { host: hostId, data }))
      .catch((e: unknown) => this.o.log('error', 'could not record a storage event', errorFields(e)));
  }
}
