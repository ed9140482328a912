// Loads the compiled addon and declares its raw shape. Only this package's
// facade (connection.ts, domain.ts, domain-stats.ts, sanlock.ts,
// inherited-fds.ts, process-memory.ts) talks to it; everything else uses the facade.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SanlockBinding } from './sanlock.js';
import type { ProcessMemoryBinding } from './process-memory.js';
import type { BlockJobBinding } from './block-jobs.js';

/** Opaque handles owned by the addon. */
export type ConnHandle = { readonly __brand: 'virConnectPtr' };
export type DomHandle = { readonly __brand: 'virDomainPtr' };

export type Int64 = number | bigint;
export type TypedParamsRecord = Record<string, number | bigint | string | boolean>;
export type TypedParamTuple = [name: string, type: number, value: number | bigint | string | boolean];

export interface RawDomainEvent {
  eventId: number;
  domain: { name: string; uuid: string; id: number };
  [field: string]: unknown;
}

/** The addon; its sanlock functions are declared in sanlock.ts, its process-memory ones in process-memory.ts. */
export interface NativeBinding extends SanlockBinding, ProcessMemoryBinding, BlockJobBinding {
  setErrorClass(ctor: new (message: string, detail: never) => Error): void;
  libVersion(): number;
  /** Sets FD_CLOEXEC on every inherited descriptor >= 3; returns how many it changed. */
  markInheritedFdsCloexec(): number;
  /** malloc_trim(0): true when memory was given back to the kernel. */

  open(uri: string | null, readOnly: boolean): Promise<ConnHandle>;
  close(c: ConnHandle): Promise<number>;
  setCloseCallback(c: ConnHandle, cb: (reason: number) => void): Promise<void>;
  setKeepAlive(c: ConnHandle, intervalSec: number, count: number): Promise<number>;
  isAlive(c: ConnHandle): boolean;
  getHostname(c: ConnHandle): Promise<string>;
  getURI(c: ConnHandle): Promise<string>;
  getCapabilities(c: ConnHandle): Promise<string>;
  getDomainCapabilities(c: ConnHandle, emulator: string | null, arch: string | null, machine: string | null,
    virttype: string | null, flags: number): Promise<string>;
  getVersions(c: ConnHandle): Promise<{ hypervisor: number; libvirt: number; type: string }>;
  nodeGetInfo(c: ConnHandle): Promise<NodeInfo>;
  connRestore(c: ConnHandle, path: string, dxml: string | null, flags: number): Promise<void>;
  nodeGetCPUStats(c: ConnHandle, cpu: number, flags: number): Promise<Record<string, Int64>>;
  nodeGetMemoryStats(c: ConnHandle, cell: number, flags: number): Promise<Record<string, Int64>>;

  listAllDomains(c: ConnHandle, flags: number): Promise<DomHandle[]>;
  lookupByName(c: ConnHandle, name: string): Promise<DomHandle>;
  lookupByUUID(c: ConnHandle, uuid: string): Promise<DomHandle>;
  defineXML(c: ConnHandle, xml: string, flags: number): Promise<DomHandle>;
  createXML(c: ConnHandle, xml: string, flags: number): Promise<DomHandle>;
  domainIdentity(d: DomHandle): { name: string; uuid: string; id: number };
  domainCreate(d: DomHandle, flags: number): Promise<void>;
  domainDestroy(d: DomHandle, flags: number): Promise<void>;
  domainShutdown(d: DomHandle, flags: number): Promise<void>;
  domainReboot(d: DomHandle, flags: number): Promise<void>;
  domainReset(d: DomHandle, flags: number): Promise<void>;
  domainUndefine(d: DomHandle, flags: number): Promise<void>;
  domainSuspend(d: DomHandle): Promise<void>;
  domainResume(d: DomHandle): Promise<void>;
  domainGetXMLDesc(d: DomHandle, flags: number): Promise<string>;
  domainGetInfo(d: DomHandle): Promise<DomainInfo>;
  domainGetState(d: DomHandle, flags: number): Promise<{ state: number; reason: number }>;
  domainGetMetadata(d: DomHandle, type: number, uri: string | null, flags: number): Promise<string>;
  domainSetMetadata(d: DomHandle, type: number, metadata: string | null, key: string | null, uri: string | null,
    flags: number): Promise<void>;

  getAllDomainStats(c: ConnHandle, stats: number, flags: number): Promise<RawDomainStats[]>;
  domainSetBlockThreshold(d: DomHandle, dev: string, threshold: Int64, flags: number): Promise<void>;
  domainGetBlockInfo(d: DomHandle, disk: string, flags: number): Promise<BlockInfo>;
  domainGetDiskErrors(d: DomHandle, flags: number): Promise<DiskErrors>;
  domainAttachDevice(d: DomHandle, xml: string, flags: number): Promise<void>;
  domainDetachDevice(d: DomHandle, xml: string, flags: number): Promise<void>;
  domainUpdateDevice(d: DomHandle, xml: string, flags: number): Promise<void>;
  domainSave(d: DomHandle, path: string, dxml: string | null, flags: number): Promise<void>;
  domainDetachDeviceAlias(d: DomHandle, alias: string, flags: number): Promise<void>;
  domainMigrateToURI3(d: DomHandle, dconnuri: string | null, params: TypedParamTuple[], flags: number): Promise<void>;
  domainMigrate3(d: DomHandle, dconn: ConnHandle, params: TypedParamTuple[], flags: number): Promise<DomHandle>;
  domainGetJobStats(d: DomHandle, flags: number): Promise<{ type: number; stats: TypedParamsRecord }>;
  domainAbortJob(d: DomHandle): Promise<void>;
  domainMigrateSetMaxDowntime(d: DomHandle, ms: Int64, flags: number): Promise<void>;
  domainMigrateSetMaxSpeed(d: DomHandle, mibPerSec: Int64, flags: number): Promise<void>;
  domainMigrateStartPostCopy(d: DomHandle, flags: number): Promise<void>;
  domainSnapshotCreateXML(d: DomHandle, xml: string, flags: number): Promise<string>;
  domainFSFreeze(d: DomHandle, flags: number): Promise<number>;
  domainFSThaw(d: DomHandle, flags: number): Promise<number>;
  connSaveImageGetXMLDesc(c: ConnHandle, path: string, flags: number): Promise<string>;
  domainQemuAgentCommand(d: DomHandle, cmd: string, timeoutSec: number, flags: number): Promise<string>;
  domainInterfaceAddresses(d: DomHandle, source: number, flags: number): Promise<InterfaceAddresses[]>;
  domainSetTime(d: DomHandle, seconds: Int64, nseconds: number, flags: number): Promise<void>;
  domainGetGuestInfo(d: DomHandle, types: number, flags: number): Promise<TypedParamsRecord>;

  domainEventRegister(c: ConnHandle, d: DomHandle | null, eventId: number,
    listener: (ev: RawDomainEvent) => void): Promise<number>;
  domainEventDeregister(c: ConnHandle, callbackId: number): Promise<void>;
}

export interface NodeInfo {
  model: string; memoryKiB: number; cpus: number; mhz: number;
  nodes: number; sockets: number; cores: number; threads: number;
}
export interface DomainInfo { state: number; maxMemKiB: Int64; memoryKiB: Int64; nrVirtCpu: number; cpuTimeNs: Int64 }
export interface BlockInfo { capacity: Int64; allocation: Int64; physical: Int64 }
/** Disk target → its pending I/O error, a DomainDiskErrorCode (NO_SPACE is ENOSPC). */
export type DiskErrors = Record<string, number>;
export interface RawDomainStats { name: string; uuid: string; stats: TypedParamsRecord }
export interface InterfaceAddresses {
  name: string; hwaddr: string; addrs: { type: number; addr: string; prefix: number }[];
}

function findAddon(): string {
  // dist/agent/libvirt/native.js and agent/libvirt/native.ts both sit two
  // levels under a directory that holds agent/libvirt/native/build.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'agent', 'libvirt', 'native', 'build', 'Release', 'hostvisor_libvirt.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('hostvisor libvirt addon is not built: run `npm run build`');
}

const require = createRequire(import.meta.url);
export const native: NativeBinding = require(process.env.HOSTVISOR_LIBVIRT_ADDON ?? findAddon()) as NativeBinding;
