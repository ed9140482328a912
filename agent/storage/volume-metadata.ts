// Volume metadata: one block of KEY=value lines, the same text on both domain types.
//
//   File domains: images/<img>/<vol>.meta holds the block (written to a temp
//   file and renamed, so a reader sees the old block or the new one).
//
//   Block domains: the block sits in a slot of the `metadata` LV. Slot N
//   starts at SLOT_AREA_OFFSET + N × SLOT_SIZE (1 MiB + N × 8 KiB) and is
//   written whole with O_DIRECT (8 KiB: aligned for 512 B and 4 KiB sectors).
//   The text is padded with NUL bytes to the slot size; an all-NUL slot is
//   free. The slot number is in the LV's MD_<N> tag, and the block names its
//   own volume (VOLUME=) so a stale slot is never taken for another volume's.
//   The first 1 MiB of the metadata LV is reserved (domain metadata lives in
//   VG tags, see domain-metadata.ts).
//
// The block, in this order, ending with EOF:
//   VERSION=1            format version of this block
//   DOMAIN=<sdUUID>
//   IMAGE=<imgUUID>
//   VOLUME=<volUUID>
//   PUUID=<parent volUUID, or 00000000-0000-0000-0000-000000000000>
//   CAP=<virtual size in bytes>
//   FORMAT=COW|RAW
//   TYPE=SPARSE|PREALLOCATED
//   DISKTYPE=<free text, default DATA>
//   DESCRIPTION=<≤ 210 bytes of UTF-8, no control characters>
//   LEGALITY=LEGAL|ILLEGAL|FAKE
//   CTIME=<creation time, Unix seconds>
//   GEN=<generation 0-999>
//   VOLTYPE=SHARED       only on a template volume (VDSM's VOLTYPE): read only,
//                        a base thin clones in other images may name
//   EOF
import { StorageParamsError, VolumeMetadataError } from './errors.js';
import { BLANK_UUID, MiB, type Legality, type VolumeAllocation, type VolumeFormat } from './types.js';

export const METADATA_VERSION = 1;
export const SLOT_SIZE = 8192;
export const SLOT_AREA_OFFSET = MiB;
export const MAX_DESCRIPTION_BYTES = 210;
export const MAX_GENERATION = 999;

export interface VolumeMetadata {
  domain: string;
  image: string;
  volume: string;
  parent: string;
  capacity: number;
  format: VolumeFormat;
  type: VolumeAllocation;
  diskType: string;
  description: string;
  legality: Legality;
  ctime: number;
  generation: number;
  /** A template volume: never written again; thin clones of other images may sit on it. */
  shared?: boolean;
}

const FORMATS: readonly VolumeFormat[] = ['COW', 'RAW'];
const TYPES: readonly VolumeAllocation[] = ['SPARSE', 'PREALLOCATED'];
const LEGALITIES: readonly Legality[] = ['LEGAL', 'ILLEGAL', 'FAKE'];

export function checkDescription(d: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(d)) throw new StorageParamsError('volume description must not contain control characters');
  if (Buffer.byteLength(d) > MAX_DESCRIPTION_BYTES) throw new StorageParamsError(`volume description is longer than ${MAX_DESCRIPTION_BYTES} bytes`);
  return d;
}

export function encodeVolumeMetadata(md: VolumeMetadata): string {
  checkDescription(md.description);
  if (/[\n=]/.test(md.diskType) || !md.diskType) throw new StorageParamsError(`bad disk type ${JSON.stringify(md.diskType)}`);
  const lines = [
    `VERSION=${METADATA_VERSION}`,
    `DOMAIN=${md.domain}`,
    `IMAGE=${md.image}`,
    `VOLUME=${md.volume}`,
    `PUUID=${md.parent || BLANK_UUID}`,
    `CAP=${md.capacity}`,
    `FORMAT=${md.format}`,
    `TYPE=${md.type}`,
    `DISKTYPE=${md.diskType}`,
    `DESCRIPTION=${md.description}`,
    `LEGALITY=${md.legality}`,
    `CTIME=${md.ctime}`,
    `GEN=${md.generation}`,
    ...(md.shared ? ['VOLTYPE=SHARED'] : []),
    'EOF',
  ];
  return lines.join('\n') + '\n';
}

/** The block padded with NUL to one slot. */
export function encodeSlot(md: VolumeMetadata): Buffer {
  const buf = Buffer.alloc(SLOT_SIZE);
  const text = encodeVolumeMetadata(md);
  if (Buffer.byteLength(text) > SLOT_SIZE) throw new StorageParamsError('volume metadata does not fit in a slot');
  buf.write(text, 'utf8');
  return buf;
}

/** Parses a block (trailing NUL padding allowed). Throws VolumeMetadataError if it is not a complete, valid block. */
export function decodeVolumeMetadata(raw: string | Buffer, where?: Record<string, unknown>): VolumeMetadata {
  let text = typeof raw === 'string' ? raw : raw.toString('utf8');
  const nul = text.indexOf('\0');
  if (nul >= 0) text = text.slice(0, nul);
  const fields = new Map<string, string>();
  let ended = false;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line === 'EOF') { ended = true; break; }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new VolumeMetadataError(`bad line ${JSON.stringify(line.slice(0, 80))}`, where);
    fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  if (!ended) throw new VolumeMetadataError(text.length === 0 ? 'empty block' : 'block has no EOF line (torn or truncated)', where);
  const get = (k: string): string => {
    const v = fields.get(k);
    if (v === undefined) throw new VolumeMetadataError(`missing key ${k}`, where);
    return v;
  };
  const int = (k: string): number => {
    const s = get(k);
    if (!/^\d+$/.test(s)) throw new VolumeMetadataError(`${k} is not a non-negative integer: ${JSON.stringify(s)}`, where);
    return Number(s);
  };
  const oneOf = <T extends string>(k: string, allowed: readonly T[]): T => {
    const v = get(k);
    if (!(allowed as readonly string[]).includes(v)) throw new VolumeMetadataError(`${k} has unknown value ${JSON.stringify(v)}`, where);
    return v as T;
  };
  const version = int('VERSION');
  if (version !== METADATA_VERSION) throw new VolumeMetadataError(`unsupported metadata version ${version}`, where);
  return {
    domain: get('DOMAIN'),
    image: get('IMAGE'),
    volume: get('VOLUME'),
    parent: get('PUUID'),
    capacity: int('CAP'),
    format: oneOf('FORMAT', FORMATS),
    type: oneOf('TYPE', TYPES),
    diskType: get('DISKTYPE'),
    description: fields.get('DESCRIPTION') ?? '',
    legality: oneOf('LEGALITY', LEGALITIES),
    ctime: int('CTIME'),
    generation: int('GEN'),
    ...(fields.get('VOLTYPE') === 'SHARED' ? { shared: true } : {}),
  };
}

export function slotOffset(slot: number): number {
  return SLOT_AREA_OFFSET + slot * SLOT_SIZE;
}

/** How many slots a metadata LV of this size holds. */
export function slotCount(metadataLvBytes: number): number {
  return Math.max(0, Math.floor((metadataLvBytes - SLOT_AREA_OFFSET) / SLOT_SIZE));
}
