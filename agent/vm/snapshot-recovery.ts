// An agent restarted in the middle of a VM.snapshot finds the job in the VM's
// metadata (libvirt kept it). Whenever the VMs are reconciled with libvirt,
// each such VM is settled in its own queue: the guest is thawed (it may have
// been left frozen), then libvirt's live XML says which drives run on their
// new leaves: those are followed (metadata, and the disk recovery prepares and
// watches the new leaf), the others stay on their old leaves; the job is cleared.
import type { Logger } from '../log.js';
import { enums } from '../libvirt/index.js';
import type { VmManager } from './manager.js';
import type { Vm } from './vm.js';
import type { VmStatusT } from './status.js';
import { metadataElement, METADATA_NS, METADATA_PREFIX } from './metadata.js';
import { api } from './libvirt-errors.js';
import { thawGuest } from './guest-freeze.js';
import { followNewLeaves, switchedDrives } from './snapshot-job.js';

const RUNNING: ReadonlySet<VmStatusT> = new Set<VmStatusT>(['Up', 'Paused', 'Powering up', 'Powering down']);

export class SnapshotRecovery {
  private readonly inFlight = new Set<string>();
  private readonly kick = (): void => { void this.reconcile(); };

  constructor(private readonly o: { vms: VmManager; log: Logger }) {}

  /** Before the disk recovery starts: a VM's snapshot is settled before its disks are prepared again. */
  start(): void {
    this.o.vms.on('recovered', this.kick);
  }

  stop(): void {
    this.o.vms.off('recovered', this.kick);
  }

  /** Settles every VM with a snapshot job (queued synchronously, so ahead of what the same event queues later). */
  async reconcile(): Promise<void> {
    const due = this.o.vms.list().filter((vm) => !vm.external && vm.meta.snapshotJob && RUNNING.has(vm.status) && !this.inFlight.has(vm.id));
    await Promise.all(due.map((vm) => this.settle(vm)));
  }

  private async settle(vm: Vm): Promise<void> {
    this.inFlight.add(vm.id);
    try {
      await vm.queue.run(async () => {
        const job = vm.meta.snapshotJob;
        if (!job || this.o.vms.vms.get(vm.id) !== vm) return;
        const log = this.o.log.child({ vm: vm.id, op: 'snapshot-recovery', job: job.id });
        const dom = await this.o.vms.domain(vm);
        // Whether the dead agent's freeze landed is unknown: thaw as if it did.
        const thawWarning = await thawGuest(dom, !job.memory, log);
        const switched = switchedDrives(job, await api(() => dom.xml(), vm.id));
        followNewLeaves(vm, switched, {});
        await api(() => dom.setMetadata(enums.DomainMetadataType.ELEMENT, metadataElement(vm.meta), METADATA_PREFIX, METADATA_NS, enums.DomainModificationImpact.LIVE), vm.id);
        // The disk recovery prepares the new leaves on this host and puts them under the drive monitor.
        if (switched.length) vm.storagePending = true;
        const outcome = switched.length === job.drives.length ? 'finished' : switched.length ? 'partly finished' : 'rolled back';
        log.info(`snapshot job found after a restart: ${outcome}`, { outcome, switched: switched.map((d) => ({ name: d.name, leaf: d.leaf })), ...(thawWarning ? { thawWarning } : {}) });
      });
    } catch (e) {
      this.o.log.warn('snapshot job not settled yet; trying again at the next reconciliation', { vm: vm.id, err: e });
    } finally {
      this.inFlight.delete(vm.id);
    }
  }
}
