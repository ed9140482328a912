// The reconcile loop of hibernations left `saving` with no vm.suspend job following them any
// more (the job failed with an unknown outcome, or ended in a way that left the record): on each
// pass it looks again (every host's fresh VM list, and when those do not decide, the state
// volume's header through an agent) and acts on decideSaving()'s verdict: `suspended`, a discard
// job, or nothing, keeping the reason for GET /vms/{id}. Level-triggered: nothing is remembered
// between passes but the last reasons, which a new pass replaces.
import type { LogFn } from '../agents/log-fn.js';
import type { Job } from '../model/jobs.js';
import type { VmHibernation } from '../model/hibernation.js';
import type { RuntimeLoop } from '../runtime/controller-runtime.js';
import { errorText } from '../storage/agent-answer.js';
import { listEveryHost, sightings, type FreshLists } from '../vms/find-vm.js';
import type { DiscardParams } from './hibernation-discard-job.js';
import { decideSaving, type SaveImageReading, type SavingDecision } from './hibernation-outcome.js';
import type { VmImageDeps } from './vm-image-deps.js';

/** Jobs that own a VM's hibernation record while they run: the reconciler leaves it to them. */
export const HIBERNATION_JOBS = ['vm.suspend', 'vm.start', 'vm.hibernation.discard'] as const;

export interface SavingVerdict { decision: SavingDecision; at: number }

export class HibernationReconciler implements RuntimeLoop {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  private closed = false;
  /** the last verdict per VM whose record is `saving` (what GET /vms/{id} says) */
  private readonly verdicts = new Map<string, SavingVerdict>();

  constructor(private readonly d: VmImageDeps, private readonly o: { submit: (job: Job) => void; log: LogFn; clock?: () => number }) {}

  start(): void {
    const every = this.d.vms.settings.hibernationReconcileMs;
    this.timer = setInterval(() => { void this.runOnce(); }, every);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.pass;
  }

  /** Why a `saving` record blocks the VM's start, as last seen; undefined when it does not (or not yet looked at). */
  verdict(vmId: string): SavingVerdict | undefined {
    return this.verdicts.get(vmId);
  }

  /** What stands against discarding a VM's hibernation now: the hosts it runs on, and the hosts whose list is not known. */
  async discardBlockers(vmId: string, correlationId: string): Promise<{ runningOn: Array<{ hostId: string; status: string }>; unknown: Record<string, string> }> {
    const lists = await listEveryHost(this.d.vms.links, this.d.vms.monitor, this.d.vms.settings, correlationId);
    const seen = sightings(lists, vmId);
    const unknown = incompleteLists(lists);
    for (const s of seen) if (s.status === 'Unknown') unknown[s.hostId] = 'it lists the VM with status Unknown';
    return { runningOn: seen.filter((s) => s.status !== 'Down' && s.status !== 'Unknown'), unknown };
  }

  /** One pass over every `saving` record (a pass under way is joined, not doubled). */
  runOnce(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.pass ??= this.passOnce().catch((e: unknown) => this.o.log('warn', 'hibernation reconcile pass failed', { error: errorText(e) }))
      .finally(() => { this.pass = undefined; });
    return this.pass;
  }

  private async passOnce(): Promise<void> {
    const { store } = this.d.vms;
    const rows = await store.hibernations.listInState('saving');
    for (const id of this.verdicts.keys()) if (!rows.some((r) => r.vmId === id)) this.verdicts.delete(id);
    if (rows.length === 0) return;
    const correlationId = `hibernation-reconcile-${(this.o.clock ?? Date.now)()}`;
    const lists = await listEveryHost(this.d.vms.links, this.d.vms.monitor, this.d.vms.settings, correlationId);
    for (const row of rows) {
      if (this.closed) return;
      const busy = await store.jobs.activeFor(row.vmId, [...HIBERNATION_JOBS]);
      if (busy) { this.remember(row.vmId, { action: 'keep', reason: `a ${busy.kind} job (${busy.id}) is under way` }); continue; }
      await this.settle(row, lists, correlationId);
    }
  }

  private async settle(row: VmHibernation, lists: FreshLists, correlationId: string): Promise<void> {
    const obs = { unanswered: incompleteLists(lists), sightings: sightings(lists, row.vmId) };
    let decision = decideSaving(obs);
    if (decision.action === 'keep' && decision.needsImage) decision = decideSaving({ ...obs, image: await this.readImage(row, lists, correlationId) });
    this.remember(row.vmId, decision);
    const { store } = this.d.vms;
    const vm = await store.vms.find(row.vmId);
    if (!vm) return;
    if (decision.action === 'saved') {
      await store.hibernations.setState(vm.id, 'suspended', row.hostId);
      await store.vms.transitionDesired(vm.id, 'up', 'down');
      const r = this.d.vms.registry.record(vm.id);
      if (r && r.desired !== 'stopped') this.d.vms.registry.update({ ...r, desired: 'stopped' });
      this.verdicts.delete(vm.id);
      this.o.log('info', 'a suspend whose outcome was unknown is found complete: the VM is suspended', { vm: vm.id, reason: decision.reason });
      await store.event({ kind: 'vm.suspended', subjectKind: 'vm', subjectId: vm.id, correlationId,
        message: `VM ${vm.name} suspended: ${decision.reason}; the next start resumes it`, details: { stateVolume: row.stateVolume, found: true } });
    } else if (decision.action === 'drop') {
      this.o.log('warn', 'a suspend whose outcome was unknown did not complete: its record and state volume are dropped', { vm: vm.id, reason: decision.reason });
      const params: DiscardParams = { imageId: row.stateVolume.imageId, reason: decision.reason };
      const job = await store.jobs.create({ kind: 'vm.hibernation.discard', targetKind: 'vm', targetId: vm.id, params: { ...params }, correlationId });
      await store.event({ kind: 'job.created', subjectKind: 'job', subjectId: job.id, correlationId, message: `discard the unfinished hibernation of VM ${vm.name}: ${decision.reason}`,
        details: { kind: job.kind, targetKind: job.targetKind, targetId: job.targetId } });
      this.o.submit(job);
    }
  }

  /** The state volume's header, read by the host that saved it if it answers, else by another. */
  private async readImage(row: VmHibernation, lists: FreshLists, correlationId: string): Promise<SaveImageReading> {
    const { links } = this.d.vms;
    const answered = lists.reports.filter((r) => r.vms !== undefined).map((r) => r.hostId);
    const order = [...answered.filter((h) => h === row.hostId), ...answered.filter((h) => h !== row.hostId)];
    const why: string[] = [];
    for (const hostId of order) {
      try {
        const v = row.stateVolume;
        const r = await links.call(hostId, 'Volume.getSaveImageState', { storagedomainID: v.domainId, imageID: v.imageId, volumeID: v.volumeId }, { correlationId });
        return { read: true, state: r.state, magic: r.magic, hostId };
      } catch (e) {
        why.push(`${hostId}: ${errorText(e)}`);
      }
    }
    return { read: false, why: why.join('; ') || 'no host answered' };
  }

  private remember(vmId: string, decision: SavingDecision): void {
    const before = this.verdicts.get(vmId);
    if (before?.decision.reason !== decision.reason && decision.action === 'keep') this.o.log('info', 'a hibernation stays saving: its outcome is unknown', { vm: vmId, reason: decision.reason });
    this.verdicts.set(vmId, { decision, at: (this.o.clock ?? Date.now)() });
  }
}

/** Hosts whose list cannot be trusted to be whole: no answer, or an agent still recovering its VMs. */
function incompleteLists(lists: FreshLists): Record<string, string> {
  const out: Record<string, string> = { ...lists.unanswered };
  for (const r of lists.reports) if (r.vms !== undefined && r.status === 'Initializing') out[r.hostId] = 'its agent is still recovering its VMs';
  return out;
}
