// Console verbs: the VNC ticket (a password with an expiry, VDSM's setTicket).
import { WrongStateError } from '../../../api/errors.js';
import type { ParamsOf, ResultOf } from '../../../api/schema.js';
import { api } from '../libvirt-errors.js';
import { parseXml, serializeXml } from '../xml.js';
import { AFFECT_LIVE, VmVerbs } from './base.js';

type Display = ResultOf<'VM.setTicket'>['display'];

export class VmConsole extends VmVerbs {
  async setTicket(p: ParamsOf<'VM.setTicket'>): Promise<ResultOf<'VM.setTicket'>> {
    let display: Display | undefined;
    await this.simple(p.vmID, ['Up', 'Paused', 'Powering up'], 'setTicket', async (vm) => {
      const dom = await this.m.domain(vm);
      const xml = await api(() => dom.xml(), vm.id);
      // UTC without a zone, as libvirt wants passwdValidTo.
      const validTo = new Date(Date.now() + p.ttl * 1000).toISOString().replace(/\.\d+Z$/, '');
      const updated = withVncTicket(xml, { passwd: p.password, passwdValidTo: validTo, connected: p.existingConnAction ?? 'keep' });
      if (!updated) throw new WrongStateError(`VM ${vm.id} has no VNC graphics device`);
      display = vncDisplayOf(xml);
      if (!display) throw new WrongStateError(`VM ${vm.id}: its VNC display has no port yet`);
      const params = { ttl: p.ttl, existingConnAction: p.existingConnAction ?? 'keep' };
      await this.xmlHook('before_vm_set_ticket', vm, xml, params).catch((e) => this.o.log.warn('before_vm_set_ticket hooks failed', { vm: vm.id, err: e }));
      await api(() => dom.updateDevice(updated, AFFECT_LIVE), vm.id);
      await this.xmlHook('after_vm_set_ticket', vm, xml, params).catch((e) => this.o.log.warn('after_vm_set_ticket hooks failed', { vm: vm.id, err: e }));
    });
    return { display: display! };
  }
}

/**
 * The VM's own VNC <graphics> element with the ticket attributes set:
 * libvirt's updateDevice refuses any other change (listen address, port).
 */
export function withVncTicket(domainXml: string, attrs: Record<string, string>): string | undefined {
  const vnc = vncElement(domainXml);
  if (!vnc) return undefined;
  for (const [k, v] of Object.entries(attrs)) vnc.setAttr(k, v);
  return serializeXml(vnc);
}

/** Where the running VM's VNC display listens, from its live XML; undefined before QEMU has a port. */
export function vncDisplayOf(liveXml: string): Display | undefined {
  const vnc = vncElement(liveXml);
  const port = Number(vnc?.attr('port'));
  if (!vnc || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const listen = vnc.attr('listen') ?? vnc.element('listen')?.attr('address') ?? '127.0.0.1';
  return { type: 'vnc', port, listen };
}

function vncElement(domainXml: string): ReturnType<typeof parseXml> | undefined {
  return parseXml(domainXml).element('devices')?.elements('graphics').find((g) => g.attr('type') === 'vnc');
}
