// The steps of one live merge, each idempotent and each decided from what is
// true now (libvirt's block job and live chain, the volumes' metadata), so the
// same code runs a fresh merge and one found in the metadata after a restart:
// extend the base (block COW: measured, rounded up to the chunk), blockCommit,
// follow libvirt's job, pivot an active commit (top ILLEGAL first), then make
// the chain metadata follow.
import type { Logger } from '../../log.js';
import { blockCommit, blockJobAbort, blockJobInfo, enums, toNumber, type Domain } from '../../libvirt/index.js';
import { MergeError } from '../../../api/errors.js';
import type { StorageDomain } from '../../storage/domain.js';
import type { QemuImg } from '../../storage/qemu-img.js';
import type { ChunkedDrive } from '../../storage/thinp/drive-monitor.js';
import { watermarkBytes, type ThinpPolicy } from '../../storage/thinp/sizing.js';
import { MiB, roundUp } from '../../storage/types.js';
import { BaseRoom, type BaseRoomDeps } from './base-room.js';
import type { Vm } from '../vm.js';
import { api } from '../libvirt-errors.js';
import { layerName, liveDiskChain, type LiveDiskChain, type LiveLayer } from './live-chain.js';
import type { MergeJob } from './job.js';

/** The storage a merge uses: the pool's domains, and thin extension through the SPM (the mailbox when this host is not the SPM). */
export interface MergeStorage {
  readonly connected: unknown;
  domain(sdUUID: string): Promise<StorageDomain>;
  requestExtend(sdUUID: string, volUUID: string, sizeMiB: number): Promise<unknown>;
  refreshVolume(sdUUID: string, volUUID: string): Promise<number>;
}

export interface MergeStepDeps {
  domain: (vm: Vm) => Promise<Domain>;
  storage: MergeStorage;
  monitor: { add(d: ChunkedDrive): void; remove(vmId: string, target: string): void } & BaseRoomDeps['monitor'];
  qemuImg: QemuImg;
  /** The thin-provisioning policy: the base's headroom and its extensions during the commit. */
  policy: ThinpPolicy;
  pollMs: number;
  pivotTimeoutMs: number;
  timeoutSec: number;
  /** Saves the job (VM metadata) and tells the engine. */
  persist: (vm: Vm, job: MergeJob) => Promise<void>;
  /** Resolves at libvirt's next block-job event for the disk, or after ms. */
  wake: (vmId: string, target: string, ms: number) => Promise<number | undefined>;
  log: Logger;
}

/** Retries of a commit that libvirt ended without taking the top out of the chain. */
const MAX_ATTEMPTS = 3;

export class MergeSteps {
  /** Commit attempts per job in this process (a restart starts counting again: it is a retry too). */
  private readonly attempts = new Map<string, number>();
  private readonly room: BaseRoom;

  constructor(private readonly d: MergeStepDeps) {
    this.room = new BaseRoom({
      requestExtend: (sd, vol, size) => d.storage.requestExtend(sd, vol, size),
      refreshVolume: (sd, vol) => d.storage.refreshVolume(sd, vol),
      monitor: d.monitor, policy: d.policy, log: d.log,
    });
  }

  async chain(vm: Vm, dom: Domain, target: string): Promise<LiveDiskChain> {
    const chain = liveDiskChain(await api(() => dom.xml(), vm.id), target);
    if (!chain) throw new MergeError(`VM ${vm.id} has no disk ${target} any more`);
    return chain;
  }

  /**
   * Block COW base: extended (through the SPM) to what `qemu-img measure`
   * says a qcow2 holding the top over the base needs; not top + base + chunk
   * (vdsm#134). An active merge gets the thin watermark more, for what the
   * guest writes during the commit (VDSM adds a chunk); anything past that is
   * seen while the commit runs (BaseRoom). A raw base must already hold the
   * top's capacity.
   */
  async extend(vm: Vm, job: MergeJob): Promise<void> {
    const sd = await this.d.storage.domain(job.domainID);
    if (sd.type === 'block') {
      const [base, top] = await Promise.all([sd.getVolumeInfo(job.imageID, job.baseVolUUID), sd.getVolumeInfo(job.imageID, job.topVolUUID)]);
      if (base.format === 'COW') {
        const required = await this.d.qemuImg.measureCommit(
          { path: sd.volumePath(job.imageID, job.topVolUUID), block: true },
          { path: sd.volumePath(job.imageID, job.baseVolUUID), block: true, format: 'qcow2' });
        const headroom = job.active ? watermarkBytes(this.d.policy) : 0;
        const wanted = roundUp(required + headroom, MiB);
        const now = (await sd.getVolumeSize(job.imageID, job.baseVolUUID)).truesize;
        job.measuredBytes = required;
        let seen = now;
        if (now < wanted) {
          await this.d.storage.requestExtend(job.domainID, job.baseVolUUID, wanted / MiB);
          seen = await this.d.storage.refreshVolume(job.domainID, job.baseVolUUID);
          if (seen < wanted) throw new MergeError(`base ${job.baseVolUUID} is ${seen} bytes after its extension, ${wanted} wanted`);
        }
        job.extendedToMiB = seen / MiB;
        this.d.log.info('merge base extended to its measure', { vm: vm.id, job: job.id, measuredBytes: required, headroomBytes: headroom, fromMiB: now / MiB, toMiB: job.extendedToMiB });
      } else if (base.capacity < top.capacity) {
        throw new MergeError(`raw base ${job.baseVolUUID} (${base.capacity} bytes) is smaller than the top (${top.capacity})`);
      }
    }
    job.phase = 'commit';
    await this.d.persist(vm, job);
  }

  /**
   * Starts libvirt's commit if it has none for the disk and the top is still
   * in the chain; follows it. Ends with the job in 'pivot' (an active commit
   * caught up), 'cleanup' (top out of the chain), or still 'commit' after a
   * job that ended without the top leaving (the caller loops: a retry).
   */
  async commit(vm: Vm, job: MergeJob): Promise<void> {
    const dom = await this.d.domain(vm);
    const info = await api(() => blockJobInfo(dom, job.target), vm.id);
    const chain = await this.chain(vm, dom, job.target);
    const top = chain.layers.findIndex((l) => l.volUUID === job.topVolUUID);
    if (!info) {
      if (top < 0) {
        job.phase = 'cleanup';
        return this.d.persist(vm, job);
      }
      const n = (this.attempts.get(job.id) ?? 0) + 1;
      if (n > MAX_ATTEMPTS) throw new MergeError(`libvirt's commit of ${job.topVolUUID} ended ${MAX_ATTEMPTS} times without taking it out of the chain`);
      this.attempts.set(job.id, n);
      const base = chain.layers[top + 1];
      if (!base || base.volUUID !== job.baseVolUUID) throw new MergeError(`${job.baseVolUUID} is not below ${job.topVolUUID} in the running chain`);
      job.ready = false;
      if (n > 1) {
        // A commit that ended early may have run the base out of room (libvirt fails the job, the guest goes on): room first.
        const b = await this.watchedBase(vm, job, dom);
        if (b) await this.room.ensure(job, dom, b);
      }
      await api(() => blockCommit(dom, job.target, {
        base: layerName(job.target, base), top: job.active ? null : layerName(job.target, chain.layers[top]!),
        active: job.active, bandwidthMiBs: job.bandwidth,
      }), vm.id);
      this.d.log.info('block commit started', { vm: vm.id, job: job.id, target: job.target, active: job.active, attempt: n, bandwidthMiBs: job.bandwidth });
    }
    await this.follow(vm, job, dom);
  }

  /** Follows libvirt's job until it is gone, or (active) ready for its pivot; a block COW base is watched meanwhile. */
  private async follow(vm: Vm, job: MergeJob, dom: Domain): Promise<void> {
    const base = await this.watchedBase(vm, job, dom);
    try {
      await this.followJob(vm, job, dom, base);
    } finally {
      if (base) await this.room.release(job, dom, base);
    }
  }

  /** The base's live layer when it is a qcow2 on block storage (the only kind that can run out of room). */
  private async watchedBase(vm: Vm, job: MergeJob, dom: Domain): Promise<LiveLayer | undefined> {
    const sd = await this.d.storage.domain(job.domainID);
    if (sd.type !== 'block' || (await sd.getVolumeInfo(job.imageID, job.baseVolUUID)).format !== 'COW') return undefined;
    return (await this.chain(vm, dom, job.target)).layers.find((l) => l.volUUID === job.baseVolUUID);
  }

  private async followJob(vm: Vm, job: MergeJob, dom: Domain, base: LiveLayer | undefined): Promise<void> {
    const deadline = job.startedAt + this.d.timeoutSec * 1000;
    let event: number | undefined;
    while (Date.now() < deadline) {
      const info = await api(() => blockJobInfo(dom, job.target), vm.id);
      if (!info) return; // ended: the caller looks at the chain
      // An extension that fails is retried at the next wake; a base that runs out fails libvirt's job, and the commit is retried.
      if (base) await this.room.ensure(job, dom, base).catch((e: unknown) => this.d.log.warn('merge base room check failed', { vm: vm.id, job: job.id, err: e }));
      const [cur, end] = [toNumber(info.cur), toNumber(info.end)];
      const progress = end > 0 ? Math.min(99, Math.floor((cur * 100) / end)) : 0;
      if (job.active && end > 0 && cur === end && (event === enums.ConnectDomainEventBlockJobStatus.READY || (await this.chain(vm, dom, job.target)).mirror?.ready)) {
        // libvirt's READY and <mirror ready='yes'>: only then may it pivot (bz 1442266).
        job.ready = true;
        job.progress = 99;
        job.phase = 'pivot';
        return this.d.persist(vm, job);
      }
      if (progress !== job.progress) {
        job.progress = progress;
        await this.d.persist(vm, job);
      }
      event = await this.d.wake(vm.id, job.target, this.d.pollMs);
    }
    await api(() => blockJobAbort(dom, job.target, { pivot: false, timeoutMs: this.d.pivotTimeoutMs }), vm.id).catch(() => {});
    throw new MergeError(`merge did not finish within ${this.d.timeoutSec} s; aborted (the chain is unchanged)`);
  }

  /**
   * Active commit: the top is marked ILLEGAL, then libvirt pivots the disk to
   * the base. A pivot that did not happen leaves the top LEGAL again; with
   * libvirt's job gone too, the commit is retried (phase back to 'commit').
   */
  async pivot(vm: Vm, job: MergeJob): Promise<void> {
    const dom = await this.d.domain(vm);
    const sd = await this.d.storage.domain(job.domainID);
    const inChain = async () => (await this.chain(vm, dom, job.target)).layers.some((l) => l.volUUID === job.topVolUUID);
    if (!(await inChain())) {
      job.phase = 'cleanup';
      return this.d.persist(vm, job);
    }
    if (!(await api(() => blockJobInfo(dom, job.target), vm.id))) {
      await sd.setVolumeLegality(job.imageID, job.topVolUUID, 'LEGAL');
      this.d.log.warn('pivot not done and libvirt has no job for the disk; retrying the commit', { vm: vm.id, job: job.id });
      job.phase = 'commit';
      job.ready = false;
      return this.d.persist(vm, job);
    }
    await sd.setVolumeLegality(job.imageID, job.topVolUUID, 'ILLEGAL');
    try {
      await api(() => blockJobAbort(dom, job.target, { pivot: true, timeoutMs: this.d.pivotTimeoutMs }), vm.id);
    } catch (e) {
      if (await inChain()) {
        await sd.setVolumeLegality(job.imageID, job.topVolUUID, 'LEGAL');
        throw new MergeError(`pivot to ${job.baseVolUUID} failed: ${(e as Error).message}`, { cause: e });
      }
    }
    if (await inChain()) {
      await sd.setVolumeLegality(job.imageID, job.topVolUUID, 'LEGAL');
      throw new MergeError(`pivot to ${job.baseVolUUID} answered, but ${job.topVolUUID} is still in the running chain`);
    }
    this.d.log.info('active commit pivoted', { vm: vm.id, job: job.id, base: job.baseVolUUID });
    job.phase = 'cleanup';
    await this.d.persist(vm, job);
  }

  /**
   * The top is out of libvirt's chain: it is marked ILLEGAL; an internal
   * merge gives its child the base as parent; an active one makes the base
   * the drive's volume (VM metadata, drive monitor).
   */
  async cleanup(vm: Vm, job: MergeJob): Promise<void> {
    const sd = await this.d.storage.domain(job.domainID);
    await sd.setVolumeLegality(job.imageID, job.topVolUUID, 'ILLEGAL');
    if (job.active) {
      const base = await sd.getVolumeInfo(job.imageID, job.baseVolUUID);
      const path = sd.volumePath(job.imageID, job.baseVolUUID);
      for (const dev of vm.meta.devices) if (dev.name === job.target && dev.storage?.imageID === job.imageID) dev.storage.volumeID = job.baseVolUUID;
      for (const disk of vm.disks) {
        if (disk.name !== job.target || disk.storage?.imageID !== job.imageID) continue;
        disk.storage = { ...disk.storage, volumeID: job.baseVolUUID };
        if (disk.path) disk.path = path;
      }
      if (sd.type === 'block' && base.format === 'COW') this.d.monitor.add({ vmId: vm.id, target: job.target, domainId: job.domainID, volumeId: job.baseVolUUID });
      else this.d.monitor.remove(vm.id, job.target);
    } else {
      const children = (await sd.listVolumes()).filter((r) => r.imgUUID === job.imageID && r.parentUUID === job.topVolUUID);
      for (const c of children) await sd.setVolumeParent(job.imageID, c.volUUID, job.baseVolUUID);
    }
    // Out of the VM's chain: not active here any more, so the SPM can delete it whichever host it is.
    await sd.deactivateVolume(job.imageID, job.topVolUUID).catch((e: unknown) => this.d.log.warn('removed volume not deactivated', { vm: vm.id, job: job.id, volume: job.topVolUUID, err: e }));
    job.phase = 'done';
    job.progress = 100;
    job.removedVolUUID = job.topVolUUID;
    job.endedAt = Date.now();
    this.attempts.delete(job.id);
    this.d.log.info('merge done', { vm: vm.id, job: job.id, removed: job.topVolUUID, base: job.baseVolUUID, active: job.active, ms: job.endedAt - job.startedAt });
    await this.d.persist(vm, job);
  }
}
