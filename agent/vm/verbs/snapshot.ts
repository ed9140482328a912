// VM.snapshot: a live external snapshot onto new leaves made beforehand by the
// SPM (VDSM's flow): the leaves are prepared on this host, the job goes into
// the VM's metadata, the drives leave the thin-provisioning monitor, the guest
// is frozen (disk-only), libvirt switches every drive at once, the guest is
// thawed whatever happened, and the metadata and the monitor follow the new
// leaves — or, when libvirt's live XML shows the old ones, stay as they were.
import { randomUUID } from 'node:crypto';
import { PhaseTimer, type Logger } from '../../log.js';
import { enums } from '../../libvirt/index.js';
import { InvalidParamsError, SnapshotError, WrongStateError } from '../../../api/errors.js';
import type { ParamsOf, ResultOf } from '../../../api/schema.js';
import type { Vm } from '../vm.js';
import type { SnapshotJobMeta } from '../metadata.js';
import { parseDomainDevices } from '../domain-xml.js';
import { api } from '../libvirt-errors.js';
import { freezeGuest, thawGuest, type FreezeOutcome } from '../guest-freeze.js';
import { followNewLeaves, snapshotXml, switchedDrives } from '../snapshot-job.js';
import { VmVerbs } from './base.js';

type Params = ParamsOf<'VM.snapshot'>;
type Result = ResultOf<'VM.snapshot'>;
type StateRef = NonNullable<Params['snapMemory']>;

const F = enums.DomainSnapshotCreateFlags;
/** VDSM's flags, plus ATOMIC: every drive switches or none does. */
export const DISK_ONLY_FLAGS = F.DISK_ONLY | F.REUSE_EXT | F.NO_METADATA | F.ATOMIC;
export const MEMORY_FLAGS = F.REUSE_EXT | F.NO_METADATA | F.ATOMIC;
/** libvirt's snapshot call: a disk-only switch takes well under a second; a memory one writes all of the RAM. */
const DISK_ONLY_CALL_MS = 60_000;
const MEMORY_CALL_MS = 30 * 60_000;
const DEFAULT_FREEZE_MS = 30_000;

export class VmSnapshots extends VmVerbs {
  snapshot(p: Params): Promise<Result> {
    const vm = this.m.managed(p.vmID);
    return vm.queue.run(() => this.run(vm, p));
  }

  private async run(vm: Vm, p: Params): Promise<Result> {
    if (vm.status !== 'Up' && vm.status !== 'Paused') throw new WrongStateError(`snapshot is not allowed while the VM is ${vm.status}`);
    if (vm.meta.snapshotJob) throw new WrongStateError(`snapshot ${vm.meta.snapshotJob.id} of this VM is still being settled`);
    const disks = this.o.disks;
    if (!disks) throw new InvalidParamsError('snapshots need a connected storage pool', { data: { field: 'params.snapDrives' } });
    const job: SnapshotJobMeta = { id: p.jobUUID ?? randomUUID(), startTime: Date.now(), memory: p.snapMemory !== undefined, drives: [] };
    const log = this.o.log.child({ vm: vm.id, op: 'snapshot', job: job.id });
    const timer = new PhaseTimer();
    const targets = this.drivesOf(vm, p);
    const types: Record<string, 'file' | 'block'> = {};
    for (const [i, d] of p.snapDrives.entries()) {
      // Validated before anything is activated; a missing or foreign leaf is the caller's (201, -32602).
      const leaf = await disks.prepareLeaf(d, d.baseVolumeID);
      job.drives.push({ name: targets[i]!, domainID: d.domainID, imageID: d.imageID, base: d.baseVolumeID, leaf: d.volumeID, path: leaf.path });
      types[targets[i]!] = leaf.type;
    }
    const memoryPath = p.snapMemory ? await this.memoryPath(p.snapMemory) : undefined;
    timer.mark('prepare');
    const dom = await this.m.domain(vm);
    const live = parseDomainDevices(await api(() => dom.xml(), vm.id)).disks;
    const xml = snapshotXml(job, live, types, memoryPath);
    vm.meta.snapshotJob = job;
    await this.saveMetadata(vm).catch(async (e) => { delete vm.meta.snapshotJob; await this.releaseMemory(vm, p.snapMemory); throw e; });
    timer.mark('metadata');
    // The monitor must not extend (or set thresholds on) a drive while libvirt swaps its top node.
    for (const d of job.drives) disks.unwatch(vm.id, d.name);

    const warnings: string[] = [];
    let freeze: FreezeOutcome = { frozen: false, count: 0, ms: 0 };
    let snapshotMs = 0;
    let failure: unknown;
    try {
      // A memory snapshot pauses the guest for its RAM; a disk-only one freezes it for the switch.
      if (!memoryPath) {
        freeze = await freezeGuest(dom, p.freezeTimeoutMs ?? this.o.timeouts.snapshotFreezeMs ?? DEFAULT_FREEZE_MS, log);
        if (freeze.warning) warnings.push(freeze.warning);
        timer.mark('freeze');
      }
      const t0 = performance.now();
      try {
        await api(() => dom.snapshotCreateXML(xml, { flags: memoryPath ? MEMORY_FLAGS : DISK_ONLY_FLAGS, timeoutMs: memoryPath ? MEMORY_CALL_MS : DISK_ONLY_CALL_MS }), vm.id);
      } catch (e) {
        failure = e;
      }
      snapshotMs = Math.round(performance.now() - t0);
      timer.mark('snapshot');
    } finally {
      // Always: a freeze that failed or timed out may still have landed in the guest.
      const thawWarning = await thawGuest(dom, freeze.frozen || freeze.uncertain === true, log);
      if (thawWarning) warnings.push(thawWarning);
      timer.mark('thaw');
    }
    return this.settle(vm, job, types, { failure, freeze, snapshotMs, warnings, memory: p.snapMemory, timer, log });
  }

  /** Ends the job by libvirt's view: drives it shows on their new leaves are followed, the others stay. */
  private async settle(vm: Vm, job: SnapshotJobMeta, types: Record<string, 'file' | 'block'>, o: {
    failure: unknown; freeze: FreezeOutcome; snapshotMs: number; warnings: string[]; memory: StateRef | undefined; timer: PhaseTimer; log: Logger;
  }): Promise<Result> {
    const dom = await this.m.domain(vm);
    const switched = switchedDrives(job, await api(() => dom.xml(), vm.id));
    const moved = followNewLeaves(vm, switched, types);
    await this.saveMetadata(vm);
    // Back under the monitor: the drives that moved on their new leaf, the others on their old one.
    this.o.disks!.launched(vm.id, vm.disks.filter((d) => job.drives.some((j) => j.name === d.name)));
    await this.releaseMemory(vm, o.memory);
    o.timer.mark('settle');
    const fields = { frozen: o.freeze.frozen, freezeMs: o.freeze.ms, snapshotMs: o.snapshotMs, memory: job.memory, drives: job.drives.map((d) => ({ name: d.name, base: d.base, leaf: d.leaf })), ...o.timer.fields() };
    if (switched.length !== job.drives.length) {
      // ATOMIC: libvirt switched none of them (a partial switch would be followed for the ones it did).
      o.log.warn('snapshot failed; the drives stay on their old leaves', { err: o.failure, switched: switched.map((d) => d.name), ...fields });
      const why = o.failure instanceof Error ? o.failure.message : 'libvirt did not switch the drives';
      throw new SnapshotError('libvirt', why, { cause: o.failure, data: { switched: moved.map((d) => d.name) } });
    }
    if (o.failure) o.warnings.push(`the snapshot call failed but libvirt shows every drive on its new leaf: ${(o.failure as Error).message}`);
    o.log.info('snapshot taken', fields);
    return { jobUUID: job.id, frozen: o.freeze.frozen, freezeMs: o.freeze.ms, snapshotMs: o.snapshotMs, memory: job.memory, warnings: o.warnings };
  }

  /** Each requested drive's target: a drive of this VM on that image, whose leaf is the given base. */
  private drivesOf(vm: Vm, p: Params): string[] {
    if (vm.storagePending) throw new WrongStateError("the VM's disks are not recovered on this host yet (agent restart); retry shortly");
    const seen = new Set<string>();
    return p.snapDrives.map((d, i) => {
      const field = `params.snapDrives[${i}]`;
      const disk = vm.disks.find((x) => x.storage?.domainID === d.domainID && x.storage.imageID === d.imageID);
      if (!disk) throw new InvalidParamsError(`${field}: the VM has no drive of image ${d.imageID} on domain ${d.domainID}`, { data: { field } });
      if (seen.has(disk.name)) throw new InvalidParamsError(`${field}: drive ${disk.name} is named twice`, { data: { field } });
      seen.add(disk.name);
      if (disk.storage!.volumeID !== d.baseVolumeID) {
        throw new InvalidParamsError(`${field}: drive ${disk.name} runs on volume ${disk.storage!.volumeID}, not baseVolumeID ${d.baseVolumeID}`, { data: { field: `${field}.baseVolumeID` } });
      }
      if (d.volumeID === d.baseVolumeID) throw new InvalidParamsError(`${field}: volumeID must be a new leaf, not the base`, { data: { field: `${field}.volumeID` } });
      return disk.name;
    });
  }

  private async memoryPath(ref: StateRef): Promise<string> {
    if ('path' in ref) return ref.path;
    return this.o.disks!.prepareState(ref);
  }

  private async releaseMemory(vm: Vm, ref: StateRef | undefined): Promise<void> {
    if (ref && !('path' in ref)) await this.o.disks?.releaseState(vm.id, ref);
  }
}
