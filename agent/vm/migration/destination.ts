// The destination side: VM.migrationCreate prepares the disks as for a start,
// runs before_vm_migrate_destination and registers the VM as Migration
// Destination; libvirt (driven by the source) brings the domain in. A watcher
// then follows it to Up (after_vm_migrate_destination, drive monitor) or
// cleans up: the domain, the VM and its disks, the incoming slot.
import { PhaseTimer } from '../../log.js';
import { enums, LibvirtError } from '../../libvirt/index.js';
import { InvalidParamsError, MigrateLimitError, RecoveryError, ShuttingDownError, VmExistsError } from '../../../api/errors.js';
import type { ParamsOf, ResultOf } from '../../../api/schema.js';
import { Vm } from '../vm.js';
import { ExitReason } from '../status.js';
import { metadataFromDomainXml } from '../metadata.js';
import { parseDomainDevices, sameUuid } from '../domain-xml.js';
import { parseXml } from '../xml.js';
import type { DiskSpecT } from '../domain-xml.js';
import { pause, type MigrationContext } from './context.js';

export class IncomingMigrations {
  /** vmIDs between their checks and registration, so a second call gets 4. */
  private readonly creating = new Set<string>();

  constructor(private readonly c: MigrationContext) {}

  async create(p: ParamsOf<'VM.migrationCreate'>): Promise<ResultOf<'VM.migrationCreate'>> {
    const m = this.c.manager;
    if (!this.c.accepting()) throw new ShuttingDownError();
    if (m.recovering) throw new RecoveryError();
    m.requireLibvirt();
    if (m.vms.has(p.vmID) || this.creating.has(p.vmID)) throw new VmExistsError(p.vmID);
    const limit = p.incomingLimit ?? this.c.settings.maxIncoming;
    if (!this.c.incoming.tryAcquire(limit)) throw new MigrateLimitError(limit);
    this.creating.add(p.vmID);
    try {
      const vm = await this.register(p);
      void this.follow(vm);
      const disks = vm.disks.flatMap((d) => (d.storage && d.path ? [{ name: d.name, path: d.path }] : []));
      return { migrationPort: 0, params: { vmId: vm.id, status: vm.status, ...(disks.length ? { disks } : {}) } };
    } catch (e) {
      this.c.incoming.release();
      throw e;
    } finally {
      this.creating.delete(p.vmID);
    }
  }

  /** An incoming migration found running after an agent restart (recovery.ts): followed and cleaned up like one prepared here. */
  adopt(vm: Vm): void {
    this.c.incoming.tryAcquire(Number.MAX_SAFE_INTEGER); // it runs already: counted, never refused
    this.c.manager.setStatus(vm, 'Migration Destination');
    void this.follow(vm);
  }

  private async register(p: ParamsOf<'VM.migrationCreate'>): Promise<Vm> {
    const timer = new PhaseTimer();
    const xml = p.params.xml;
    let uuid: string;
    try {
      uuid = parseXml(xml).element('uuid')?.text() ?? '';
    } catch (e) {
      throw new InvalidParamsError(`params.xml is not well-formed: ${(e as Error).message}`, { cause: e, data: { field: 'params.params.xml' } });
    }
    if (!sameUuid(uuid, p.vmID)) throw new InvalidParamsError('params.xml: the domain uuid is not vmID', { data: { field: 'params.params.xml' } });
    const meta = metadataFromDomainXml(xml);
    if (!meta) throw new InvalidParamsError('params.xml carries no Hostvisor metadata: only VMs this platform runs migrate', { data: { field: 'params.params.xml' } });
    // Disks exactly as for a start: the storage ids in the metadata, prepared on this host (all or none).
    const wanted: DiskSpecT[] = meta.devices.flatMap((d) => (d.devtype === 'disk' && d.storage ? [{ name: d.name, storage: { ...d.storage } }] : []));
    let disks: DiskSpecT[] = [];
    let release = async (): Promise<void> => {};
    if (wanted.length) {
      if (!this.c.disks) throw new InvalidParamsError('the VM has storage disks and this agent has no storage pool connected');
      const prepared = await this.c.disks.prepareAll(p.vmID, wanted, meta.customProperties);
      disks = prepared.disks;
      release = prepared.release;
    }
    timer.mark('disks');
    const vm = new Vm(p.vmID, parseDomainDevices(xml).name, false);
    vm.meta = meta;
    vm.disks = disks;
    try {
      if (this.c.hooks.has('before_vm_migrate_destination')) {
        await this.c.hooks.runRaising('before_vm_migrate_destination', { data: xml, vmId: vm.id, customProperties: meta.customProperties });
      }
    } catch (e) {
      await release();
      throw e;
    }
    timer.mark('hooks');
    this.c.manager.vms.set(vm.id, vm);
    this.c.manager.setStatus(vm, 'Migration Destination');
    this.c.log.info('incoming migration prepared', { vm: vm.id, src: p.params.srcHost, disks: disks.length, ...timer.fields() });
    return vm;
  }

  /** Follows the incoming domain to Up, or cleans up once it failed or never came. */
  private async follow(vm: Vm): Promise<void> {
    const s = this.c.settings;
    const log = this.c.log.child({ vm: vm.id, op: 'migration-destination' });
    const t0 = performance.now();
    const ended = new AbortController();
    // A source that died before starting libvirt's migration leaves nothing to wait for.
    const startCheck = (async () => {
      await pause(s.incomingStartTimeoutMs, ended.signal);
      if (ended.signal.aborted || vm.status !== 'Migration Destination') return;
      if (!(await this.domainExists(vm.id))) {
        log.warn('no incoming domain arrived in time; cleaning up', { waitedMs: s.incomingStartTimeoutMs });
        this.c.manager.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.GENERIC_ERROR, exitMessage: 'incoming migration never started' } });
      }
    })();
    const up = await this.arrival(vm, s.destinationTimeoutMs);
    ended.abort();
    await startCheck;
    try {
      if (up && vm.status === 'Up') {
        await this.arrived(vm);
        log.info('incoming migration arrived', { ms: Math.round(performance.now() - t0) });
        return;
      }
      log.warn('incoming migration failed; cleaning up', { status: vm.status, timedOut: !up, exit: vm.exit });
      await this.cleanup(vm);
    } catch (e) {
      log.warn('after the incoming migration', { err: e });
    } finally {
      this.c.incoming.release();
    }
  }

  /**
   * Waits for the VM to leave Migration Destination (the lifecycle events move it). Level-triggered
   * backstop on each monitor interval: a domain libvirt runs here outside post-copy has arrived, even
   * if its RESUMED event (the end of a post-copy) was missed. True when it left before the timeout.
   */
  private async arrival(vm: Vm, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      if (await vm.waitFor((st) => st !== 'Migration Destination', Math.min(left, this.c.settings.monitorIntervalMs))) return true;
      const st = await this.c.manager.conn().lookupByUUID(vm.id).then((d) => d.state()).catch(() => undefined);
      if (vm.status === 'Migration Destination' && st && isArrived(st)) this.c.manager.setStatus(vm, 'Up');
    }
  }

  /** The VM runs here now: transient like every VM the agent starts, its drives watched, after-hooks run. */
  private async arrived(vm: Vm): Promise<void> {
    const dom = await this.c.manager.domain(vm);
    // PERSIST_DEST defined it; the agent's VMs are transient (state lives in the running domain).
    await dom.undefine().catch((e: unknown) => this.c.log.warn('could not make the migrated domain transient', { vm: vm.id, err: e }));
    vm.domId = dom.id >= 0 ? dom.id : undefined;
    vm.hasGuestAgent = parseDomainDevices(await dom.xml()).hasGuestAgentChannel;
    // A VM adopted after a restart has its disks by id only: the disk recovery prepares and watches them.
    if (!vm.storagePending) this.c.disks?.launched(vm.id, vm.disks);
    if (this.c.hooks.has('after_vm_migrate_destination')) {
      await this.c.hooks.run('after_vm_migrate_destination', { data: await dom.xml(), vmId: vm.id, customProperties: vm.meta.customProperties })
        .catch((e: unknown) => this.c.log.warn('after_vm_migrate_destination hooks failed', { vm: vm.id, err: e }));
    }
  }

  /** Nothing of a failed incoming migration stays: no domain, no VM, no prepared image. */
  private async cleanup(vm: Vm): Promise<void> {
    const m = this.c.manager;
    if (m.vms.get(vm.id) !== vm) return; // VM.destroy (the source's cleanup) already took it
    const dom = await m.conn().lookupByUUID(vm.id).catch(() => undefined);
    if (dom) {
      await dom.destroy().catch((e: unknown) => this.c.log.debug('destroy of the failed incoming domain', { vm: vm.id, err: e }));
      // PERSIST_DEST defines it before the copy ends (a post-copy that failed here leaves that definition).
      await dom.undefine().catch((e: unknown) => {
        const transient = e instanceof LibvirtError && (e.code === enums.ErrorNumber.ERR_OPERATION_INVALID || e.code === enums.ErrorNumber.ERR_NO_DOMAIN);
        if (!transient) this.c.log.warn('could not undefine the failed incoming domain', { vm: vm.id, err: e });
      });
    }
    if (m.vms.get(vm.id) !== vm) return;
    if (vm.status !== 'Down') m.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.GENERIC_ERROR, exitMessage: 'incoming migration failed' } });
    m.forget(vm);
    await this.c.disks?.released(vm.id, vm.disks);
  }

  private async domainExists(vmId: string): Promise<boolean> {
    try {
      await this.c.manager.conn().lookupByUUID(vmId);
      return true;
    } catch (e) {
      if (e instanceof LibvirtError && e.code === enums.ErrorNumber.ERR_NO_DOMAIN) return false;
      return true; // unknown is not gone: the destination timeout still bounds it
    }
  }
}

/** Running here and no longer in post-copy: the incoming migration has ended with the VM here. */
export function isArrived(st: { state: number; reason: number }): boolean {
  if (st.state === enums.DomainState.BLOCKED) return true;
  return st.state === enums.DomainState.RUNNING && st.reason !== enums.DomainRunningReason.POSTCOPY && st.reason !== enums.DomainRunningReason.POSTCOPY_FAILED;
}
