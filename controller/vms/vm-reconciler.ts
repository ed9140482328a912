// VM reconcile, level-triggered on every observation of a host's VMs (a list, an event, a
// change of the host's status): reconcileVm moves each VM's record to what the agents report
// (the agent's running state wins; a difference is an event), Unknown while its host is lost,
// never Down. A Hostvisor VM that a host runs and the store does not know is a stray: an event,
// never touched.
import type { DecisionSettings } from '../decision-settings.js';
import type { DecisionEvent } from '../decision-event.js';
import { errorFields, noLog, type LogFn } from '../agents/log-fn.js';
import type { VmObservation } from '../monitor/observation-sink.js';
import { reconcileVm } from '../reconcile/reconcile-vm.js';
import { findStrays, strayEvents } from '../reconcile/strays.js';
import { listTrusted, type HostReport, type VmRecord } from '../reconcile/vm-record.js';
import { recordDecisionEvent } from '../runtime/record-event.js';
import type { Store } from '../store/store.js';
import type { VmRegistry } from './vm-registry.js';

/** A report reconcile can rely on: a current list, or a host whose status says what its VMs are (lost, or in doubt). */
export function conclusive(r: HostReport): boolean {
  return listTrusted(r) || r.status === 'NonResponsive' || r.status === 'Connecting';
}

function sameRecord(a: VmRecord, b: VmRecord): boolean {
  return a.status === b.status && a.hostId === b.hostId && a.desired === b.desired && a.noted === b.noted
    && JSON.stringify(a.startInFlight) === JSON.stringify(b.startInFlight);
}

export interface ReconcilerOptions {
  registry: VmRegistry;
  store: Store;
  settings: DecisionSettings;
  /** the last observation of each host's VMs (StoreSink.latestVms) */
  latest: ReadonlyMap<string, VmObservation>;
  log?: LogFn;
  clock?: () => number;
}

export class VmReconciler {
  /** "host/vm" of the strays already reported, so a lasting one is one event */
  private readonly reportedStrays = new Set<string>();
  /** each VM's last change to Down, for a start that waits on it (a launch that failed) */
  private readonly downs = new Map<string, { hostId: string; at: number; exitMessage?: string }>();
  private chain: Promise<void> = Promise.resolve();
  private readonly log: LogFn;

  constructor(private readonly o: ReconcilerOptions) {
    this.log = o.log ?? noLog;
  }

  /** The host reports reconcile may rely on now, by host. */
  reports(): Map<string, HostReport> {
    const out = new Map<string, HostReport>();
    for (const [hostId, ob] of this.o.latest) if (conclusive(ob.report)) out.set(hostId, ob.report);
    return out;
  }

  /** One observation: reconcile the VMs it concerns (synchronously), then look for strays (queued). */
  observe(ob: VmObservation): void {
    const now = (this.o.clock ?? Date.now)();
    const hostId = ob.report.hostId;
    const reports = this.reports();
    const { registry } = this.o;
    const concerned = new Set<string>(ob.report.vms.keys());
    for (const c of ob.changes) concerned.add(c.vmId);
    for (const id of registry.ids()) {
      const r = registry.record(id)!;
      if (r.hostId === hostId || r.startInFlight?.hostId === hostId) concerned.add(id);
    }
    for (const c of ob.changes) {
      const exitMessage = ob.report.vms.get(c.vmId)?.exitMessage;
      if (c.to === 'Down') this.downs.set(c.vmId, { hostId, at: ob.observedAt, ...(exitMessage !== undefined && { exitMessage }) });
    }
    const events: DecisionEvent[] = [];
    for (const vmId of concerned) events.push(...this.reconcileOne(vmId, reports, now));
    registry.poke();
    this.enqueue(async () => {
      for (const e of events) await recordDecisionEvent(this.o.store, e);
      if (listTrusted(ob.report)) await this.strays(ob.report, now);
    });
  }

  /** Reconciles every known VM against the reports there are (a periodic pass: timeouts need no observation). */
  sweep(): void {
    const now = (this.o.clock ?? Date.now)();
    const reports = this.reports();
    const events = this.o.registry.ids().flatMap((id) => this.reconcileOne(id, reports, now));
    this.o.registry.poke();
    if (events.length > 0) this.enqueue(async () => { for (const e of events) await recordDecisionEvent(this.o.store, e); });
  }

  /** The VM's change to Down on the host observed at or after `since`, if any (with the agent's exit message). */
  wentDown(vmId: string, hostId: string, since: number): { at: number; exitMessage?: string } | undefined {
    const d = this.downs.get(vmId);
    return d !== undefined && d.hostId === hostId && d.at >= since ? d : undefined;
  }

  /** Resolves once the events and stray checks queued so far are done. */
  flushed(): Promise<void> {
    return this.chain;
  }

  private reconcileOne(vmId: string, reports: Map<string, HostReport>, now: number): DecisionEvent[] {
    const { registry, settings } = this.o;
    const prev = registry.record(vmId);
    if (prev === undefined) return [];
    // A host the VM is recorded on with no report yet (the controller just started, or the agent
    // is recovering) says nothing: wait for it rather than call the VM Unknown or Down.
    for (const h of [prev.hostId, prev.startInFlight?.hostId]) if (h != null && !reports.has(h)) return [];
    const r = reconcileVm(prev, [...reports.values()], now, settings);
    if (!sameRecord(prev, r.record)) registry.update(r.record);
    for (const e of r.events) this.log(e.severity === 'info' ? 'info' : 'warn', e.kind, { vm: vmId, reason: e.reason, ...(e.host !== undefined && { hostId: e.host }) });
    return r.events;
  }

  /** Hostvisor VMs on the host that the store does not know: one event each while they last. */
  private async strays(report: HostReport & { vms: ReadonlyMap<string, unknown> }, now: number): Promise<void> {
    const { registry, store } = this.o;
    let candidates = findStrays(new Set(registry.ids()), [report]);
    if (candidates.length > 0) {
      // Defined through the API since the registry last looked: known after all.
      for (const c of candidates) {
        const vm = await store.vms.find(c.vmId);
        if (vm) registry.add(vm);
      }
      candidates = findStrays(new Set(registry.ids()), [report]);
    }
    const keys = new Set(candidates.map((c) => `${c.hostId}/${c.vmId}`));
    for (const k of [...this.reportedStrays]) if (k.startsWith(`${report.hostId}/`) && !keys.has(k)) this.reportedStrays.delete(k);
    for (const e of strayEvents(candidates, this.reportedStrays, now)) {
      this.reportedStrays.add(`${e.host!}/${e.vm!}`);
      this.log('warn', 'vm.stray', { hostId: e.host, vm: e.vm, reason: e.reason });
      await recordDecisionEvent(store, e);
    }
  }

  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((e: unknown) => this.log('error', 'VM reconcile could not record its events', errorFields(e)));
  }
}
