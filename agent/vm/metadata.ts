// The agent's state for a VM lives in the libvirt domain XML's <metadata>,
// in our own namespace (as VDSM keeps it in ovirt-vm), so a restarted agent
// rebuilds its view from libvirt alone.
import { attr, child, children, esc, parseXml, text, type XmlNode } from './xml.js';

export const METADATA_NS = 'http://hostvisor.org/xmlns/vm/1.0';
export const METADATA_PREFIX = 'hostvisor';

export interface StorageRef { poolID: string; domainID: string; imageID: string; volumeID: string }

export interface DeviceMeta {
  devtype: 'disk' | 'nic';
  name: string;
  storage?: StorageRef;
}

export interface VmMetadata {
  customProperties: Record<string, string>;
  devices: DeviceMeta[];
  /** ms since epoch when the agent launched the VM. */
  startTime?: number;
  launchPaused?: boolean;
}

export function emptyMetadata(): VmMetadata {
  return { customProperties: {}, devices: [] };
}

/** The <vm> element as libvirt's setMetadata(ELEMENT) wants it: unprefixed, the namespace given separately. */
export function metadataElement(m: VmMetadata): string {
  const parts: string[] = ['<vm>'];
  if (m.startTime !== undefined) parts.push(`<startTime>${m.startTime}</startTime>`);
  if (m.launchPaused !== undefined) parts.push(`<launchPaused>${m.launchPaused}</launchPaused>`);
  for (const [k, v] of Object.entries(m.customProperties)) parts.push(`<custom name="${esc(k)}">${esc(v)}</custom>`);
  for (const d of m.devices) {
    const s = d.storage;
    const storage = s ? `<storage poolID="${esc(s.poolID)}" domainID="${esc(s.domainID)}" imageID="${esc(s.imageID)}" volumeID="${esc(s.volumeID)}"/>` : '';
    parts.push(`<device devtype="${esc(d.devtype)}" name="${esc(d.name)}">${storage}</device>`);
  }
  parts.push('</vm>');
  return parts.join('');
}

/** The same element with our prefix and namespace, for embedding in domain XML. */
export function metadataBlock(m: VmMetadata): string {
  return metadataElement(m)
    .replace(/<(\/?)(vm|startTime|launchPaused|custom|device|storage)\b/g, `<$1${METADATA_PREFIX}:$2`)
    .replace(`<${METADATA_PREFIX}:vm>`, `<${METADATA_PREFIX}:vm xmlns:${METADATA_PREFIX}="${METADATA_NS}">`);
}

function fromVmNode(vm: XmlNode): VmMetadata {
  const m = emptyMetadata();
  const start = text(vm.startTime);
  if (start !== undefined && /^\d+$/.test(start)) m.startTime = Number(start);
  const lp = text(vm.launchPaused);
  if (lp !== undefined) m.launchPaused = lp === 'true';
  for (const c of children(vm, 'custom')) {
    const name = attr(c, 'name');
    if (name) m.customProperties[name] = text(c) ?? '';
  }
  for (const d of children(vm, 'device')) {
    const devtype = attr(d, 'devtype');
    const name = attr(d, 'name');
    if ((devtype !== 'disk' && devtype !== 'nic') || !name) continue;
    const s = child(d, 'storage');
    const dev: DeviceMeta = { devtype, name };
    const ids = s && ['poolID', 'domainID', 'imageID', 'volumeID'].map((k) => attr(s, k));
    if (ids && ids.every((x) => x)) dev.storage = { poolID: ids[0]!, domainID: ids[1]!, imageID: ids[2]!, volumeID: ids[3]! };
    m.devices.push(dev);
  }
  return m;
}

/**
 * Our metadata from a full domain XML, or undefined if the domain has none
 * (then it is not ours: an external VM).
 */
export function metadataFromDomainXml(xml: string): VmMetadata | undefined {
  if (!xml.includes(METADATA_NS)) return undefined;
  const vm = child(child(child(parseXml(xml), 'domain'), 'metadata'), 'vm');
  return vm ? fromVmNode(vm) : undefined;
}
