// The storage layer's entry points: settings (the storage.* tunables of
// agent/config/settings.ts), the activation driver they pick, and opening or
// creating domains with them.
import type { Logger } from '../log.js';
import { defaults } from '../config/load.js';
import type { Config } from '../config/settings.js';
import { LvmActivationDriver, type ActivationDriver, type ActivationKind } from './activation.js';
import { BlockStorageDomain, type BlockDomainOptions, type CreateBlockDomainOptions } from './block-domain.js';
import type { Runner } from './exec.js';
import { FileStorageDomain, type CreateFileDomainOptions, type FileDomainOptions } from './file-domain.js';
import { LoopActivationDriver } from './loop-activation.js';
import type { DomainClass } from './types.js';

export interface StorageSettings {
  activation: ActivationKind;
  loopDataDir: string;
  loopLinkDir: string;
  lvmTimeoutMs: number;
  qemuImgTimeoutMs: number;
  /** One qemu-img convert of a copy or move. */
  copyTimeoutMs: number;
  ioTimeoutMs: number;
  extentSizeMiB: number;
  thinInitialSizeMiB: number;
  maxSizeFactor: number;
  /** File domains: how PREALLOCATED volumes are allocated (falloc, or full: write zeros). */
  filePreallocation: 'falloc' | 'full';
}

/** The storage.* settings of a config. */
export function storageSettings(c: Config): StorageSettings {
  return {
    activation: c['storage.activation'], loopDataDir: c['storage.loopDataDir'], loopLinkDir: c['storage.loopLinkDir'],
    lvmTimeoutMs: c['storage.lvmTimeoutMs'], qemuImgTimeoutMs: c['storage.qemuImgTimeoutMs'], copyTimeoutMs: c['storage.copyTimeoutMs'], ioTimeoutMs: c['storage.ioTimeoutMs'],
    extentSizeMiB: c['storage.extentSizeMiB'], thinInitialSizeMiB: c['storage.thinInitialSizeMiB'], maxSizeFactor: c['storage.maxSizeFactor'],
    filePreallocation: c['storage.filePreallocation'],
  };
}

/** Production defaults: the settings table's (agent/config/settings.ts), not a copy of them. */
export const STORAGE_DEFAULTS: StorageSettings = storageSettings(defaults());

export function createActivationDriver(s: StorageSettings, o: { log?: Logger; runner?: Runner } = {}): ActivationDriver {
  const common = { timeoutMs: s.ioTimeoutMs, ...(o.log ? { log: o.log } : {}), ...(o.runner ? { runner: o.runner } : {}) };
  return s.activation === 'loop'
    ? new LoopActivationDriver({ dataDir: s.loopDataDir, linkDir: s.loopLinkDir, ...common })
    : new LvmActivationDriver(common);
}

/** Everything a block domain needs, from settings. */
export function blockDomainOptions(s: StorageSettings, driver: ActivationDriver, devices: readonly string[], o: { log?: Logger; runner?: Runner } = {}): BlockDomainOptions {
  return {
    devices, driver, lvmTimeoutMs: s.lvmTimeoutMs, qemuImgTimeoutMs: s.qemuImgTimeoutMs, ioTimeoutMs: s.ioTimeoutMs,
    thinInitialSizeMiB: s.thinInitialSizeMiB, maxSizeFactor: s.maxSizeFactor,
    ...(o.log ? { log: o.log } : {}), ...(o.runner ? { runner: o.runner } : {}),
  };
}

export function fileDomainOptions(s: StorageSettings, root: string, o: { log?: Logger; runner?: Runner } = {}): FileDomainOptions {
  return {
    root, qemuImgTimeoutMs: s.qemuImgTimeoutMs, ioTimeoutMs: s.ioTimeoutMs, preallocation: s.filePreallocation,
    ...(o.log ? { log: o.log } : {}), ...(o.runner ? { runner: o.runner } : {}),
  };
}

export type DomainSpec =
  | { type: 'block'; devices: readonly string[] }
  | { type: 'file'; root: string };

export interface DomainContext {
  settings: StorageSettings;
  driver: ActivationDriver;
  log?: Logger;
  runner?: Runner;
}

export async function openDomain(ctx: DomainContext, sdUUID: string, spec: DomainSpec): Promise<BlockStorageDomain | FileStorageDomain> {
  const o = { ...(ctx.log ? { log: ctx.log } : {}), ...(ctx.runner ? { runner: ctx.runner } : {}) };
  return spec.type === 'block'
    ? BlockStorageDomain.open(sdUUID, blockDomainOptions(ctx.settings, ctx.driver, spec.devices, o))
    : FileStorageDomain.open(sdUUID, fileDomainOptions(ctx.settings, spec.root, o));
}

export async function createDomain(ctx: DomainContext, sdUUID: string, spec: DomainSpec,
  extra: { description?: string; domainClass?: DomainClass } & Partial<Pick<CreateBlockDomainOptions, 'force' | 'pvMetadataSizeMiB' | 'specialSizesMiB'>> = {}): Promise<BlockStorageDomain | FileStorageDomain> {
  const o = { ...(ctx.log ? { log: ctx.log } : {}), ...(ctx.runner ? { runner: ctx.runner } : {}) };
  if (spec.type === 'block') {
    return BlockStorageDomain.create(sdUUID, { ...blockDomainOptions(ctx.settings, ctx.driver, spec.devices, o), extentSizeMiB: ctx.settings.extentSizeMiB, ...extra });
  }
  const fo: CreateFileDomainOptions = { ...fileDomainOptions(ctx.settings, spec.root, o), ...extra };
  return FileStorageDomain.create(sdUUID, fo);
}

export { BlockStorageDomain, FileStorageDomain, LoopActivationDriver, LvmActivationDriver };
export type { ActivationDriver };
