// Domain XML: built from the compact JSON spec, or taken from the engine and
// given our uuid and metadata; plus device XML for hotplug.
import { randomBytes } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import type { DiskSpec, NicSpec, VmSpec } from '../../api/types.js';
import { InvalidParamsError } from '../../api/errors.js';
import { metadataBlock, setMetadataBlock, type VmMetadata } from './metadata.js';
import { esc, parseXml, serializeXml, XmlElement, XmlSyntaxError } from './xml.js';

export type VmSpecT = Static<typeof VmSpec>;
export type DiskSpecT = Static<typeof DiskSpec>;
export type NicSpecT = Static<typeof NicSpec>;

export function diskXml(d: DiskSpecT): string {
  if (!d.path) throw new InvalidParamsError(`disk ${d.name}: path is required (storage references are resolved by the storage layer)`, { data: { field: 'path' } });
  const type = d.type ?? 'file';
  const source = type === 'block' ? `<source dev='${esc(d.path)}'/>` : `<source file='${esc(d.path)}'/>`;
  const io = (d.cache ?? 'none') === 'none' ? " io='native'" : '';
  return `<disk type='${type}' device='disk'>`
    + `<driver name='qemu' type='${d.format ?? 'qcow2'}' cache='${d.cache ?? 'none'}'${io} error_policy='${d.errorPolicy ?? 'stop'}'/>`
    + source
    + `<target dev='${esc(d.name)}' bus='${d.bus ?? 'virtio'}'/>`
    + (d.readonly ? '<readonly/>' : '')
    + `<alias name='ua-${esc(d.name)}'/>`
    + '</disk>';
}

/** A NIC's network must already be resolved to its bridge (VmOperations does it). */
export function nicXml(n: NicSpecT, mac: string): string {
  if (!n.bridge) throw new InvalidParamsError('nic: bridge or network is required', { data: { field: 'nic.bridge' } });
  return `<interface type='bridge'><source bridge='${esc(n.bridge)}'/><mac address='${esc(mac)}'/>`
    + `<model type='${n.model ?? 'virtio'}'/>`
    + (n.alias ? `<alias name='${esc(n.alias)}'/>` : '')
    + '</interface>';
}

/** A locally administered unicast MAC (the 52:54:00 prefix QEMU uses). */
export function randomMac(random: () => number = Math.random): string {
  const b = () => Math.floor(random() * 256).toString(16).padStart(2, '0');
  return `52:54:00:${b()}:${b()}:${b()}`;
}

export function specToDomainXml(vmId: string, spec: VmSpecT, domainType: string, meta: VmMetadata, o: { displayListen?: string } = {}): string {
  const os = spec.kernel
    ? `<kernel>${esc(spec.kernel)}</kernel>${spec.initrd ? `<initrd>${esc(spec.initrd)}</initrd>` : ''}${spec.cmdline ? `<cmdline>${esc(spec.cmdline)}</cmdline>` : ''}`
    : '<boot dev="hd"/>';
  const disks = (spec.disks ?? []).map(diskXml).join('');
  const nics = (spec.nics ?? []).map((n) => nicXml(n, n.mac ?? randomMac())).join('');
  const serial = spec.serialLog
    ? `<serial type='file'><source path='${esc(spec.serialLog)}' append='off'/><target port='0'/></serial>`
    : "<serial type='pty'><target port='0'/></serial>";
  // Started with an already expired random password, as VDSM does: QEMU can only
  // take a ticket later (setTicket) on a display that was started with one.
  const graphics = spec.graphics === 'vnc'
    ? `<graphics type='vnc' port='-1' autoport='yes' listen='${esc(o.displayListen ?? '127.0.0.1')}' passwd='${randomBytes(4).toString('hex')}' passwdValidTo='1970-01-01T00:00:01'/>`
    : '';
  // The guest agent's standard port, as VDSM gives every VM: libvirt picks the socket path and
  // reports the agent's connect/disconnect (VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE).
  const agentChannel = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
  return `<domain type='${esc(spec.domainType ?? domainType)}'>`
    + `<name>${esc(spec.name)}</name><uuid>${esc(vmId)}</uuid>`
    + `<metadata>${metadataBlock(meta)}</metadata>`
    + `<memory unit='MiB'>${spec.memoryMiB}</memory><vcpu>${spec.vcpus ?? 1}</vcpu>`
    + `<os><type arch='x86_64' machine='${esc(spec.machine ?? 'pc')}'>hvm</type>${os}</os>`
    + '<features><acpi/></features><clock offset="utc"/>'
    + '<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>'
    + `<devices>${disks}${nics}<controller type='usb' model='none'/>${serial}${agentChannel}${graphics}<memballoon model='none'/></devices>`
    + '</domain>';
}

function invalidXml(message: string, cause?: unknown): InvalidParamsError {
  return new InvalidParamsError(`params.xml: ${message}`, { data: { field: 'params.xml' }, ...(cause ? { cause } : {}) });
}

/** Compares uuids as libvirt reads them: any case, dashes anywhere, surrounding space. */
export function sameUuid(a: string, b: string): boolean {
  const key = (u: string) => u.replace(/[\s-]/g, '').toLowerCase();
  return key(a) === key(b);
}

/**
 * Engine-supplied domain XML, parsed and checked: well-formed, a <domain>
 * root, a non-empty <name>, and a <uuid> (if any) equal to vmId. Refusals
 * are invalidParams naming params.xml.
 */
export function parseEngineXml(vmId: string, xml: string): XmlElement {
  let dom: XmlElement;
  try {
    dom = parseXml(xml);
  } catch (e) {
    if (e instanceof XmlSyntaxError) throw invalidXml(`not well-formed XML: ${e.message}`, e);
    throw e;
  }
  if (dom.name !== 'domain') throw invalidXml(`root element must be <domain>, not <${dom.name}>`);
  if (!dom.element('name')?.text().trim()) throw invalidXml('<name> is required');
  const uuid = dom.element('uuid')?.text();
  if (uuid !== undefined && !sameUuid(uuid, vmId)) throw invalidXml(`<uuid> ${uuid.trim()} differs from vmID ${vmId}`);
  return dom;
}

/**
 * Engine XML made ready to launch: the VM's uuid (added after <name> if
 * missing) and `meta` as our one metadata block (the caller merged what the
 * engine put there via metadataOfDomain first). Edits `dom` in place.
 */
export function prepareEngineXml(vmId: string, dom: XmlElement, meta: VmMetadata): string {
  if (!dom.element('uuid')) dom.insertAfter(dom.element('name')!, new XmlElement('uuid', {}, [vmId]));
  setMetadataBlock(dom, meta);
  return serializeXml(dom);
}

export interface DomainDevices {
  /** type: file or block; format: the driver's (qcow2, raw). */
  disks: { target: string; source?: string; alias?: string; type?: string; format?: string; readonly: boolean }[];
  nics: { mac: string; bridge?: string; alias?: string }[];
  hasGraphics: boolean;
  hasGuestAgentChannel: boolean;
  name: string;
}

export function parseDomainDevices(xml: string): DomainDevices {
  const dom = parseXml(xml);
  const devices = dom.element('devices');
  const disks = (devices?.elements('disk') ?? []).map((d) => {
    const src = d.element('source');
    return {
      target: d.element('target')?.attr('dev') ?? '', source: src?.attr('file') ?? src?.attr('dev'), alias: d.element('alias')?.attr('name'),
      type: d.attr('type'), format: d.element('driver')?.attr('type'), readonly: d.element('readonly') !== undefined,
    };
  });
  const nics = (devices?.elements('interface') ?? []).map((n) => ({
    mac: (n.element('mac')?.attr('address') ?? '').toLowerCase(),
    bridge: n.element('source')?.attr('bridge'),
    alias: n.element('alias')?.attr('name'),
  }));
  const channels = devices?.elements('channel') ?? [];
  return {
    name: dom.element('name')?.text() ?? '',
    disks, nics,
    hasGraphics: (devices?.elements('graphics').length ?? 0) > 0,
    hasGuestAgentChannel: channels.some((c) => c.element('target')?.attr('name') === 'org.qemu.guest_agent.0'),
  };
}
