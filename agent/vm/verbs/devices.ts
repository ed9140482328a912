// Device verbs on a running VM: hotplug and hotunplug of disks and NICs.
import type { Static } from '@sinclair/typebox';
import { InvalidParamsError, VmExistsError, OperationTimeoutError } from '../../../api/errors.js';
import type { DiskSpec, NicSpec } from '../../../api/types.js';
import type { Vm } from '../vm.js';
import { diskXml, nicXml, parseDomainDevices, randomMac } from '../domain-xml.js';
import { api } from '../libvirt-errors.js';
import { esc } from '../xml.js';
import { AFFECT_LIVE, VmVerbs } from './base.js';

export class VmDevices extends VmVerbs {
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
}
