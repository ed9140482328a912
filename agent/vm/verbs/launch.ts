// VM.create: registers the VM, runs before_vm_start, and launches it in the
// background (WaitForLaunch -> Powering up -> Up, or Down with the reason).
import { PhaseTimer } from '../../log.js';
import { enums } from '../../libvirt/index.js';
import { HookError, InvalidParamsError, VmExistsError, ShuttingDownError, OperationTimeoutError } from '../../../api/errors.js';
import type { Logger } from '../../log.js';
import type { ParamsOf } from '../../../api/schema.js';
import { Vm } from '../vm.js';
import { ExitReason } from '../status.js';
import { emptyMetadata, metadataOfDomain, type VmMetadata } from '../metadata.js';
import { parseDomainDevices, parseEngineXml, prepareEngineXml, sameUuid, specToDomainXml } from '../domain-xml.js';
import { parseXml, XmlSyntaxError, type XmlElement } from '../xml.js';
import { api } from '../libvirt-errors.js';
import { hookError } from '../../hooks/runner.js';
import { VmVerbs } from './base.js';
import { VmHibernation, type StateVolumeRef } from './hibernate.js';

export class VmLaunch extends VmVerbs {
  private readonly hibernation = new VmHibernation(this.o);

  /**
   * Registers the VM as WaitForLaunch, runs before_vm_start (whose failure
   * fails the call with 78 and leaves nothing behind), then launches in the
   * background.
   */
  async create(p: ParamsOf<'VM.create'>): Promise<{ vmId: string; status: 'WaitForLaunch' }> {
    if (!this.o.accepting()) throw new ShuttingDownError();
    if (this.m.recovering) this.m.managed(p.vmID); // throws RecoveryError
    if (this.m.vms.has(p.vmID) || this.m.creating.has(p.vmID)) throw new VmExistsError(p.vmID);
    // Reserved before the first await; released once the VM is registered (vms.has covers it from then on) or the create failed.
    const created = this.createReserved(p);
    this.m.creating.set(p.vmID, created);
    try {
      return await created;
    } finally {
      this.m.creating.delete(p.vmID);
    }
  }

  private async createReserved(p: ParamsOf<'VM.create'>): Promise<{ vmId: string; status: 'WaitForLaunch' }> {
    this.m.requireLibvirt(); // refuse now rather than accept and fail the launch
    if ((p.xml === undefined) === (p.spec === undefined)) {
      throw new InvalidParamsError('params: exactly one of xml and spec is required', { data: { field: 'params.xml' } });
    }
    // Engine XML is checked (and refused) before anything is prepared for it.
    const engineDom = p.xml !== undefined ? parseEngineXml(p.vmID, p.xml) : undefined;
    const meta: VmMetadata = engineDom ? metadataOfDomain(engineDom) ?? emptyMetadata() : emptyMetadata();
    if (p.spec) {
      Object.assign(meta.customProperties, p.spec.customProperties ?? {});
      for (const d of p.spec.disks ?? []) meta.devices.push({ devtype: 'disk', name: d.name, ...(d.storage ? { storage: d.storage } : {}) });
    }
    meta.startTime = Date.now();
    meta.launchPaused = p.launchPaused ?? false;
    let spec = p.spec;
    // NICs first: a bad network must fail the call before any disk is prepared.
    if (spec?.nics?.length) {
      const nics = spec.nics;
      spec = { ...spec, nics: await Promise.all(nics.map((n, i) => this.resolveNic(n, `params.spec.nics[${i}]`))) };
    }
    if (spec?.disks?.some((d) => d.storage && !d.path)) {
      if (!this.o.disks) throw new InvalidParamsError('disks with storage ids need a connected storage pool', { data: { field: 'params.spec.disks' } });
      const prepared = await this.o.disks.prepareAll(p.vmID, spec.disks!, meta.customProperties); // all or none
      spec = { ...spec, disks: prepared.disks };
      try {
        return await this.register(p, spec, meta, engineDom);
      } catch (e) {
        // No VM took the disks (before_vm_start failed, bad XML...): their images go down again.
        await prepared.release();
        throw e;
      }
    }
    return this.register(p, spec, meta, engineDom);
  }

  /** Registers the VM as WaitForLaunch, runs before_vm_start, and launches in the background. */
  private async register(p: ParamsOf<'VM.create'>, spec: ParamsOf<'VM.create'>['spec'], meta: VmMetadata, engineDom: XmlElement | undefined): Promise<{ vmId: string; status: 'WaitForLaunch' }> {
    let xml = engineDom ? prepareEngineXml(p.vmID, engineDom, meta) : specToDomainXml(p.vmID, spec!, this.o.domainType(), meta, { displayListen: this.o.displayListen });
    const vm = new Vm(p.vmID, parseDomainDevices(xml).name, false);
    vm.meta = meta;
    // The launch takes its place in the VM's queue before the VM is visible:
    // a VM.destroy queues behind it (even one dispatched from inside the
    // WaitForLaunch event's send, which may pump a connection's queued
    // requests), so it destroys what the launch made, or finds that nothing
    // was launched; it never answers before a launch that then starts the VM.
    vm.launch = 'waiting';
    let launchWith!: (go: { xml: string; flags: number } | undefined) => void;
    const go = new Promise<{ xml: string; flags: number } | undefined>((resolve) => { launchWith = resolve; });
    void vm.queue.run(async () => {
      const l = await go;
      if (l) await this.launch(vm, l.xml, l.flags, p.restoreState);
    });
    this.m.vms.set(vm.id, vm);
    this.m.setStatus(vm, 'WaitForLaunch');
    let flags = p.launchPaused ? enums.DomainCreateFlags.START_PAUSED : 0;
    try {
      // A resumed VM runs before_vm_dehibernate instead, as in VDSM.
      const r = p.restoreState ? { failed: false, runs: [], data: xml, launchFlags: flags } as const
        : await this.o.hooks.run('before_vm_start', { data: xml, vmId: vm.id, customProperties: meta.customProperties, launchFlags: flags });
      if (r.failed) throw hookError('before_vm_start', r);
      if (r.runs.length) {
        checkHookedXml(r.data, vm.id);
        xml = r.data;
        vm.name = parseDomainDevices(xml).name;
        flags = r.launchFlags ?? flags;
      }
    } catch (e) {
      launchWith(undefined);
      this.m.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.HOOK_ERROR, exitMessage: (e as Error).message } });
      this.m.forget(vm);
      // Earlier hooks may have made things for this VM (scratch disks...): let their cleanup run.
      await this.xmlHook('after_vm_destroy', vm, xml).catch((err) => this.o.log.warn('after_vm_destroy hooks failed', { vm: vm.id, err }));
      throw e;
    }
    vm.disks = spec?.disks ?? [];
    launchWith({ xml, flags });
    return { vmId: vm.id, status: 'WaitForLaunch' };
  }

  private async launch(vm: Vm, xml: string, flags: number, restoreState?: StateVolumeRef): Promise<void> {
    const timer = new PhaseTimer();
    const log = this.o.log.child({ vm: vm.id, op: restoreState ? 'restore' : 'create' });
    try {
      // A destroy came first: nothing is started, and the destroy knows no domain was asked for.
      if (vm.launch === 'cancelled' || this.m.vms.get(vm.id) !== vm) {
        log.info('VM launch cancelled by a destroy before it began');
        return;
      }
      vm.launch = 'begun';
      const paused = (flags & enums.DomainCreateFlags.START_PAUSED) !== 0;
      if (restoreState) {
        await this.hibernation.resume(vm, restoreState, xml);
        timer.mark('restore');
        log.info('VM resumed from its saved state', { ...timer.fields() });
        this.o.disks?.launched(vm.id, vm.disks);
        return;
      }
      this.m.setStatus(vm, 'Powering up');
      const dom = await api(() => this.m.conn().createXML(xml, flags, this.o.timeouts.launchMs), vm.id);
      timer.mark('createXML');
      vm.domId = dom.id;
      vm.hasGuestAgent = parseDomainDevices(xml).hasGuestAgentChannel;
      // Events may already have moved it on (e.g. straight to Down).
      if (vm.status === 'Powering up') this.m.setStatus(vm, paused ? 'Paused' : 'Up');
      log.info('VM launched', { status: vm.status, ...timer.fields() });
      this.o.disks?.launched(vm.id, vm.disks);
      await this.xmlHook('after_vm_start', vm, this.liveXml(vm)).catch((e) => log.warn('after_vm_start hooks failed', { err: e }));
    } catch (e) {
      timer.mark('failed');
      log.warn('VM launch failed', { err: e, ...timer.fields() });
      // Timed out, libvirtd may still have started it: the VM is reported Down, so its domain must not run.
      if (e instanceof OperationTimeoutError) await this.destroyLeftover(vm, log);
      this.m.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.LIBVIRT_START_FAILED, exitMessage: (e as Error).message } });
    }
  }

  /** Destroys the domain of a launch that timed out, if libvirtd made it after all (a lookup that fails finds none). */
  private async destroyLeftover(vm: Vm, log: Logger): Promise<void> {
    try {
      const dom = await this.m.conn().lookupByUUID(vm.id);
      await dom.destroy(0);
      log.warn('VM launch timed out but libvirt made the domain: destroyed it', { vm: vm.id });
    } catch (err) {
      log.info('no domain left by the timed-out launch', { vm: vm.id, err });
    }
  }
}

/** What before_vm_start hooks leave must be a domain with the VM's own uuid. */
function checkHookedXml(xml: string, vmId: string): void {
  let dom: XmlElement;
  try {
    dom = parseXml(xml);
  } catch (e) {
    if (e instanceof XmlSyntaxError) throw new HookError(`before_vm_start hooks left XML that is not well-formed: ${e.message}`, { cause: e });
    throw e;
  }
  if (!sameUuid(dom.element('uuid')?.text() ?? '', vmId)) throw new InvalidParamsError('before_vm_start hooks must not change the VM uuid');
}
