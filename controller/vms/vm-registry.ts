// The controller's working copy of every VM's runtime record (reconcile's VmRecord) and of
// what each VM books on a host. Kept in memory and changed synchronously, so that placement,
// the start guard and reconcile all read one consistent state with no await in between;
// every change of status or host is then written to the store (what GET /vms shows) in order.
// A start in flight is persisted with its job (memo `startInFlight`) before VM.create is sent,
// and a restarted controller takes it back from its unfinished jobs.
import type { Job } from '../model/jobs.js';
import type { Vm } from '../model/vms.js';
import type { Store } from '../store/store.js';
import { NotFoundError } from '../store/errors.js';
import { errorFields, noLog, type LogFn } from '../agents/log-fn.js';
import type { Booking } from '../scheduler/sched-types.js';
import { newVmRecord, type StartInFlight, type VmRecord, type VmRuntimeStatus } from '../reconcile/vm-record.js';

export interface VmDef {
  vmId: string;
  name: string;
  clusterId: string;
  memoryMiB: number;
  vcpus: number;
}

const STATUSES: readonly VmRuntimeStatus[] = ['WaitForLaunch', 'Powering up', 'Up', 'Paused', 'Powering down', 'Down', 'Unknown', 'Migration Source', 'Migration Destination'];

/** The runtime record a restarted controller starts from: what the store last recorded. */
export function recordFromRow(vm: Vm): VmRecord {
  const status = (STATUSES as readonly string[]).includes(vm.status) ? vm.status as VmRuntimeStatus : 'Unknown';
  return { ...newVmRecord(vm.id), desired: vm.desiredState === 'up' ? 'running' : 'stopped', hostId: vm.hostId, status };
}

export function defOf(vm: Vm): VmDef {
  return { vmId: vm.id, name: vm.name, clusterId: vm.clusterId, memoryMiB: vm.memoryReservationMiB, vcpus: vm.cpuReservation };
}

/** The start in flight a vm.start job remembered, if any. */
export function startInFlightOf(job: Job): StartInFlight | null {
  const f = (job.params['memo'] as Record<string, unknown> | undefined)?.['startInFlight'] as StartInFlight | null | undefined;
  return f && typeof f.hostId === 'string' && typeof f.since === 'number' ? f : null;
}

export class VmRegistry {
  private readonly records = new Map<string, VmRecord>();
  private readonly defs = new Map<string, VmDef>();
  /** what the store holds of each VM's runtime, to write only changes */
  private readonly stored = new Map<string, { status: string; hostId: string | null }>();
  private readonly watchers = new Set<() => void>();
  private writes: Promise<void> = Promise.resolve();
  private loading: Promise<void> | null = null;
  private readonly log: LogFn;

  constructor(private readonly store: Store, log?: LogFn) {
    this.log = log ?? noLog;
  }

  /** Loads every VM from the store, and the starts in flight of unfinished jobs (once). */
  load(): Promise<void> {
    this.loading ??= (async () => {
      for (const vm of await this.store.vms.list()) this.add(vm);
      for (const job of await this.store.jobs.unfinished()) {
        const f = job.kind === 'vm.start' ? startInFlightOf(job) : null;
        const r = this.records.get(job.targetId);
        if (f && r) this.records.set(r.vmId, { ...r, startInFlight: f });
      }
    })();
    return this.loading;
  }

  get ready(): Promise<void> {
    return this.load();
  }

  /** A VM the store has: its definition, and its record if it has none yet. */
  add(vm: Vm): void {
    this.defs.set(vm.id, defOf(vm));
    if (!this.records.has(vm.id)) {
      this.records.set(vm.id, recordFromRow(vm));
      this.stored.set(vm.id, { status: vm.status, hostId: vm.hostId });
    }
  }

  /** The store's row changed its definition (reservations): keep the record. */
  define(vm: Vm): void {
    if (this.records.has(vm.id)) this.defs.set(vm.id, defOf(vm));
    else this.add(vm);
  }

  /** Level-triggered against the store: VMs defined since are added, deleted ones forgotten. */
  async syncFromStore(): Promise<void> {
    const rows = await this.store.vms.list();
    const ids = new Set(rows.map((v) => v.id));
    for (const vm of rows) this.define(vm);
    for (const id of [...this.records.keys()]) if (!ids.has(id)) this.forget(id);
  }

  forget(vmId: string): void {
    this.records.delete(vmId);
    this.defs.delete(vmId);
    this.stored.delete(vmId);
  }

  knows(vmId: string): boolean {
    return this.records.has(vmId);
  }

  ids(): string[] {
    return [...this.records.keys()];
  }

  record(vmId: string): VmRecord | undefined {
    return this.records.get(vmId);
  }

  def(vmId: string): VmDef | undefined {
    return this.defs.get(vmId);
  }

  /** Sets the record (synchronously), writes a change of status or host to the store, wakes the waiters. */
  update(next: VmRecord): void {
    if (!this.records.has(next.vmId)) return; // deleted meanwhile
    this.records.set(next.vmId, next);
    const was = this.stored.get(next.vmId);
    if (was?.status !== next.status || was?.hostId !== next.hostId) {
      this.stored.set(next.vmId, { status: next.status, hostId: next.hostId });
      this.enqueue(next.vmId, next.status, next.hostId);
    }
    for (const w of [...this.watchers]) w();
  }

  /** VMs that hold memory and vCPUs on a host: where they run, or may run (Unknown, a start in flight). */
  running(): Booking[] {
    const out: Booking[] = [];
    for (const r of this.records.values()) {
      const d = this.defs.get(r.vmId);
      if (d === undefined) continue;
      const hostId = r.status !== 'Down' ? r.hostId : null;
      if (hostId !== null) out.push({ vmId: r.vmId, hostId, memoryMiB: d.memoryMiB, vcpus: d.vcpus });
      const f = r.startInFlight;
      if (f !== null && f.hostId !== hostId) out.push({ vmId: r.vmId, hostId: f.hostId, memoryMiB: d.memoryMiB, vcpus: d.vcpus });
    }
    return out;
  }

  /**
   * Resolves when `check` returns true after a change (or at once); rejects with what it
   * returns as an Error, on timeout with `onTimeout()`, or when the signal aborts.
   */
  waitFor(check: () => boolean | Error, timeoutMs: number, onTimeout: () => Error, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (e?: Error): void => {
        clearTimeout(timer);
        this.watchers.delete(watch);
        signal?.removeEventListener('abort', aborted);
        if (e) reject(e); else resolve();
      };
      const watch = (): void => {
        const r = check();
        if (r === true) done();
        else if (r instanceof Error) done(r);
      };
      const aborted = (): void => done(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
      const timer = setTimeout(() => done(onTimeout()), timeoutMs);
      this.watchers.add(watch);
      signal?.addEventListener('abort', aborted, { once: true });
      if (signal?.aborted) aborted(); else watch();
    });
  }

  /** Wakes the waiters (something they check besides the records changed, e.g. a host's report). */
  poke(): void {
    for (const w of [...this.watchers]) w();
  }

  /** Resolves once every change so far is written. */
  flushed(): Promise<void> {
    return this.writes;
  }

  private enqueue(vmId: string, status: string, hostId: string | null): void {
    this.writes = this.writes.then(async () => {
      try {
        await this.store.vms.setRuntime(vmId, status, hostId);
      } catch (e) {
        if (e instanceof NotFoundError) { this.forget(vmId); return; } // deleted through the API meanwhile
        this.log('error', 'could not record a VM\'s runtime status', { vm: vmId, status, hostId, ...errorFields(e) });
      }
    });
  }
}
