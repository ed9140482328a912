// The agent's state for a VM lives in the libvirt domain XML's <metadata>,
// in our own namespace (as VDSM keeps it in ovirt-vm), so a restarted agent
// rebuilds its view from libvirt alone.
import { parseXml, serializeXml, XmlElement } from './xml.js';

export const METADATA_NS = 'http://hostvisor.org/xmlns/vm/1.0';
export const METADATA_PREFIX = 'hostvisor';

export interface StorageRef { poolID: string; domainID: string; imageID: string; volumeID: string }

export interface DeviceMeta {
  devtype: 'disk' | 'nic';
  name: string;
  storage?: StorageRef;
}

/** A drive of a live snapshot in progress: its target, image, old leaf (base) and new leaf with its path. */
export interface SnapshotDriveMeta { name: string; domainID: string; imageID: string; base: string; leaf: string; path: string }

/** A live snapshot under way (VM.snapshot), kept until it is finished or rolled back, for an agent restarted meanwhile. */
export interface SnapshotJobMeta { id: string; startTime: number; memory: boolean; drives: SnapshotDriveMeta[] }

export interface VmMetadata {
  customProperties: Record<string, string>;
  devices: DeviceMeta[];
  snapshotJob?: SnapshotJobMeta;
  /** ms since epoch when the agent launched the VM. */
  startTime?: number;
  launchPaused?: boolean;
  /**
   * Long jobs on the VM (live merge), each a flat attribute map owned by its
   * service (agent/vm/merge/job.ts), so a restarted agent finds them.
   */
  jobs?: Record<string, string>[];
}

export function emptyMetadata(): VmMetadata {
  return { customProperties: {}, devices: [] };
}

/** Our <vm> element as a tree; with a prefix it declares our namespace, for embedding in domain XML. */
function metadataTree(m: VmMetadata, prefix: string): XmlElement {
  const q = (name: string) => (prefix ? `${prefix}:${name}` : name);
  const vm = new XmlElement(q('vm'), prefix ? { [`xmlns:${prefix}`]: METADATA_NS } : {});
  if (m.startTime !== undefined) vm.append(new XmlElement(q('startTime'), {}, [String(m.startTime)]));
  if (m.launchPaused !== undefined) vm.append(new XmlElement(q('launchPaused'), {}, [String(m.launchPaused)]));
  for (const [k, v] of Object.entries(m.customProperties)) vm.append(new XmlElement(q('custom'), { name: k }, [v]));
  for (const d of m.devices) {
    const s = d.storage;
    const storage = s ? [new XmlElement(q('storage'), { poolID: s.poolID, domainID: s.domainID, imageID: s.imageID, volumeID: s.volumeID })] : [];
    vm.append(new XmlElement(q('device'), { devtype: d.devtype, name: d.name }, storage));
  }
  const j = m.snapshotJob;
  if (j) {
    const drives = j.drives.map((d) => new XmlElement(q('drive'), { ...d }));
    vm.append(new XmlElement(q('snapshotJob'), { id: j.id, startTime: String(j.startTime), memory: String(j.memory) }, drives));
  }
  for (const j of m.jobs ?? []) vm.append(new XmlElement(q('job'), { ...j }));
  return vm;
}

/** The <vm> element as libvirt's setMetadata(ELEMENT) wants it: unprefixed, the namespace given separately. */
export function metadataElement(m: VmMetadata): string {
  return serializeXml(metadataTree(m, ''));
}

/** The same element with our prefix and namespace, as it appears in domain XML. */
export function metadataBlock(m: VmMetadata): string {
  return serializeXml(metadataTree(m, METADATA_PREFIX));
}

/** Our elements under <metadata>, by namespace (whatever prefix the XML gives them). */
function ourBlocks(domain: XmlElement): XmlElement[] {
  return domain.elements('metadata').flatMap((md) => md.elementsNS(METADATA_NS, 'vm'));
}

function fromVmNode(vm: XmlElement): VmMetadata {
  const m = emptyMetadata();
  const ours = (name: string) => vm.elementsNS(METADATA_NS, name);
  const start = ours('startTime')[0]?.text().trim();
  if (start !== undefined && /^\d+$/.test(start)) m.startTime = Number(start);
  const lp = ours('launchPaused')[0]?.text().trim();
  if (lp !== undefined) m.launchPaused = lp === 'true';
  for (const c of ours('custom')) {
    const name = c.attr('name');
    if (name) m.customProperties[name] = c.text();
  }
  for (const d of ours('device')) {
    const devtype = d.attr('devtype');
    const name = d.attr('name');
    if ((devtype !== 'disk' && devtype !== 'nic') || !name) continue;
    const s = d.elementsNS(METADATA_NS, 'storage')[0];
    const dev: DeviceMeta = { devtype, name };
    const ids = s && (['poolID', 'domainID', 'imageID', 'volumeID'] as const).map((k) => s.attr(k));
    if (ids && ids.every((x) => x)) dev.storage = { poolID: ids[0]!, domainID: ids[1]!, imageID: ids[2]!, volumeID: ids[3]! };
    m.devices.push(dev);
  }
  const job = ours('snapshotJob')[0];
  if (job?.attr('id')) {
    const keys = ['name', 'domainID', 'imageID', 'base', 'leaf', 'path'] as const;
    const drives = job.elementsNS(METADATA_NS, 'drive').map((d) => Object.fromEntries(keys.map((k) => [k, d.attr(k) ?? ''])) as unknown as SnapshotDriveMeta);
    m.snapshotJob = { id: job.attr('id')!, startTime: Number(job.attr('startTime') ?? 0), memory: job.attr('memory') === 'true', drives };
  }
  const jobs = ours('job').map((j) => ({ ...j.attrs }));
  if (jobs.length) m.jobs = jobs;
  return m;
}

/** Our metadata in a parsed <domain>, or undefined if it has none (then it is not ours: an external VM). */
export function metadataOfDomain(domain: XmlElement): VmMetadata | undefined {
  const vm = ourBlocks(domain)[0];
  return vm ? fromVmNode(vm) : undefined;
}

/** The same from domain XML text (as libvirt gives it). */
export function metadataFromDomainXml(xml: string): VmMetadata | undefined {
  if (!xml.includes(METADATA_NS)) return undefined; // not ours, without parsing
  return metadataOfDomain(parseXml(xml));
}

/**
 * Puts `m` into a parsed <domain> as our one metadata block: in place of the
 * first block of ours (others are dropped), else appended to <metadata>
 * (made if missing). Everything else under <metadata> stays as it was.
 */
export function setMetadataBlock(domain: XmlElement, m: VmMetadata): void {
  const block = metadataTree(m, METADATA_PREFIX);
  const [first, ...extra] = ourBlocks(domain);
  for (const old of extra) old.parent!.remove(old);
  if (first) first.parent!.replace(first, block);
  else (domain.element('metadata') ?? domain.append(new XmlElement('metadata'))).append(block);
}
