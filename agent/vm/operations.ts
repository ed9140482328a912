// The VM verbs. Each runs in its VM's queue (one operation at a time per VM,
// VMs in parallel) and logs the time of each phase.
import type { Static } from '@sinclair/typebox';
import type { Logger } from '../log.js';
import { PhaseTimer } from '../log.js';
import { enums } from '../libvirt/index.js';
import { HookError, InvalidParamsError, VmExistsError, WrongStateError, OperationTimeoutError, ShuttingDownError } from '../../api/errors.js';
import type { ParamsOf } from '../../api/schema.js';
import type { DiskSpec, NicSpec } from '../../api/types.js';
import type { VmManager } from './manager.js';
import { Vm } from './vm.js';
import { ExitReason, type VmStatusT } from './status.js';
import { emptyMetadata, metadataElement, metadataOfDomain, METADATA_NS, METADATA_PREFIX, type VmMetadata } from './metadata.js';
import { diskXml, nicXml, parseDomainDevices, parseEngineXml, prepareEngineXml, randomMac, sameUuid, specToDomainXml } from './domain-xml.js';
import { api } from './libvirt-errors.js';
import { esc, parseXml, serializeXml, XmlSyntaxError, type XmlElement } from './xml.js';
import type { Hooks } from '../hooks/hooks.js';
import type { VmDisks } from '../storage/vm-disks.js';
import { hookError } from '../hooks/runner.js';
import type { HookPoint } from '../hooks/points.js';

export interface VmTimeouts {
  destroyMs: number;
  shutdownStepMs: number;
  hotunplugMs: number;
}

export interface VmOperationsOptions {
  manager: VmManager;
  log: Logger;
  domainType: () => string;
  timeouts: VmTimeouts;
  /** False once the agent is stopping: no new launches. */
  accepting: () => boolean;
  hooks: Hooks;
  /** Disks that refer to storage ids (absent: only disks with paths). */
  disks?: VmDisks;
  /**
   * The bridge of a host network, for NICs given as `network: NAME`; throws
   * (27) naming FIELD when there is no such bridged network. Absent: such NICs
   * are refused.
   */
  networkBridge?: (network: string, field: string) => Promise<string>;
}

const AFFECT_LIVE = enums.DomainModificationImpact.LIVE;

export class VmOperations {
  /**
   * vmIDs whose create is between its "exists" check and the VM's
   * registration (NIC and disk resolution await in between): a second
   * create of one of them gets 4 instead of also passing the check.
   */
  private readonly creating = new Set<string>();

  constructor(private readonly o: VmOperationsOptions) {}

  private get m(): VmManager { return this.o.manager; }

  /**
   * Registers the VM as WaitForLaunch, runs before_vm_start (whose failure
   * fails the call with 78 and leaves nothing behind), then launches in the
   * background.
   */
  async create(p: ParamsOf<'VM.create'>): Promise<{ vmId: string; status: 'WaitForLaunch' }> {
    if (!this.o.accepting()) throw new ShuttingDownError();
    if (this.m.recovering) this.m.managed(p.vmID); // throws RecoveryError
    if (this.m.vms.has(p.vmID) || this.creating.has(p.vmID)) throw new VmExistsError(p.vmID);
    // Reserved before the first await; released once the VM is registered (vms.has covers it from then on) or the create failed.
    this.creating.add(p.vmID);
    try {
      return await this.createReserved(p);
    } finally {
      this.creating.delete(p.vmID);
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
    let xml = engineDom ? prepareEngineXml(p.vmID, engineDom, meta) : specToDomainXml(p.vmID, spec!, this.o.domainType(), meta);
    const vm = new Vm(p.vmID, parseDomainDevices(xml).name, false);
    vm.meta = meta;
    this.m.vms.set(vm.id, vm);
    this.m.setStatus(vm, 'WaitForLaunch');
    let flags = p.launchPaused ? enums.DomainCreateFlags.START_PAUSED : 0;
    try {
      const r = await this.o.hooks.run('before_vm_start', { data: xml, vmId: vm.id, customProperties: meta.customProperties, launchFlags: flags });
      if (r.failed) throw hookError('before_vm_start', r);
      if (r.runs.length) {
        checkHookedXml(r.data, vm.id);
        xml = r.data;
        vm.name = parseDomainDevices(xml).name;
        flags = r.launchFlags ?? flags;
      }
    } catch (e) {
      this.m.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.HOOK_ERROR, exitMessage: (e as Error).message } });
      this.m.forget(vm);
      // Earlier hooks may have made things for this VM (scratch disks...): let their cleanup run.
      await this.xmlHook('after_vm_destroy', vm, xml).catch((err) => this.o.log.warn('after_vm_destroy hooks failed', { vm: vm.id, err }));
      throw e;
    }
    vm.disks = spec?.disks ?? [];
    void vm.queue.run(() => this.launch(vm, xml, flags));
    return { vmId: vm.id, status: 'WaitForLaunch' };
  }

  /** Runs an XML hook point for a VM; returns what the hooks left. Raising points throw HookError. */
  private async xmlHook(point: HookPoint, vm: Vm, xml: string | (() => Promise<string>), params?: Record<string, string | number | boolean>): Promise<string | undefined> {
    if (!this.o.hooks.has(point)) return undefined;
    const data = typeof xml === 'string' ? xml : await xml();
    const call = { data, vmId: vm.id, customProperties: vm.meta.customProperties, ...(params ? { params } : {}) };
    const r = await this.o.hooks.runRaising(point, call);
    return r.data;
  }

  private liveXml(vm: Vm): () => Promise<string> {
    return async () => {
      const dom = await this.m.domain(vm);
      return api(() => dom.xml(), vm.id);
    };
  }

  private async launch(vm: Vm, xml: string, flags: number): Promise<void> {
    const timer = new PhaseTimer();
    const log = this.o.log.child({ vm: vm.id, op: 'create' });
    try {
      this.m.setStatus(vm, 'Powering up');
      const paused = (flags & enums.DomainCreateFlags.START_PAUSED) !== 0;
      const dom = await api(() => this.m.conn().createXML(xml, flags), vm.id);
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
      this.m.setStatus(vm, 'Down', { exit: { exitCode: 1, exitReason: ExitReason.LIBVIRT_START_FAILED, exitMessage: (e as Error).message } });
    }
  }

  async destroy(vmId: string): Promise<void> {
    const vm = this.m.managed(vmId);
    vm.shuttingDown?.abort(); // an orderly shutdown waiting in the queue yields to destroy
    return vm.queue.run(async () => {
      const timer = new PhaseTimer();
      const hookXml = this.o.hooks.has('before_vm_destroy') || this.o.hooks.has('after_vm_destroy')
        ? await this.liveXml(vm)().catch(() => '<domain/>') : '<domain/>';
      await this.xmlHook('before_vm_destroy', vm, hookXml);
      if (vm.status !== 'Down') {
        vm.destroying = true;
        const dom = await this.m.domain(vm).catch(() => undefined);
        if (dom) {
          try {
            await api(() => dom.destroy(enums.DomainDestroyFlagsValues.GRACEFUL), vm.id);
          } catch {
            timer.mark('graceful');
            await api(() => dom.destroy(0), vm.id);
          }
        }
        timer.mark('destroy');
        this.m.setStatus(vm, 'Down', { exit: { exitCode: 0, exitReason: ExitReason.DESTROYED, exitMessage: 'VM destroyed by the engine' } });
      }
      this.m.forget(vm);
      await this.o.disks?.released(vm.id, vm.disks);
      await this.xmlHook('after_vm_destroy', vm, hookXml).catch((e) => this.o.log.warn('after_vm_destroy hooks failed', { vm: vm.id, err: e }));
      this.o.log.info('VM destroyed', { vm: vm.id, ...timer.fields() });
    });
  }

  /** Guest agent, then ACPI, then (only if asked) destroy; each step waits its own timeout. */
  async shutdown(p: ParamsOf<'VM.shutdown'>): Promise<{ status: VmStatusT; method: string }> {
    const vm = this.m.managed(p.vmID);
    if (vm.status === 'Down') throw new WrongStateError(`VM ${vm.id} is already down`);
    const abort = new AbortController();
    return vm.queue.run(async () => {
      vm.shuttingDown = abort;
      const timer = new PhaseTimer();
      const stepMs = (p.timeout ?? this.o.timeouts.shutdownStepMs / 1000) * 1000;
      try {
        if (p.delay) await new Promise((r) => setTimeout(r, p.delay! * 1000));
        const dom = await this.m.domain(vm);
        const steps: [string, () => Promise<void>][] = [];
        const F = enums.DomainShutdownFlagValues;
        if (vm.hasGuestAgent) steps.push(['guest-agent', () => dom.shutdown({ flags: F.GUEST_AGENT, timeoutMs: stepMs })]);
        steps.push(['acpi', () => dom.shutdown({ flags: F.ACPI_POWER_BTN, timeoutMs: stepMs })]);
        if (p.force) steps.push(['force', () => dom.destroy(0)]);
        this.m.setStatus(vm, 'Powering down');
        for (const [method, run] of steps) {
          if (abort.signal.aborted) break;
          try {
            await api(run, vm.id);
          } catch (e) {
            timer.mark(method);
            this.o.log.info('shutdown step failed', { vm: vm.id, method, err: e });
            continue;
          }
          const down = await vm.waitFor((s) => s === 'Down', stepMs, abort.signal);
          timer.mark(method);
          if (down) {
            this.o.log.info('VM shut down', { vm: vm.id, method, ...timer.fields() });
            return { status: vm.status, method };
          }
        }
        if (abort.signal.aborted) return { status: vm.status, method: 'destroy' };
        // Nothing worked: it is still running.
        if (vm.status === 'Powering down') this.m.setStatus(vm, 'Up');
        throw new OperationTimeoutError(`VM ${vm.id} did not shut down (tried ${steps.map((s) => s[0]).join(', ')})`);
      } finally {
        vm.shuttingDown = undefined;
      }
    });
  }

  private simple(vmId: string, allowed: VmStatusT[], name: string, fn: (vm: Vm) => Promise<void>): Promise<void> {
    const vm = this.m.managed(vmId);
    return vm.queue.run(async () => {
      if (!allowed.includes(vm.status)) throw new WrongStateError(`${name} is not allowed while the VM is ${vm.status}`);
      await fn(vm);
    });
  }

  async pause(vmId: string): Promise<{ status: VmStatusT }> {
    await this.simple(vmId, ['Up', 'Powering up'], 'pause', async (vm) => {
      await this.xmlHook('before_vm_pause', vm, this.liveXml(vm));
      const dom = await this.m.domain(vm);
      await api(() => dom.suspend(), vm.id);
      this.m.setStatus(vm, 'Paused', { pauseCode: 'NOERR' });
      await this.xmlHook('after_vm_pause', vm, this.liveXml(vm)).catch((e) => this.o.log.warn('after_vm_pause hooks failed', { vm: vm.id, err: e }));
    });
    return { status: this.m.get(vmId).status };
  }

  async cont(vmId: string): Promise<{ status: VmStatusT }> {
    await this.simple(vmId, ['Paused'], 'cont', async (vm) => {
      await this.xmlHook('before_vm_cont', vm, this.liveXml(vm));
      const dom = await this.m.domain(vm);
      await api(() => dom.resume(), vm.id);
      this.m.setStatus(vm, 'Up');
      await this.xmlHook('after_vm_cont', vm, this.liveXml(vm)).catch((e) => this.o.log.warn('after_vm_cont hooks failed', { vm: vm.id, err: e }));
    });
    return { status: this.m.get(vmId).status };
  }

  async reset(vmId: string): Promise<void> {
    await this.simple(vmId, ['Up', 'Powering up', 'Paused'], 'reset', async (vm) => {
      const dom = await this.m.domain(vm);
      await api(() => dom.reset(), vm.id);
    });
  }

  private async saveMetadata(vm: Vm): Promise<void> {
    const dom = await this.m.domain(vm);
    await api(() => dom.setMetadata(enums.DomainMetadataType.ELEMENT, metadataElement(vm.meta), METADATA_PREFIX, METADATA_NS, AFFECT_LIVE), vm.id);
  }

  async hotplugDisk(vmId: string, drive: Static<typeof DiskSpec>): Promise<{ xml: string }> {
    let xml = '';
    await this.simple(vmId, ['Up', 'Paused'], 'hotplugDisk', async (vm) => {
      const dom = await this.m.domain(vm);
      const devices = parseDomainDevices(await api(() => dom.xml(), vm.id));
      if (devices.disks.some((d) => d.target === drive.name)) throw new VmExistsError(`${vm.id} disk ${drive.name}`);
      xml = (await this.xmlHook('before_disk_hotplug', vm, diskXml(drive))) ?? diskXml(drive);
      await api(() => dom.attachDevice(xml, AFFECT_LIVE), vm.id);
      await this.xmlHook('after_disk_hotplug', vm, xml).catch((e) => this.o.log.warn('after_disk_hotplug hooks failed', { vm: vm.id, err: e }));
      vm.meta.devices = vm.meta.devices.filter((d) => !(d.devtype === 'disk' && d.name === drive.name));
      vm.meta.devices.push({ devtype: 'disk', name: drive.name, ...(drive.storage ? { storage: drive.storage } : {}) });
      await this.saveMetadata(vm);
    });
    return { xml };
  }

  async hotunplugDisk(vmId: string, name: string): Promise<void> {
    await this.simple(vmId, ['Up', 'Paused'], 'hotunplugDisk', async (vm) => {
      const dom = await this.m.domain(vm);
      const disk = parseDomainDevices(await api(() => dom.xml(), vm.id)).disks.find((d) => d.target === name);
      if (!disk) throw new InvalidParamsError(`params.drive.name: VM has no disk ${name}`, { data: { field: 'params.drive.name' } });
      const devXml = `<disk device='disk'>${disk.source ? `<source file='${esc(disk.source)}'/>` : ''}<target dev='${esc(name)}'/></disk>`;
      await this.xmlHook('before_disk_hotunplug', vm, devXml);
      await this.detachAndWait(vm, disk.alias, devXml);
      await this.xmlHook('after_disk_hotunplug', vm, devXml).catch((e) => this.o.log.warn('after_disk_hotunplug hooks failed', { vm: vm.id, err: e }));
      vm.meta.devices = vm.meta.devices.filter((d) => !(d.devtype === 'disk' && d.name === name));
      await this.saveMetadata(vm);
    });
  }

  /**
   * A NIC names exactly one of `bridge` (any Linux bridge) and `network` (a
   * host network: its bridge, VDSM's way). FIELD is the NIC's path in the request.
   */
  private async resolveNic(nic: Static<typeof NicSpec>, field: string): Promise<Static<typeof NicSpec>> {
    if ((nic.bridge === undefined) === (nic.network === undefined)) {
      throw new InvalidParamsError(`${field}: give exactly one of bridge and network`, { data: { field: `${field}.network` } });
    }
    if (nic.network === undefined) return nic;
    if (!this.o.networkBridge) {
      throw new InvalidParamsError(`${field}.network: host networks are not available in this agent; give a bridge`, { data: { field: `${field}.network` } });
    }
    return { ...nic, bridge: await this.o.networkBridge(nic.network, `${field}.network`) };
  }

  async hotplugNic(vmId: string, requested: Static<typeof NicSpec>): Promise<{ mac: string; xml: string }> {
    const mac = (requested.mac ?? randomMac()).toLowerCase();
    let xml = '';
    await this.simple(vmId, ['Up', 'Paused'], 'hotplugNic', async (vm) => {
      const nic = await this.resolveNic(requested, 'params.nic');
      const dom = await this.m.domain(vm);
      xml = (await this.xmlHook('before_nic_hotplug', vm, nicXml(nic, mac))) ?? nicXml(nic, mac);
      try {
        await api(() => dom.attachDevice(xml, AFFECT_LIVE), vm.id);
      } catch (e) {
        await this.xmlHook('after_nic_hotplug_fail', vm, xml).catch(() => {});
        throw e;
      }
      await this.xmlHook('after_nic_hotplug', vm, xml).catch((e) => this.o.log.warn('after_nic_hotplug hooks failed', { vm: vm.id, err: e }));
    });
    return { mac, xml };
  }

  async hotunplugNic(vmId: string, mac: string): Promise<void> {
    await this.simple(vmId, ['Up', 'Paused'], 'hotunplugNic', async (vm) => {
      const dom = await this.m.domain(vm);
      const nic = parseDomainDevices(await api(() => dom.xml(), vm.id)).nics.find((n) => n.mac === mac.toLowerCase());
      if (!nic) throw new InvalidParamsError(`params.nic.mac: VM has no NIC ${mac}`, { data: { field: 'params.nic.mac' } });
      const devXml = `<interface type='bridge'><mac address='${esc(nic.mac)}'/>${nic.bridge ? `<source bridge='${esc(nic.bridge)}'/>` : ''}</interface>`;
      await this.xmlHook('before_nic_hotunplug', vm, devXml);
      try {
        await this.detachAndWait(vm, nic.alias, devXml);
      } catch (e) {
        await this.xmlHook('after_nic_hotunplug_fail', vm, devXml).catch(() => {});
        throw e;
      }
      await this.xmlHook('after_nic_hotunplug', vm, devXml).catch((e) => this.o.log.warn('after_nic_hotunplug hooks failed', { vm: vm.id, err: e }));
    });
  }

  /** Detaches and waits for libvirt's device-removed event: the guest must let go first. */
  private async detachAndWait(vm: Vm, alias: string | undefined, xml: string): Promise<void> {
    const conn = this.m.conn();
    const dom = await this.m.domain(vm);
    let removed: () => void = () => {};
    const gone = new Promise<void>((resolve) => { removed = resolve; });
    const sub = await api(() => conn.subscribe('device-removed', (ev) => { if (!alias || ev.devAlias === alias) removed(); }, dom), vm.id);
    try {
      await api(() => (alias ? dom.detachDeviceAlias(alias, AFFECT_LIVE) : dom.detachDevice(xml, AFFECT_LIVE)), vm.id);
      const ok = await Promise.race([gone.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), this.o.timeouts.hotunplugMs))]);
      if (!ok) throw new OperationTimeoutError(`the guest did not release the device within ${this.o.timeouts.hotunplugMs} ms`);
    } finally {
      await sub.close().catch(() => {});
    }
  }

  async setTicket(p: ParamsOf<'VM.setTicket'>): Promise<void> {
    await this.simple(p.vmID, ['Up', 'Paused', 'Powering up'], 'setTicket', async (vm) => {
      const dom = await this.m.domain(vm);
      const xml = await api(() => dom.xml(), vm.id);
      const validTo = new Date(Date.now() + p.ttl * 1000).toISOString().replace(/\.\d+Z$/, '');
      const updated = withVncTicket(xml, { passwd: p.password, passwdValidTo: validTo, connected: p.existingConnAction ?? 'keep' });
      if (!updated) throw new WrongStateError(`VM ${vm.id} has no VNC graphics device`);
      const params = { ttl: p.ttl, existingConnAction: p.existingConnAction ?? 'keep' };
      await this.xmlHook('before_vm_set_ticket', vm, xml, params).catch((e) => this.o.log.warn('before_vm_set_ticket hooks failed', { vm: vm.id, err: e }));
      await api(() => dom.updateDevice(updated, AFFECT_LIVE), vm.id);
      await this.xmlHook('after_vm_set_ticket', vm, xml, params).catch((e) => this.o.log.warn('after_vm_set_ticket hooks failed', { vm: vm.id, err: e }));
    });
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

/**
 * The VM's own VNC <graphics> element with the ticket attributes set:
 * libvirt's updateDevice refuses any other change (listen address, port).
 */
export function withVncTicket(domainXml: string, attrs: Record<string, string>): string | undefined {
  const vnc = parseXml(domainXml).element('devices')?.elements('graphics').find((g) => g.attr('type') === 'vnc');
  if (!vnc) return undefined;
  for (const [k, v] of Object.entries(attrs)) vnc.setAttr(k, v);
  return serializeXml(vnc);
}
