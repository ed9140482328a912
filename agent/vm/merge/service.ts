// Live merge (VM.merge, VM.getJobs): the verbs, the jobs' persistence in the
// VM's metadata, libvirt's block-job events, and the level-triggered
// reconcile that drives every running job found there, after an agent
// restart too (libvirt's job still running: followed; ended: its outcome read
// from the live chain; never guessed).
import { EventEmitter } from 'node:events';
import type { Logger } from '../../log.js';
import { enums } from '../../libvirt/index.js';
import { InvalidParamsError, MergeError, WrongStateError, HostvisorError } from '../../../api/errors.js';
import type { MergeJobT, ParamsOf } from '../../../api/schema.js';
import type { VmManager } from '../manager.js';
import type { Vm } from '../vm.js';
import { metadataElement, METADATA_NS, METADATA_PREFIX } from '../metadata.js';
import { api } from '../libvirt-errors.js';
import { SharedVolumeNonWritableError } from '../../storage/errors.js';
import { isRunning, jobFromAttrs, jobToAttrs, publicJob, type MergeJob } from './job.js';
import { MergeSteps, type MergeStepDeps } from './steps.js';

export interface LiveMergeOptions extends Omit<MergeStepDeps, 'domain' | 'persist' | 'wake'> {
  manager: VmManager;
  keepEndedSec: number;
}

type Events = { status: [vmId: string, jobs: MergeJobT[]] };

/** Bound on the steps one drive() takes (a retried commit takes a few). */
const MAX_STEPS = 16;

export class LiveMerges extends EventEmitter<Events> {
  private readonly steps: MergeSteps;
  private readonly driving = new Set<string>();
  private readonly saving = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, Set<(status: number | undefined) => void>>();
  private readonly subscriptions: Array<{ close(): Promise<void> }> = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly kick = (): void => { void this.reconcile(); };

  constructor(private readonly o: LiveMergeOptions) {
    super();
    const m = o.manager;
    this.steps = new MergeSteps({
      ...o,
      domain: (vm) => m.domain(vm),
      persist: (vm, job) => this.persist(vm, job),
      wake: (vmId, target, ms) => this.wake(vmId, target, ms),
    });
  }

  async start(): Promise<void> {
    this.subscriptions.push(await this.o.manager.client.subscribe('block-job', (ev) => {
      this.o.log.debug('block job event', { vm: ev.domain.uuid, disk: ev.disk, type: ev.type, status: ev.status });
      const ws = this.waiters.get(`${ev.domain.uuid}/${ev.disk}`);
      for (const w of ws ?? []) w(ev.status);
    }));
    // A merge's base ("vda[N]") crossed its threshold: the loop following that disk looks at its room at once.
    this.subscriptions.push(await this.o.manager.client.subscribe('block-threshold', (ev) => {
      const m = /^(.+)\[\d+\]$/.exec(ev.dev);
      for (const w of (m && this.waiters.get(`${ev.domain.uuid}/${m[1]}`)) || []) w(undefined);
    }));
    this.o.manager.on('recovered', this.kick);
    this.timer = setInterval(this.kick, Math.max(1000, this.o.pollMs * 5));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.o.manager.off('recovered', this.kick);
    for (const s of this.subscriptions.splice(0)) await s.close().catch(() => {});
  }

  handlers() {
    return {
      'VM.merge': (p: ParamsOf<'VM.merge'>) => this.merge(p),
      'VM.getJobs': (p: ParamsOf<'VM.getJobs'>) => ({ jobs: this.jobs(this.o.manager.get(p.vmID)).map(publicJob) }),
    };
  }

  jobs(vm: Vm): MergeJob[] {
    return (vm.meta.jobs ?? []).map(jobFromAttrs).filter((j): j is MergeJob => j !== undefined);
  }

  /** Checks the request against the running chain, records the job, and starts it. */
  async merge(p: ParamsOf<'VM.merge'>): Promise<{ jobUUID: string }> {
    const m = this.o.manager;
    const vm = m.managed(p.vmID);
    return vm.queue.run(async () => {
      const existing = this.jobs(vm).find((j) => j.id === p.jobUUID);
      if (existing) return { jobUUID: existing.id }; // a retried request
      if (vm.status !== 'Up' && vm.status !== 'Paused') throw new WrongStateError(`a live merge needs a running VM; it is ${vm.status}`);
      if (!this.o.storage.connected) throw new MergeError('the storage pool is not connected on this host');
      const busy = this.jobs(vm).find((j) => isRunning(j) && j.imageID === p.drive.imageID);
      if (busy) throw new MergeError(`image ${p.drive.imageID} already has merge ${busy.id} running`);
      const disk = vm.disks.find((d) => d.storage?.domainID === p.drive.domainID && d.storage.imageID === p.drive.imageID);
      if (!disk) throw new InvalidParamsError(`VM ${vm.id} has no drive of image ${p.drive.imageID} in domain ${p.drive.domainID}`, { data: { field: 'drive' } });
      if (disk.storage!.volumeID !== p.drive.volumeID) {
        throw new MergeError(`drive ${disk.name}'s leaf is ${disk.storage!.volumeID}, not ${p.drive.volumeID}`);
      }
      const chain = await this.steps.chain(vm, await m.domain(vm), disk.name);
      const top = chain.layers.findIndex((l) => l.volUUID === p.topVolUUID);
      if (top < 0) throw new InvalidParamsError(`volume ${p.topVolUUID} is not in drive ${disk.name}'s running chain`, { data: { field: 'topVolUUID' } });
      if (chain.layers[top + 1]?.volUUID !== p.baseVolUUID) {
        throw new InvalidParamsError(`volume ${p.baseVolUUID} is not the parent of ${p.topVolUUID} in the running chain`, { data: { field: 'baseVolUUID' } });
      }
      if (chain.mirror) throw new MergeError(`drive ${disk.name} already has a block job (${chain.mirror.job})`);
      await this.refuseSharedBase(p.drive.domainID, p.drive.imageID, p.baseVolUUID);
      const job: MergeJob = {
        id: p.jobUUID, domainID: p.drive.domainID, imageID: p.drive.imageID, leafVolUUID: p.drive.volumeID,
        baseVolUUID: p.baseVolUUID, topVolUUID: p.topVolUUID, target: disk.name, active: top === 0, bandwidth: p.bandwidth ?? 0,
        phase: 'extend', ready: false, progress: 0, startedAt: Date.now(),
      };
      await this.persist(vm, job);
      this.o.log.info('merge requested', { vm: vm.id, job: job.id, target: job.target, top: job.topVolUUID, base: job.baseVolUUID, active: job.active });
      return { jobUUID: job.id };
    }).then((r) => {
      void this.reconcile();
      return r;
    });
  }

  /** A template's volume is never written: a base that is SHARED, or of another image (a thin clone's template), is refused (219). */
  private async refuseSharedBase(sdUUID: string, imgUUID: string, baseUUID: string): Promise<void> {
    const sd = await this.o.storage.domain(sdUUID);
    const rec = (await sd.listVolumes()).find((r) => r.volUUID === baseUUID);
    const shared = rec !== undefined && (rec.imgUUID !== imgUUID || (await sd.getVolumeInfo(rec.imgUUID, baseUUID)).voltype === 'SHARED');
    if (shared) throw new SharedVolumeNonWritableError(sdUUID, baseUUID, 'it is not merged into (the top of a thin clone stays above its template)');
  }

  /** Drives every running job of every VM that nobody drives now; drops ended jobs kept long enough. */
  async reconcile(): Promise<void> {
    const m = this.o.manager;
    if (m.recovering || !m.client.connected) return;
    await Promise.all(m.list().filter((vm) => !vm.external && vm.meta.jobs?.length).map(async (vm) => {
      const jobs = this.jobs(vm);
      const expired = jobs.filter((j) => !isRunning(j) && Date.now() - (j.endedAt ?? 0) > this.o.keepEndedSec * 1000);
      if (expired.length) await this.drop(vm, expired.map((j) => j.id));
      await Promise.all(jobs.filter((j) => isRunning(j) && !this.driving.has(j.id)).map((j) => this.drive(vm, j)));
    }));
  }

  private async drive(vm: Vm, job: MergeJob): Promise<void> {
    // Storage steps need the pool: after a restart, wait for the engine to connect it (the next tick retries).
    if (!this.o.storage.connected) return;
    if (vm.status === 'Down') return this.fail(vm, job, new MergeError('the VM is down'));
    if (vm.status === 'Unknown') return;
    this.driving.add(job.id);
    const phases: Record<string, number> = {};
    try {
      for (let step = 0; step < MAX_STEPS && isRunning(job); step++) {
        // A VM stopped and created again under the same id is a new run (a new Vm): libvirt's commit ended with the old one.
        if (!this.current(vm)) throw new MergeError('the VM stopped during the merge: its block job ended with that run');
        const phase = job.phase;
        const t0 = performance.now();
        if (phase === 'extend') await this.steps.extend(vm, job);
        else if (phase === 'commit') await this.steps.commit(vm, job);
        else if (phase === 'pivot') await this.steps.pivot(vm, job);
        else if (phase === 'cleanup') await this.steps.cleanup(vm, job);
        phases[phase] = Math.round((phases[phase] ?? 0) + performance.now() - t0);
      }
      // The time of each phase in this process (a restarted agent times what it did).
      if (job.phase === 'done') this.o.log.info('merge phases', { vm: vm.id, job: job.id, phasesMs: phases });
      if (isRunning(job)) throw new MergeError(`merge still ${job.phase} after ${MAX_STEPS} steps`);
    } catch (e) {
      // A libvirt outage or a VM gone mid-step is not the merge's failure: the next reconcile decides from what is true then.
      if (!this.o.manager.client.connected || (vm.status as string) === 'Unknown') this.o.log.warn('merge step interrupted; will reconcile', { vm: vm.id, job: job.id, phase: job.phase, err: e });
      else await this.fail(vm, job, e);
    } finally {
      this.driving.delete(job.id);
    }
  }

  private async fail(vm: Vm, job: MergeJob, e: unknown): Promise<void> {
    const code = e instanceof HostvisorError ? e.code : 52;
    job.phase = 'failed';
    job.endedAt = Date.now();
    job.error = { code, message: e instanceof Error ? e.message : String(e) };
    this.o.log.warn('merge failed', { vm: vm.id, job: job.id, err: e });
    await this.persist(vm, job).catch((err: unknown) => this.o.log.warn('merge outcome not saved', { vm: vm.id, job: job.id, err }));
  }

  /** Saves the job into the VM's metadata (one save at a time per VM) and sends VM_job_status. */
  private persist(vm: Vm, job: MergeJob): Promise<void> {
    const attrs = jobToAttrs(job);
    const jobs = vm.meta.jobs ?? [];
    const i = jobs.findIndex((a) => a.id === job.id);
    if (i >= 0) jobs[i] = attrs; else jobs.push(attrs);
    vm.meta.jobs = jobs;
    this.emit('status', vm.id, this.jobs(vm).map(publicJob));
    return this.save(vm);
  }

  private async drop(vm: Vm, ids: string[]): Promise<void> {
    vm.meta.jobs = (vm.meta.jobs ?? []).filter((a) => !ids.includes(a.id ?? ''));
    if (!vm.meta.jobs.length) delete vm.meta.jobs;
    await this.save(vm).catch((e: unknown) => this.o.log.debug('ended merge jobs not dropped yet', { vm: vm.id, err: e }));
  }

  /** The manager still holds this Vm: the run the job belongs to. Domains are found by uuid, so an old run's step would reach the next run's domain. */
  private current(vm: Vm): boolean {
    return this.o.manager.vms.get(vm.id) === vm;
  }

  private save(vm: Vm): Promise<void> {
    // An old run's metadata is never written over the next run's domain (same uuid).
    if (!this.current(vm)) return Promise.resolve();
    const prev = this.saving.get(vm.id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(async () => {
      const dom = await this.o.manager.domain(vm);
      await api(() => dom.setMetadata(enums.DomainMetadataType.ELEMENT, metadataElement(vm.meta), METADATA_PREFIX, METADATA_NS,
        enums.DomainModificationImpact.LIVE), vm.id);
    });
    this.saving.set(vm.id, next);
    void next.finally(() => { if (this.saving.get(vm.id) === next) this.saving.delete(vm.id); }).catch(() => {});
    return next;
  }

  private wake(vmId: string, target: string, ms: number): Promise<number | undefined> {
    const key = `${vmId}/${target}`;
    return new Promise((resolve) => {
      const set = this.waiters.get(key) ?? new Set();
      this.waiters.set(key, set);
      const done = (status: number | undefined): void => {
        clearTimeout(t);
        set.delete(done);
        if (!set.size) this.waiters.delete(key);
        resolve(status);
      };
      const t = setTimeout(() => done(undefined), ms);
      set.add(done);
    });
  }
}
