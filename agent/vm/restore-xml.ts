// The domain XML a VM resumes with from a saved memory image. A hibernated VM
// resumes on the disks it was saved with, and the image's own XML is used as
// is. A memory snapshot's image holds the XML from before the snapshot, whose
// disks are the snapshot's base volumes (now read-only backing of other
// leaves): the VM must resume on the disks its VM.create names, and with
// their metadata, never write into those bases.
import type { DiskSpecT } from './domain-xml.js';
import { setMetadataBlock, type VmMetadata } from './metadata.js';
import { parseXml, serializeXml } from './xml.js';

/** The saved XML with each disk given a path in `disks` on that path (its metadata: `meta`); null when no disk moves. */
export function restoreXmlOnDisks(saved: string, disks: readonly DiskSpecT[], meta: VmMetadata): string | null {
  const dom = parseXml(saved);
  let moved = false;
  for (const d of dom.element('devices')?.elements('disk') ?? []) {
    const target = d.element('target')?.attr('dev');
    const want = disks.find((x) => x.name === target && x.path);
    const src = d.element('source');
    if (!want?.path || !src || (src.attr('file') ?? src.attr('dev')) === want.path) continue;
    const type = want.type === 'block' ? 'block' : 'file';
    d.attrs['type'] = type;
    delete src.attrs['file'];
    delete src.attrs['dev'];
    src.attrs[type === 'block' ? 'dev' : 'file'] = want.path;
    // The chain under the new leaf is libvirt's to probe, not the old one's.
    for (const b of d.elements('backingStore')) d.remove(b);
    moved = true;
  }
  if (!moved) return null;
  setMetadataBlock(dom, meta);
  return serializeXml(dom);
}
