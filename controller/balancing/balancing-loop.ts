// The balancing loop: every balancingIntervalMs, for each cluster whose policy balances, the
// cluster as it is now (hosts as placement sees them, VMs as the registry knows them, what is
// booked, each host's utilisation history) goes to the pure balancer, and its one decision, if
// any, is carried out: a vm.migrate job (the migration part runs it), or power_saving's request
// to park or activate a host. Level-triggered: a cycle reads everything afresh, so a decision
// lost to a restart is simply made again. A cluster with a migration still running (an
// unfinished vm.migrate job, or a VM the agent reports migrating) is left alone this cycle, so
// at most one migration per cluster is ever under way.
import { newCorrelationId } from '../agents/agent-link.js';
import { errorFields, noLog, type LogFn } from '../agents/log-fn.js';
import type { DecisionEvent } from '../decision-event.js';
import type { DecisionSettings } from '../decision-settings.js';
import type { Cluster } from '../model/clusters.js';
import type { Host } from '../model/hosts.js';
import type { Job } from '../model/jobs.js';
import type { Vm } from '../model/vms.js';
import { recordDecisionEvent } from '../runtime/record-event.js';
import type { RuntimeLoop } from '../runtime/controller-runtime.js';
import { policyOf, schedVmOf, type PlacementView } from '../scheduler/placement-service.js';
import type { PendingReservations } from '../scheduler/reservations.js';
import type { Store } from '../store/store.js';
import type { VmRegistry } from '../vms/vm-registry.js';
import { balance } from './balance.js';
import { paramsOf, type BalanceDecision, type BalanceInput, type BalanceVm } from './balance-types.js';
import type { UtilHistory } from './history.js';

const MIGRATING = new Set(['Migration Source', 'Migration Destination']);

export interface BalancingDeps {
  store: Store;
  settings: DecisionSettings;
  history: UtilHistory;
  /** the hosts and bookings as placement sees them (the VM part's view) */
  view: PlacementView;
  registry: VmRegistry;
  reservations: PendingReservations;
  isSpm(hostId: string): boolean;
  /** hands a created job to the executor */
  submit(job: Job): void;
  /** carries out power_saving's request to park a host, or to activate it again; false: not done */
  hostRequest?(kind: 'maintenance' | 'activate', hostId: string, reason: string, correlationId: string): Promise<boolean>;
  log?: LogFn;
  clock?: () => number;
}

/** What one cycle did for one cluster (for the log and the tests). */
export interface ClusterCycle {
  clusterId: string;
  decision: BalanceDecision | null;
  /** the vm.migrate job created for the decision */
  jobId?: string;
  /** why the cluster was not balanced this cycle */
  skipped?: string;
}

export class BalancingLoop implements RuntimeLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ClusterCycle[]> | null = null;
  private closed = false;
  private readonly log: LogFn;
  /** the last non-decision event per cluster: a lasting situation is recorded once, not every cycle */
  private readonly noted = new Map<string, string>();
  /** hosts power_saving asked into maintenance: only these may it activate again */
  readonly policyMaintained = new Set<string>();
  /** called after every cycle (tests count cycles with it) */
  onCycle: ((outcome: ClusterCycle[]) => void) | undefined;

  constructor(private readonly d: BalancingDeps) {
    this.log = d.log ?? noLog;
  }

  start(): void {
    if (this.closed || this.timer) return;
    this.timer = setInterval(() => { void this.cycle().catch(() => undefined); }, this.d.settings.balancingIntervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One balancing cycle over every cluster; a cycle still running is joined, not doubled. */
  cycle(): Promise<ClusterCycle[]> {
    this.running ??= this.runCycle().finally(() => { this.running = null; });
    return this.running;
  }

  private async runCycle(): Promise<ClusterCycle[]> {
    const out: ClusterCycle[] = [];
    try {
      const { store } = this.d;
      const [clusters, hosts, vms, unfinished] = await Promise.all([store.clusters.list(), store.hosts.list(), store.vms.list(), store.jobs.unfinished()]);
      this.d.history.retain(new Set(hosts.map((h) => h.id)));
      for (const cluster of clusters) {
        if (this.closed) break;
        const c = await this.balanceCluster(cluster, hosts.filter((h) => h.clusterId === cluster.id), vms.filter((v) => v.clusterId === cluster.id), unfinished);
        if (c) out.push(c);
      }
    } catch (e) {
      this.log('error', 'balancing: the cycle failed; the next one reads everything again', errorFields(e));
    }
    this.onCycle?.(out);
    return out;
  }

  private async balanceCluster(cluster: Cluster, hosts: Host[], vms: Vm[], unfinished: Job[]): Promise<ClusterCycle | null> {
    if (cluster.policy === 'none' || hosts.length < 2) return null;
    const ids = new Set(vms.map((v) => v.id));
    const migrating = new Set(unfinished.filter((j) => j.kind === 'vm.migrate' && ids.has(j.targetId)).map((j) => j.targetId));
    const input = this.inputOf(cluster, hosts, vms, migrating);
    if (input.vms.some((v) => v.migrating)) {
      return { clusterId: cluster.id, decision: null, skipped: 'a migration of this cluster is still running' };
    }
    const hostIds = new Set(hosts.map((h) => h.id));
    if (unfinished.some((j) => j.targetKind === 'host' && hostIds.has(j.targetId))) {
      return { clusterId: cluster.id, decision: null, skipped: 'a host of this cluster has a job under way' };
    }
    const result = balance(input);
    const { decision } = result;
    if (decision === null) {
      this.log('debug', 'balancing: no move', { cluster: cluster.id, policy: cluster.policy, ...summaryOf(input) });
      await this.noteOnce(cluster.id, result.events);
      return { clusterId: cluster.id, decision: null };
    }
    if (decision.kind !== 'migrate' && !this.d.hostRequest) {
      // Decided, but this controller has no maintenance flow to carry it out: said once, not every cycle.
      if (this.noted.get(cluster.id) !== decision.reason) this.log('warn', `balancing: ${decision.kind} of a host decided, but this controller has no host maintenance flow`, { cluster: cluster.id, ...decision });
      await this.noteOnce(cluster.id, result.events);
      return { clusterId: cluster.id, decision, skipped: 'no host maintenance flow to carry the decision out' };
    }
    this.noted.delete(cluster.id);
    const correlationId = newCorrelationId('balancing');
    for (const e of result.events) await recordDecisionEvent(this.d.store, e, correlationId);
    this.log('info', 'balancing: decision', { cluster: cluster.id, policy: cluster.policy, correlationId, ...decision });
    if (decision.kind === 'migrate') {
      const job = await this.migrateJob(decision, correlationId);
      return { clusterId: cluster.id, decision, jobId: job.id };
    }
    const done = await this.d.hostRequest!(decision.kind, decision.hostId, decision.reason, correlationId);
    // Only a host this policy did park may it activate again; an admin's maintenance is the admin's.
    if (done && decision.kind === 'maintenance') this.policyMaintained.add(decision.hostId);
    if (done && decision.kind === 'activate') this.policyMaintained.delete(decision.hostId);
    return { clusterId: cluster.id, decision, ...(!done && { skipped: `the host ${decision.kind} request was refused` }) };
  }

  /** The cluster as the balancer sees it now. */
  private inputOf(cluster: Cluster, hosts: Host[], vms: Vm[], migratingJobs: ReadonlySet<string>): BalanceInput {
    const { settings, view, registry, reservations } = this.d;
    const balanceVms: BalanceVm[] = [];
    for (const v of vms) {
      const r = registry.record(v.id);
      const status = r?.status ?? v.status;
      const hostId = r ? r.hostId : v.hostId;
      if (hostId === null || status === 'Down') continue;
      balanceVms.push({ vm: schedVmOf(v), hostId, status, priority: v.priority, migrating: migratingJobs.has(v.id) || MIGRATING.has(status) });
    }
    return {
      clusterId: cluster.id, policy: cluster.policy, schedPolicy: policyOf(cluster, settings),
      hosts: view.schedHosts(hosts).map((sched) => ({ sched, spm: this.d.isSpm(sched.hostId) })),
      history: this.d.history.snapshot(), vms: balanceVms, running: view.running(), pending: reservations.list(),
      params: paramsOf(cluster, settings), settings, policyMaintained: this.policyMaintained, now: (this.d.clock ?? Date.now)(),
    };
  }

  private async migrateJob(d: Extract<BalanceDecision, { kind: 'migrate' }>, correlationId: string): Promise<Job> {
    const { store } = this.d;
    const job = await store.jobs.create({ kind: 'vm.migrate', targetKind: 'vm', targetId: d.vmId, params: { vmId: d.vmId, hostId: d.toHostId, reason: d.reason }, correlationId });
    await store.event({ kind: 'job.created', subjectKind: 'job', subjectId: job.id, correlationId, message: `balancing: migrate VM ${d.vmId} from host ${d.fromHostId} to ${d.toHostId}`,
      details: { kind: job.kind, targetKind: job.targetKind, targetId: job.targetId } });
    this.d.submit(job);
    return job;
  }

  /** Records the events of a cycle that changed nothing (a host needing relief that gets none) once while they last. */
  private async noteOnce(clusterId: string, events: DecisionEvent[]): Promise<void> {
    const key = events.map((e) => e.reason).join('\n');
    if (key === '') { this.noted.delete(clusterId); return; }
    if (this.noted.get(clusterId) === key) return;
    this.noted.set(clusterId, key);
    for (const e of events) await recordDecisionEvent(this.d.store, e);
  }
}

/** The cluster as the balancer saw it, for the log: each host's status, VMs and samples. */
function summaryOf(input: BalanceInput): Record<string, unknown> {
  return {
    hosts: input.hosts.map((h) => {
      const samples = input.history.get(h.sched.hostId) ?? [];
      const last = samples[samples.length - 1];
      return {
        id: h.sched.hostId, status: h.sched.status, cpus: h.sched.cpus, vms: input.vms.filter((v) => v.hostId === h.sched.hostId).length,
        samples: samples.length, lastCpuPct: last?.cpuPct ?? null, lastSampleAgeMs: last ? input.now - last.at : null,
      };
    }),
  };
}
