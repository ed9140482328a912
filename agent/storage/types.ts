// The storage model's vocabulary (VDSM names) and the records the layer returns.
import { StorageParamsError } from './errors.js';

export const BLANK_UUID = '00000000-0000-0000-0000-000000000000';
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export type DomainType = 'file' | 'block';
export type DomainClass = 'Data' | 'Iso' | 'Backup';
export type DomainRole = 'Regular' | 'Master';
export type VolumeFormat = 'COW' | 'RAW';
export type VolumeAllocation = 'SPARSE' | 'PREALLOCATED';
export type VolumeRole = 'LEAF' | 'INTERNAL' | 'SHARED';
export type Legality = 'LEGAL' | 'ILLEGAL' | 'FAKE';

/** The special volumes of a domain: dom_md files on file domains, LVs on block domains. */
export const SPECIAL_VOLUMES = ['metadata', 'ids', 'leases', 'inbox', 'outbox'] as const;
export type SpecialVolume = (typeof SPECIAL_VOLUMES)[number];

/** Sizes in MiB, as VDSM's (leases: 2048 slots of 1 MiB; inbox/outbox: 4 KiB per host for 250+ hosts). */
export const SPECIAL_SIZES_MIB: Record<SpecialVolume, number> = {
  metadata: 128,
  ids: 8,
  leases: 2048,
  inbox: 16,
  outbox: 16,
};

/** The domain's own metadata: dom_md/metadata on file domains, VG tags on block domains. */
export interface DomainMetadata {
  sdUUID: string;
  type: DomainType;
  class: DomainClass;
  description: string;
  version: number;
  poolUUID: string;
  role: DomainRole;
}

export interface DomainInfo extends DomainMetadata {
  /** File: the domain directory. Block: the VG name. */
  location: string;
  /** Block only: the PVs of the VG. */
  pvs?: string[];
  /** Block only: VG extent size in bytes. */
  extentSize?: number;
}

export interface DomainStats {
  sdUUID: string;
  totalBytes: number;
  freeBytes: number;
  /** Block: number of LVs; file: number of volumes. */
  volumeCount: number;
}

/** What listing a domain knows of a volume without reading its metadata block. */
export interface VolumeRecord {
  volUUID: string;
  imgUUID: string;
  parentUUID: string;
}

export interface VolumeInfo {
  uuid: string;
  domain: string;
  image: string;
  parent: string;
  capacity: number;
  format: VolumeFormat;
  type: VolumeAllocation;
  voltype: VolumeRole;
  disktype: string;
  description: string;
  legality: Legality;
  generation: number;
  ctime: number;
  /** Bytes: the file size, or the LV size on block. */
  apparentsize: number;
  /** Bytes actually allocated: st_blocks × 512 on file, the LV size on block. */
  truesize: number;
}

export interface VolumeSize {
  apparentsize: number;
  truesize: number;
}

export interface CreateVolumeParams {
  imgUUID: string;
  volUUID: string;
  /** Virtual size in bytes. A snapshot's must be ≥ its parent's. */
  capacity: number;
  format: VolumeFormat;
  allocation: VolumeAllocation;
  /** A COW volume may sit on a parent volume of the same image (a snapshot). */
  parentUUID?: string;
  /** A thin clone: the parent is a SHARED (template) volume of this other image, in the same domain. */
  parentImgUUID?: string;
  description?: string;
  diskType?: string;
  /** Block COW sparse only: the initial LV size in bytes (default: the domain's thinInitialSize). */
  initialSize?: number;
}

/** How a task drives a long SPM operation: it may stop it, and it records the time of each phase. */
export interface OperationControl {
  /** Aborted by Task.stop: running commands are killed and the operation undoes its own partial work. */
  signal?: AbortSignal;
  /** Called as each phase ends, with its name. */
  phase?: (name: string) => void;
}

export interface PreparedVolume {
  volUUID: string;
  /** The image the volume belongs to (a template's, for the base of a thin clone). */
  imgUUID: string;
  /** A template volume of a thin clone: only ever read. */
  shared?: boolean;
  path: string;
  format: VolumeFormat;
}

export interface PreparedImage {
  imgUUID: string;
  /** Path of the leaf (the volume a VM writes to). */
  path: string;
  /** Base first, leaf last. */
  chain: PreparedVolume[];
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** UUIDs name directories, files, VGs and LVs: only the canonical lower-case form is accepted. */
export function checkUUID(what: string, v: unknown): string {
  if (typeof v !== 'string' || !UUID_RE.test(v)) throw new StorageParamsError(`${what} must be a lower-case UUID, got ${JSON.stringify(v)}`);
  return v;
}

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}
