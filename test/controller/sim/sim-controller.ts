// A controller made only of the decision functions, driving the simulated world: it polls the
// hosts, moves their health, follows the SPM, reconciles the VMs and starts them through the
// scheduler and the start guard. Calls to agents take time, can be lost, and their answers are
// dropped when the controller "restarts" (what it persisted stays: health, SPM and VM records).

import type { DecisionSettings } from '../../../controller/decision-settings.js';
import type { DecisionEvent } from '../../../controller/decision-event.js';
import { enrolledHost, type HostHealth } from '../../../controller/health/host-status.js';
import { nextHostHealth, type PollOutcome } from '../../../controller/health/next-host-health.js';
import { nextSpmStep } from '../../../controller/spm/next-spm-step.js';
import { recordSpmResult, type SpmCallResult } from '../../../controller/spm/spm-result.js';
import { NO_SPM, type SpmHostView, type SpmLeaseReport, type SpmRecord } from '../../../controller/spm/spm-record.js';
import { schedule, NoSuitableHostError, chosenHost } from '../../../controller/scheduler/schedule.js';
import type { Booking, ClusterPolicy, SchedHost, SchedVm } from '../../../controller/scheduler/sched-types.js';
import { reconcileVm } from '../../../controller/reconcile/reconcile-vm.js';
import { beginStart, recordStartOutcome, VmStateError, type StartOutcome } from '../../../controller/reconcile/start-guard.js';
import { newVmRecord, type HostReport, type ReportedVm, type VmRecord } from '../../../controller/reconcile/vm-record.js';
import type { FakeClock } from './fake-clock.js';
import type { World } from './world.js';

export const REQUIRED_NET = 'storage-net';
const RPC_TIMEOUT_MS = 30_000;

/** Deliberate faults in the controller, to prove the invariant checks catch what they claim. */
export interface Sabotage {
  /** treat a host that does not answer as answering with no VMs (guess Down) */
  guessDown?: boolean;
  /** place VMs as if nothing were booked on any host */
  ignoreBookings?: boolean;
  /** take an spmStart refused because the lease is held as a success */
  trustRefusedSpmStart?: boolean;
}

export interface SimStats {
  startsBegun: number;
  refused409: number;
  refused422: Record<string, number>;
  spmChanges: { at: number; hostId: string | null }[];
}

export class SimController {
  // Persisted (survive a restart):
  health = new Map<string, HostHealth>();
  spm: SpmRecord = NO_SPM;
  vms = new Map<string, VmRecord>();
  // Lost on a restart:
  private reports = new Map<string, { vms: Map<string, ReportedVm>; at: number; poolConnected: boolean; lease?: SpmLeaseReport }>();
  private epoch = 0;
  readonly events: DecisionEvent[] = [];
  readonly stats: SimStats = { startsBegun: 0, refused409: 0, refused422: {}, spmChanges: [] };
  /** called whenever the SPM record names another host (for the invariant check) */
  onSpmChange: (from: string | null, to: string | null) => void = () => {};
  sabotage: Sabotage = {};

  constructor(private world: World, private clock: FakeClock, private s: DecisionSettings, private random: () => number,
    readonly defs: Map<string, SchedVm>, private policy: ClusterPolicy) {
    for (const id of world.hosts.keys()) this.health.set(id, enrolledHost(id, clock.now));
    for (const id of defs.keys()) this.vms.set(id, newVmRecord(id));
  }

  restart(): void {
    this.epoch++;
    this.reports.clear();
  }

  tick(): void {
    const now = this.clock.now;
    for (const [id, prev] of this.health) {
      const view = this.world.poll(id);
      let poll: PollOutcome;
      if (view.kind === 'failed') poll = { kind: 'failed', error: 'unreachable' };
      else if (view.kind === 'recovering') poll = { kind: 'recovering' };
      else {
        poll = { kind: 'answered', vmCount: view.vms.size, fitness: {
          missingRequiredNetworks: view.requiredNetUp ? [] : [REQUIRED_NET], unreachableDomains: view.storage ? [] : ['master'],
        } };
        const vms = new Map([...view.vms].map(([vmId, st]) => [vmId, { status: st } as ReportedVm]));
        this.reports.set(id, { vms, at: now, poolConnected: view.storage, ...(view.lease ? { lease: { ...view.lease, at: now } } : {}) });
      }
      const step = nextHostHealth(prev, poll, { isSpm: this.spm.spmHostId === id }, now, this.s);
      this.health.set(id, step.host);
      this.events.push(...step.events);
    }
    this.spmTick(now);
    for (const [id, rec] of this.vms) {
      const r = reconcileVm(rec, this.hostReports(), now, this.s);
      this.vms.set(id, r.record);
      this.events.push(...r.events);
    }
  }

  hostReports(): HostReport[] {
    return [...this.health.values()].map((h) => {
      const r = this.reports.get(h.hostId);
      if (this.sabotage.guessDown && !this.world.reachable(h.hostId)) return { hostId: h.hostId, status: 'Up', vms: new Map(), at: this.clock.now };
      return r === undefined ? { hostId: h.hostId, status: h.status } : { hostId: h.hostId, status: h.status, vms: r.vms, at: r.at };
    });
  }

  private setSpm(rec: SpmRecord): void {
    const from = this.spm.spmHostId;
    this.spm = rec;
    if (rec.spmHostId !== from) {
      this.stats.spmChanges.push({ at: this.clock.now, hostId: rec.spmHostId });
      this.onSpmChange(from, rec.spmHostId);
    }
  }

  private spmTick(now: number): void {
    const views: SpmHostView[] = [...this.health.values()].map((h) => {
      const sim = this.world.host(h.hostId);
      const r = this.reports.get(h.hostId);
      return { hostId: h.hostId, status: h.status, spmPriority: sim.spmPriority, poolHostNo: sim.no,
        poolConnected: r?.poolConnected ?? false, ...(r?.lease ? { lease: r.lease } : {}) };
    });
    const step = nextSpmStep(this.spm, views, now, this.s, this.random);
    this.events.push(...step.events);
    this.setSpm(step.record);
    const a = step.action;
    if (a.kind === 'start') {
      this.call(a.hostId, () => this.world.spmStart(a.hostId), (res) => {
        const r: SpmCallResult = res === null ? { op: 'start', hostId: a.hostId, ok: false, leaseHeld: false, error: 'timeout' }
          : res.ok ? { op: 'start', hostId: a.hostId, ok: true, lver: res.lver }
          : res.leaseHeld && this.sabotage.trustRefusedSpmStart ? { op: 'start', hostId: a.hostId, ok: true, lver: this.spm.lver + 1 } : { op: 'start', hostId: a.hostId, ok: false, leaseHeld: res.leaseHeld, error: res.leaseHeld ? '40' : '379' };
        this.applySpmResult(r);
      });
    } else if (a.kind === 'stop') {
      this.call(a.hostId, () => this.world.spmStop(a.hostId), (res) => this.applySpmResult(res === null
        ? { op: 'stop', hostId: a.hostId, ok: false, error: 'timeout' } : { op: 'stop', hostId: a.hostId, ok: true }));
    }
  }

  private applySpmResult(r: SpmCallResult): void {
    const out = recordSpmResult(this.spm, r, this.clock.now);
    this.events.push(...out.events);
    this.setSpm(out.record);
  }

  /**
   * An agent call: it reaches the agent after a delay if the agent is reachable when sent and on
   * arrival; its answer comes back after another delay if the agent is still reachable and the
   * controller has not restarted; otherwise `done(null)` at the RPC timeout (same epoch only).
   */
  private call<T>(hostId: string, onAgent: () => T, done: (result: T | null) => void): void {
    const epoch = this.epoch;
    let answered = false;
    const there = this.world.reachable(hostId);
    this.clock.after(50 + Math.floor(this.random() * 1500), () => {
      if (!there || !this.world.reachable(hostId)) return;
      const result = onAgent();
      this.clock.after(50 + Math.floor(this.random() * 1500), () => {
        if (epoch !== this.epoch || answered || !this.world.reachable(hostId)) return;
        answered = true;
        done(result);
      });
    });
    this.clock.after(RPC_TIMEOUT_MS, () => {
      if (epoch !== this.epoch || answered) return;
      answered = true;
      done(null);
    });
  }

  /** POST /vms/{id}/start: reconcile, place, begin (persist), then VM.create. */
  start(vmId: string, agentRefuses = false): 'begun' | '409' | '422' {
    const def = this.defs.get(vmId)!;
    const hosts = this.hostReports();
    const placement = schedule({ vm: def, hosts: this.schedHosts(), running: this.bookings(false), pending: this.bookings(true), policy: this.policy }, this.s);
    let hostId: string;
    try {
      const rec = this.vms.get(vmId)!;
      const blockers = reconcileVm(rec, hosts, this.clock.now, this.s).blockers;
      if (blockers.length > 0) throw new VmStateError(vmId, blockers);
      hostId = chosenHost(placement);
      const begun = beginStart(rec, hosts, hostId, this.clock.now, this.s);
      this.vms.set(vmId, begun.record);
      this.events.push(...begun.events);
    } catch (e) {
      if (e instanceof VmStateError) { this.stats.refused409++; return '409'; }
      if (e instanceof NoSuitableHostError) {
        for (const x of e.details.hosts) this.stats.refused422[x.filter] = (this.stats.refused422[x.filter] ?? 0) + 1;
        return '422';
      }
      throw e;
    }
    this.stats.startsBegun++;
    this.call(hostId, () => (agentRefuses ? 'refused' as const : this.world.createDomain(hostId, vmId, def.memoryMiB) ? 'created' as const : 'exists' as const), (res) => {
      const o: StartOutcome = res === 'created' ? { hostId, result: 'created' }
        : res === 'refused' ? { hostId, result: 'refused', error: '78 before_vm_start hook' }
        : { hostId, result: 'unknown', error: res === null ? 'timeout' : '4 exists' };
      const out = recordStartOutcome(this.vms.get(vmId)!, o, this.clock.now);
      this.vms.set(vmId, out.record);
      this.events.push(...out.events);
    });
    return 'begun';
  }

  /** POST /vms/{id}/stop on a VM its host reports: VM.destroy (synchronous in the simulation). */
  stop(vmId: string): boolean {
    const rec = this.vms.get(vmId)!;
    const h = rec.hostId === null ? undefined : this.health.get(rec.hostId);
    if (rec.startInFlight !== null || h?.status !== 'Up' || !this.world.reachable(h.hostId)) return false;
    this.world.destroyDomain(h.hostId, vmId);
    this.vms.set(vmId, { ...rec, desired: 'stopped' });
    return true;
  }

  private schedHosts(): SchedHost[] {
    return [...this.health.values()].map((h) => {
      const sim = this.world.host(h.hostId);
      const r = this.reports.get(h.hostId);
      return { hostId: h.hostId, clusterId: 'c1', status: h.status, poolConnected: r?.poolConnected ?? false, memTotalMiB: sim.memMiB,
        cpus: sim.cpus, networks: h.reasons.some((x) => x.subject === REQUIRED_NET) ? ['ovirtmgmt'] : ['ovirtmgmt', REQUIRED_NET] };
    });
  }

  /** Running bookings (VMs on a host, Unknown too: they may run) or pending ones (starts in flight). */
  private bookings(pending: boolean): Booking[] {
    const out: Booking[] = [];
    if (this.sabotage.ignoreBookings) return out;
    for (const rec of this.vms.values()) {
      const def = this.defs.get(rec.vmId)!;
      const hostId = pending ? rec.startInFlight?.hostId : rec.status !== 'Down' ? rec.hostId : null;
      if (hostId) out.push({ vmId: rec.vmId, hostId, memoryMiB: def.memoryMiB, vcpus: def.vcpus });
    }
    return out;
  }
}
