// A running disk's backing chain as libvirt sees it (the live domain XML):
// the truth a merge is reconciled against. Our volumes are named by UUID,
// so a source path's last component is its volume.
import { basename } from 'node:path';
import { parseXml, type XmlElement } from '../xml.js';

export interface LiveLayer {
  volUUID: string;
  path: string;
  /** libvirt's index for "vda[N]"; 0 for the active layer. */
  index: number;
}

export interface LiveDiskChain {
  /** Active layer first, base last. */
  layers: LiveLayer[];
  /** The disk's block job mirror, when libvirt shows one (an active commit). */
  mirror?: { job: string; ready: boolean };
}

function sourceOf(e: XmlElement): string | undefined {
  const s = e.element('source');
  return s?.attr('dev') ?? s?.attr('file');
}

/** The chain of the disk with target `target`, or undefined if the domain has no such disk. */
export function liveDiskChain(domainXml: string, target: string): LiveDiskChain | undefined {
  const dom = parseXml(domainXml);
  const disk = dom.element('devices')?.elements('disk').find((d) => d.element('target')?.attr('dev') === target);
  if (!disk) return undefined;
  const layers: LiveLayer[] = [];
  const top = sourceOf(disk);
  if (top) layers.push({ volUUID: basename(top), path: top, index: 0 });
  for (let b = disk.element('backingStore'); b; b = b.element('backingStore')) {
    const src = sourceOf(b);
    if (!src) break;
    layers.push({ volUUID: basename(src), path: src, index: Number(b.attr('index') ?? -1) });
  }
  const m = disk.element('mirror');
  return { layers, ...(m ? { mirror: { job: m.attr('job') ?? '', ready: m.attr('ready') === 'yes' } } : {}) };
}

/** "vda[N]" for a layer (libvirt's name for a backing chain member). */
export function layerName(target: string, layer: LiveLayer): string {
  return layer.index > 0 ? `${target}[${layer.index}]` : target;
}
