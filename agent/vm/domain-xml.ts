// Domain XML: built from the compact JSON spec, or taken from the engine and
// given our uuid and metadata; plus device XML for hotplug.
import { randomBytes } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import type { DiskSpec, NicSpec, VmSpec } from '../../api/types.js';
import { InvalidParamsError } from '../../api/errors.js';
import { metadataBlock, metadataFromDomainXml, METADATA_NS, type VmMetadata } from './metadata.js';
import { attr, child, children, esc, parseXml } from './xml.js';

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

export function specToDomainXml(vmId: string, spec: VmSpecT, domainType: string, meta: VmMetadata): string {
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
    ? `<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${randomBytes(4).toString('hex')}' passwdValidTo='1970-01-01T00:00:01'/>`
    : '';
  return `<domain type='${esc(spec.domainType ?? domainType)}'>`
    + `<name>${esc(spec.name)}</name><uuid>${esc(vmId)}</uuid>`
    + `<metadata>${metadataBlock(meta)}</metadata>`
    + `<memory unit='MiB'>${spec.memoryMiB}</memory><vcpu>${spec.vcpus ?? 1}</vcpu>`
    + `<os><type arch='x86_64' machine='${esc(spec.machine ?? 'pc')}'>hvm</type>${os}</os>`
    + '<features><acpi/></features><clock offset="utc"/>'
    + '<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>'
    + `<devices>${disks}${nics}<controller type='usb' model='none'/>${serial}${graphics}<memballoon model='none'/></devices>`
    + '</domain>';
}

const OUR_BLOCK = new RegExp(`<(\\w+):vm\\s+xmlns:\\1=["']${METADATA_NS.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}["'][\\s\\S]*?</\\1:vm>`);

/**
 * Takes engine-supplied domain XML: checks it is a domain, gives it the
 * VM's uuid, and replaces our metadata block with `meta` (the caller merges
 * what the engine put there via metadataFromDomainXml first).
 */
export function prepareEngineXml(vmId: string, xml: string, meta: VmMetadata): string {
  let parsed;
  try {
    parsed = parseXml(xml);
  } catch (e) {
    throw new InvalidParamsError(`params.xml: not well-formed XML: ${(e as Error).message}`, { data: { field: 'params.xml' } });
  }
  const dom = child(parsed, 'domain');
  if (!dom) throw new InvalidParamsError('params.xml: root element must be <domain>', { data: { field: 'params.xml' } });
  if (!child(dom, 'name')) throw new InvalidParamsError('params.xml: <name> is required', { data: { field: 'params.xml' } });
  const uuid = dom.uuid;
  let out = xml;
  if (typeof uuid === 'string') {
    if (uuid.toLowerCase() !== vmId.toLowerCase()) {
      throw new InvalidParamsError(`params.xml: <uuid> ${uuid} differs from vmID ${vmId}`, { data: { field: 'params.xml' } });
    }
  } else {
    out = out.replace(/<\/name>/, `</name><uuid>${vmId}</uuid>`);
  }
  const block = metadataBlock(meta);
  if (OUR_BLOCK.test(out)) out = out.replace(OUR_BLOCK, block);
  else if (/<metadata\s*\/>/.test(out)) out = out.replace(/<metadata\s*\/>/, `<metadata>${block}</metadata>`);
  else if (/<metadata(\s[^>]*)?>/.test(out)) out = out.replace(/<metadata(\s[^>]*)?>/, (m) => `${m}${block}`);
  else out = out.replace(/<\/domain>\s*$/, `<metadata>${block}</metadata></domain>`);
  return out;
}

export { metadataFromDomainXml };

export interface DomainDevices {
  /** type: file or block; format: the driver's (qcow2, raw). */
  disks: { target: string; source?: string; alias?: string; type?: string; format?: string; readonly: boolean }[];
  nics: { mac: string; bridge?: string; alias?: string }[];
  hasGraphics: boolean;
  hasGuestAgentChannel: boolean;
  name: string;
}

export function parseDomainDevices(xml: string): DomainDevices {
  const dom = child(parseXml(xml), 'domain');
  const devices = child(dom, 'devices');
  const disks = children(devices, 'disk').map((d) => {
    const src = child(d, 'source');
    return {
      target: attr(child(d, 'target'), 'dev') ?? '', source: attr(src, 'file') ?? attr(src, 'dev'), alias: attr(child(d, 'alias'), 'name'),
      type: attr(d, 'type'), format: attr(child(d, 'driver'), 'type'), readonly: child(d, 'readonly') !== undefined,
    };
  });
  const nics = children(devices, 'interface').map((n) => ({
    mac: (attr(child(n, 'mac'), 'address') ?? '').toLowerCase(),
    bridge: attr(child(n, 'source'), 'bridge'),
    alias: attr(child(n, 'alias'), 'name'),
  }));
  const channels = children(devices, 'channel');
  return {
    name: typeof dom?.name === 'string' ? dom.name : '',
    disks, nics,
    hasGraphics: children(devices, 'graphics').length > 0,
    hasGuestAgentChannel: channels.some((c) => attr(child(c, 'target'), 'name') === 'org.qemu.guest_agent.0'),
  };
}
