// The SPM loop: each pass, for each cluster with a pool, gathers what every host says (its
// status, priority, pool host id, whether it is connected to the pool, and who holds the SPM
// lease as read by StoragePool.getSpmStatus), applies nextSpmStep and makes the call it names
// (spmStart / spmStop), then folds the answer in with recordSpmResult. Who is SPM is recorded
// (store.clusters.setSpm) only from a successful spmStart or a host reporting the lease: the
// sanlock lease is the authority, and a guess never becomes the record.
import type { ControllerRuntime } from '../runtime/controller-runtime.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { DecisionEvent } from '../decision-event.js';
import type { Store } from '../store/store.js';
import type { Cluster } from '../model/clusters.js';
import type { Host } from '../model/hosts.js';
import { agentAnswering } from '../health/host-status.js';
import { recordDecisionEvent } from '../runtime/record-event.js';
import { errorFields, type LogFn } from '../agents/log-fn.js';
import { newCorrelationId } from '../agents/agent-link.js';
import { PeriodicLoop } from '../storage/periodic-loop.js';
import type { PoolState } from '../storage/pool-state.js';
import { answered, errorText } from '../storage/agent-answer.js';
import { nextSpmStep, type SpmAction } from './next-spm-step.js';
import { recordSpmResult, type SpmCallResult } from './spm-result.js';
import { NO_SPM, type RandomSource, type SpmHostView, type SpmRecord } from './spm-record.js';

export interface SpmLoopOptions {
  runtime: ControllerRuntime;
  store: Store;
  settings: DecisionSettings;
  pool: PoolState;
  log: LogFn;
  random?: RandomSource;
  clock?: () => number;
}

export class SpmLoop {
  readonly loop: PeriodicLoop;
  /** by cluster id; the persisted part (host, lver) is in the cluster row */
  private readonly records = new Map<string, SpmRecord>();
  private readonly clock: () => number;

  constructor(private readonly o: SpmLoopOptions) {
    this.clock = o.clock ?? Date.now;
    this.loop = new PeriodicLoop('SPM loop', () => o.settings.pollIntervalMs, () => this.pass(), o.log);
  }

  /** The host holds the SPM lease of its cluster's pool, as last recorded. */
  isSpm(hostId: string): boolean {
    for (const r of this.records.values()) if (r.spmHostId === hostId) return true;
    return false;
  }

  /** The cluster's recorded SPM host, if the host is Up and its agent connected (a caller can send SPM verbs to it). */
  usableSpm(clusterId: string): string | null {
    const id = this.records.get(clusterId)?.spmHostId ?? null;
    if (id === null) return null;
    const up = this.o.runtime.monitor.health(id)?.status === 'Up';
    return up && this.o.runtime.links.get(id)?.state.phase === 'connected' ? id : null;
  }

  private async pass(): Promise<void> {
    for (const c of await this.o.store.clusters.list()) {
      if (c.poolId === null) continue;
      if (!this.records.has(c.id)) this.records.set(c.id, this.recordOf(c)); // isSpm answers from the stored holder at once
      await this.stepCluster(c, c.poolId).catch((e: unknown) =>
        this.o.log('error', 'SPM loop: a step failed', { clusterId: c.id, ...errorFields(e) }));
    }
  }

  /** A restarted controller starts from the stored holder and lver; the lease reports correct it. */
  private recordOf(c: Cluster): SpmRecord {
    return this.records.get(c.id) ?? { ...NO_SPM, spmHostId: c.spmHostId, lver: c.spmLver ?? -1 };
  }

  private async stepCluster(c: Cluster, poolId: string): Promise<void> {
    const { store, settings } = this.o;
    const hosts = (await store.hosts.list({ clusterId: c.id })).filter((h) => h.certFingerprint !== null);
    const views = await Promise.all(hosts.map((h) => this.viewOf(h, poolId)));
    const prev = this.recordOf(c);
    const step = nextSpmStep(prev, views, this.clock(), settings, this.o.random ?? Math.random);
    await this.commit(c, step.record, step.events);
    if (step.action.kind === 'start' || step.action.kind === 'stop') {
      const result = await this.call(step.action, poolId);
      const after = recordSpmResult(step.record, result, this.clock());
      await this.commit(c, after.record, after.events);
    }
  }

  private async viewOf(h: Host, poolId: string): Promise<SpmHostView> {
    const { runtime, settings } = this.o;
    const status = runtime.monitor.health(h.id)?.status ?? h.status;
    const linked = runtime.links.get(h.id)?.state.phase === 'connected';
    const view: SpmHostView = {
      hostId: h.id, status, spmPriority: h.spmPriority, poolHostNo: h.poolHostId, poolConnected: linked && this.o.pool.isConnected(h.id, poolId),
    };
    if (!view.poolConnected || !agentAnswering(status)) return view;
    const at = this.clock(); // when the read was SENT: a read begun before an election says nothing against it
    try {
      const r = await runtime.links.call(h.id, 'StoragePool.getSpmStatus', { storagepoolID: poolId },
        { timeoutMs: Math.min(settings.pollTimeoutMs, settings.pollIntervalMs), correlationId: newCorrelationId('spm') });
      view.lease = { role: r.spmStatus, holder: r.spmId, lver: r.spmLver, at };
    } catch (e) {
      // No answer, or the lease could not be read: nothing is known, so nothing is reported.
      if (answered(e, 'storagePoolUnknown')) view.poolConnected = false;
      this.o.log('debug', 'getSpmStatus gave no lease report', { hostId: h.id, ...errorFields(e) });
    }
    return view;
  }

  private async call(action: Extract<SpmAction, { kind: 'start' | 'stop' }>, poolId: string): Promise<SpmCallResult> {
    const { runtime, log } = this.o;
    const correlationId = newCorrelationId(`spm-${action.kind}`);
    const t0 = performance.now();
    log('info', `spm${action.kind === 'start' ? 'Start' : 'Stop'}`, { hostId: action.hostId, reason: action.reason, correlationId });
    try {
      if (action.kind === 'start') {
        const r = await runtime.links.call(action.hostId, 'StoragePool.spmStart', { storagepoolID: poolId }, { correlationId });
        log('info', 'spmStart succeeded', { hostId: action.hostId, lver: r.spmLver, ms: Math.round(performance.now() - t0) });
        return { op: 'start', hostId: action.hostId, ok: true, lver: r.spmLver };
      }
      await runtime.links.call(action.hostId, 'StoragePool.spmStop', { storagepoolID: poolId }, { correlationId });
      return { op: 'stop', hostId: action.hostId, ok: true };
    } catch (e) {
      log('info', `spm${action.kind === 'start' ? 'Start' : 'Stop'} failed`, { hostId: action.hostId, ms: Math.round(performance.now() - t0), ...errorFields(e) });
      if (action.kind === 'start') return { op: 'start', hostId: action.hostId, ok: false, leaseHeld: answered(e, 'unavailable'), error: errorText(e) };
      return { op: 'stop', hostId: action.hostId, ok: false, error: errorText(e) };
    }
  }

  /** Keeps the record; persists the holder and lver when they changed; writes the events. */
  private async commit(c: Cluster, next: SpmRecord, events: DecisionEvent[]): Promise<void> {
    this.records.set(c.id, next);
    const lver = next.lver < 0 ? null : next.lver;
    if (next.spmHostId !== c.spmHostId || lver !== c.spmLver) {
      await this.o.store.clusters.setSpm(c.id, { hostId: next.spmHostId, lver });
      c.spmHostId = next.spmHostId;
      c.spmLver = lver;
    }
    for (const e of events) await recordDecisionEvent(this.o.store, { ...e, data: { ...e.data, clusterId: c.id } });
  }
}
