// After an agent restart, a VM found running has storage disks known only by
// their ids (its metadata): not prepared on this host by this agent, not
// watched by the drive monitor. Level-triggered, as VDSM recovers: whenever
// the VMs are reconciled with libvirt and the storage pool is connected (the
// engine connects it again after a restart), each such VM's disks are
// prepared again and its thin drives watched again (VmDisks.recovered), in the
// VM's own queue. A failed attempt is tried again at the next tick.
import type { Logger } from '../log.js';
import { PhaseTimer } from '../log.js';
import type { VmDisks } from '../storage/vm-disks.js';
import type { VmManager } from './manager.js';
import type { Vm } from './vm.js';
import type { VmStatusT } from './status.js';
import { parseDomainDevices } from './domain-xml.js';
import { api } from './libvirt-errors.js';

/** The storage pool as the recovery needs it: which pool is connected, and a signal when one gets connected. */
export interface ConnectedPool {
  readonly connected: { spUUID: string } | undefined;
  on(event: 'connected', listener: () => void): unknown;
  off(event: 'connected', listener: () => void): unknown;
}

export interface DiskRecoveryOptions {
  vms: VmManager;
  disks: VmDisks;
  pool: ConnectedPool;
  log: Logger;
  /** The level check's period (also the retry of a failed attempt); default 5 s, as VDSM's wait for the pool. */
  intervalMs?: number;
}

/** A VM whose disks are in use by a domain (not launching, not gone, not in a libvirt outage). */
const RUNNING: ReadonlySet<VmStatusT> = new Set<VmStatusT>(['Up', 'Paused', 'Powering up', 'Powering down']);

export class DiskRecovery {
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<string>();
  private readonly kick = (): void => { void this.reconcile(); };

  constructor(private readonly o: DiskRecoveryOptions) {}

  start(): void {
    this.o.vms.on('recovered', this.kick);
    this.o.pool.on('connected', this.kick);
    this.timer = setInterval(this.kick, this.o.intervalMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.o.vms.off('recovered', this.kick);
    this.o.pool.off('connected', this.kick);
  }

  /** Recovers every VM that needs it and can have it now; resolves when these attempts are done. */
  async reconcile(): Promise<void> {
    const pool = this.o.pool.connected;
    if (this.o.vms.recovering || !pool) return;
    const due = this.o.vms.list().filter((vm) => vm.storagePending && !vm.external && RUNNING.has(vm.status) && !this.inFlight.has(vm.id)
      && vm.disks.every((d) => !d.storage || d.storage.poolID === pool.spUUID));
    await Promise.all(due.map((vm) => this.recover(vm)));
  }

  private async recover(vm: Vm): Promise<void> {
    this.inFlight.add(vm.id);
    try {
      await vm.queue.run(async () => {
        // Destroyed, or recovered, while this waited for its turn.
        if (!vm.storagePending || this.o.vms.vms.get(vm.id) !== vm || !RUNNING.has(vm.status)) return;
        const timer = new PhaseTimer();
        const dom = await this.o.vms.domain(vm);
        const live = parseDomainDevices(await api(() => dom.xml(), vm.id)).disks;
        timer.mark('xml');
        const pausedOnEnospc = vm.status === 'Paused' && vm.pauseCode === 'ENOSPC';
        vm.disks = await this.o.disks.recovered(vm.id, vm.disks, live, { pausedOnEnospc });
        vm.storagePending = false;
        timer.mark('prepare');
        this.o.log.info('VM disks recovered', {
          vm: vm.id, status: vm.status, ...(vm.pauseCode ? { pauseCode: vm.pauseCode } : {}),
          disks: vm.disks.filter((d) => d.storage).map((d) => ({ name: d.name, image: d.storage!.imageID, path: d.path })), ...timer.fields(),
        });
      });
    } catch (e) {
      this.o.log.warn('VM disks not recovered yet; trying again', { vm: vm.id, err: e, retryInMs: this.o.intervalMs ?? 5000 });
    } finally {
      this.inFlight.delete(vm.id);
    }
  }
}
