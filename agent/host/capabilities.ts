// Host.getCapabilities: static facts about the host, read from libvirt's
// capabilities XML, virNodeGetInfo and the version calls. The XML parsing and
// the arithmetic are pure functions so that they are tested without libvirt.
import { stat } from 'node:fs/promises';
import { XMLParser } from 'fast-xml-parser';
import type { ResultOf } from '../../api/schema.js';
import { LibvirtUnavailableApiError } from '../../api/errors.js';
import type { Connection, NodeInfo } from '../libvirt/index.js';

/** Everything but `hooks`, which the hook inventory adds. */
/** What this module reports: the hooks and the host network fields come from their own services. */
export type HostCapabilities = Omit<ResultOf<'Host.getCapabilities'>, 'hooks' | keyof ResultOf<'Host.getNetworkCapabilities'>>;

/** One host CPU as listed in a NUMA cell. Offline CPUs carry only their id. */
export interface CellCpu {
  id: number;
  socketId?: number;
  dieId?: number;
  coreId?: number;
}

export interface ParsedCapabilities {
  uuid: string;
  cpuArch: string;
  cpuModel: string;
  cpuVendor: string;
  /** Host CPU feature names, in libvirt's order, without duplicates. */
  cpuFlags: string[];
  /** libvirt's <host><cpu><topology> as is: sockets (per NUMA node), dies per socket, cores per die, threads per core. */
  topology: { sockets: number; dies: number; cores: number; threads: number };
  cells: { id: string; cpus: CellCpu[]; memoryMiB: number }[];
  /** Domain types offered for the guest arch, sorted. */
  domainTypes: string[];
  /** Machine types (names and canonical names) for the guest arch, over all its domain types, sorted. */
  emulatedMachines: string[];
}

type Node = Record<string, unknown>;

// Elements that may repeat, by their path from the root; everything else is a single object.
const REPEATED = new Set([
  'capabilities.host.cpu.feature',
  'capabilities.host.topology.cells.cell',
  'capabilities.host.topology.cells.cell.cpus.cpu',
  'capabilities.guest',
  'capabilities.guest.arch.machine',
  'capabilities.guest.arch.domain',
  'capabilities.guest.arch.domain.machine',
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (_name, jpath) => typeof jpath === 'string' && REPEATED.has(jpath),
});

function obj(v: unknown): Node {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : {};
}

function list(v: unknown): Node[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(obj);
}

/** Text of an element, whether it was parsed as a bare string or as {#text, @attrs}. */
function text(v: unknown): string {
  if (typeof v === 'string') return v.trim();
  const t = obj(v)['#text'];
  return typeof t === 'string' ? t.trim() : '';
}

function attr(n: Node, name: string): string | undefined {
  const v = n[`@${name}`];
  return typeof v === 'string' ? v : undefined;
}

function intAttr(n: Node, name: string): number | undefined {
  const v = attr(n, name);
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v);
}

const UNIT_BYTES: Record<string, number> = {
  b: 1, bytes: 1, k: 1024, kib: 1024, kb: 1000, m: 1024 ** 2, mib: 1024 ** 2, mb: 1e6,
  g: 1024 ** 3, gib: 1024 ** 3, gb: 1e9, t: 1024 ** 4, tib: 1024 ** 4, tb: 1e12,
};

/** A libvirt scaled integer (<memory unit='KiB'>n</memory>; KiB when no unit) in whole MiB. */
export function toMiB(value: string, unit = 'KiB'): number {
  const scale = UNIT_BYTES[unit.toLowerCase()];
  const n = Number(value.trim());
  if (scale === undefined || value.trim() === '' || !Number.isFinite(n)) {
    throw new Error(`unparsable libvirt size ${JSON.stringify(value)} ${unit}`);
  }
  return Math.floor((n * scale) / 1024 ** 2);
}

function uniqSorted(xs: Iterable<string>): string[] {
  return [...new Set(xs)].filter((x) => x !== '').sort();
}

/** Parses libvirt's capabilities XML; guest facts are those for guestArch. */
export function parseCapabilitiesXml(xml: string, guestArch = 'x86_64'): ParsedCapabilities {
  const root = obj(obj(parser.parse(xml) as unknown).capabilities);
  const host = obj(root.host);
  if (Object.keys(host).length === 0) throw new Error('libvirt capabilities XML has no <host>');
  const cpu = obj(host.cpu);
  const topo = obj(cpu.topology);

  const cells = list(obj(obj(host.topology).cells).cell).map((c) => {
    const mem = c.memory;
    return {
      id: attr(c, 'id') ?? '0',
      memoryMiB: mem === undefined ? 0 : toMiB(text(mem), attr(obj(mem), 'unit')),
      cpus: list(obj(c.cpus).cpu).flatMap((x): CellCpu[] => {
        const id = intAttr(x, 'id');
        if (id === undefined) return [];
        const out: CellCpu = { id };
        const socketId = intAttr(x, 'socket_id');
        const dieId = intAttr(x, 'die_id');
        const coreId = intAttr(x, 'core_id');
        if (socketId !== undefined) out.socketId = socketId;
        if (dieId !== undefined) out.dieId = dieId;
        if (coreId !== undefined) out.coreId = coreId;
        return [out];
      }),
    };
  });

  const domainTypes: string[] = [];
  const machines: string[] = [];
  const addMachines = (ms: unknown): void => {
    for (const m of Array.isArray(ms) ? ms : ms === undefined ? [] : [ms]) {
      machines.push(text(m));
      machines.push(attr(obj(m), 'canonical') ?? '');
    }
  };
  for (const guest of list(root.guest)) {
    const arch = obj(guest.arch);
    if (attr(arch, 'name') !== guestArch) continue;
    addMachines(arch.machine);
    for (const d of list(arch.domain)) {
      const type = attr(d, 'type');
      if (type) domainTypes.push(type);
      addMachines(d.machine);
    }
  }

  return {
    uuid: text(host.uuid),
    cpuArch: text(cpu.arch),
    cpuModel: text(cpu.model),
    cpuVendor: text(cpu.vendor),
    cpuFlags: [...new Set(list(cpu.feature).map((f) => attr(f, 'name') ?? '').filter((n) => n !== ''))],
    topology: {
      sockets: intAttr(topo, 'sockets') ?? 1,
      dies: intAttr(topo, 'dies') ?? 1,
      cores: intAttr(topo, 'cores') ?? 1,
      threads: intAttr(topo, 'threads') ?? 1,
    },
    cells,
    domainTypes: uniqSorted(domainTypes),
    emulatedMachines: uniqSorted(machines),
  };
}

/**
 * Whole-host CPU counts as VDSM reports them: sockets, physical cores and
 * online logical CPUs, counted from the CPUs libvirt lists in the NUMA cells.
 * When it lists none with their placement, libvirt's topology is multiplied
 * out (its sockets are per NUMA node).
 */
export function cpuTotals(p: ParsedCapabilities): { sockets: number; cores: number; threads: number } {
  const online = p.cells.flatMap((c) => c.cpus).filter((c) => c.socketId !== undefined);
  if (online.length > 0) {
    const sockets = new Set(online.map((c) => c.socketId));
    const cores = new Set(online.map((c) => `${c.socketId}/${c.dieId ?? 0}/${c.coreId ?? c.id}`));
    return { sockets: sockets.size, cores: cores.size, threads: online.length };
  }
  const { sockets, dies, cores, threads } = p.topology;
  const totalSockets = sockets * Math.max(1, p.cells.length);
  const totalCores = totalSockets * dies * cores;
  return { sockets: totalSockets, cores: totalCores, threads: totalCores * threads };
}

/** libvirt's version integer (major * 1,000,000 + minor * 1,000 + micro) as "major.minor.micro". */
export function formatLibvirtVersion(n: number): string {
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a libvirt version number: ${n}`);
  return `${Math.floor(n / 1_000_000)}.${Math.floor((n % 1_000_000) / 1000)}.${n % 1000}`;
}

export interface CapabilityInputs {
  parsed: ParsedCapabilities;
  hostname: string;
  nodeInfo: NodeInfo;
  versions: { hypervisor: number; libvirt: number };
  kvmDevicePresent: boolean;
  softwareVersion: string;
  defaultDomainType: string;
}

/** Assembles the API result from what was read; pure. */
export function buildCapabilities(i: CapabilityInputs): HostCapabilities {
  const { parsed: p } = i;
  const totals = cpuTotals(p);
  const numaNodes: HostCapabilities['numaNodes'] = {};
  for (const c of p.cells) {
    numaNodes[c.id] = { cpus: c.cpus.map((x) => x.id).sort((a, b) => a - b), totalMemory: c.memoryMiB };
  }
  return {
    uuid: p.uuid,
    hostname: i.hostname,
    cpuModel: p.cpuModel,
    cpuVendor: p.cpuVendor,
    cpuFlags: p.cpuFlags,
    cpuSockets: totals.sockets,
    cpuCores: totals.cores,
    cpuThreads: totals.threads,
    cpuTopology: { sockets: totals.sockets, dies: p.topology.dies, cores: p.topology.cores, threads: p.topology.threads },
    onlineCpus: i.nodeInfo.cpus,
    memSize: Math.floor(i.nodeInfo.memoryKiB / 1024),
    numaNodes,
    kvmEnabled: p.domainTypes.includes('kvm') && i.kvmDevicePresent,
    domainTypes: p.domainTypes,
    defaultDomainType: i.defaultDomainType,
    emulatedMachines: p.emulatedMachines,
    libvirtVersion: formatLibvirtVersion(i.versions.libvirt),
    qemuVersion: formatLibvirtVersion(i.versions.hypervisor),
    software_version: i.softwareVersion,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads everything Host.getCapabilities reports. kvmDevice is for tests (default /dev/kvm). */
export async function hostCapabilities(
  conn: Connection,
  o: { softwareVersion: string; defaultDomainType: string; kvmDevice?: string },
): Promise<HostCapabilities> {
  const [xml, hostname, nodeInfo, versions, kvmDevicePresent] = await Promise.all([
    conn.capabilities(), conn.hostname(), conn.nodeInfo(), conn.versions(), exists(o.kvmDevice ?? '/dev/kvm'),
  ]);
  return buildCapabilities({
    parsed: parseCapabilitiesXml(xml), hostname, nodeInfo, versions, kvmDevicePresent,
    softwareVersion: o.softwareVersion, defaultDomainType: o.defaultDomainType,
  });
}

/** Host.getCapabilities but its hooks: the host's facts and its networks' capabilities, read together. */
export type CapabilitiesWithoutHooks = Omit<ResultOf<'Host.getCapabilities'>, 'hooks'>;

/**
 * Reads the host's capabilities (from libvirt) and its network capabilities
 * (from the host networks) at once and merges them. CONNECTION throws while
 * libvirt is not connected: the call then fails with 1001, the engine's cue to
 * ask again later.
 */
export async function capabilitiesWithNetworks(
  connection: () => Connection,
  networks: { capabilities(): Promise<ResultOf<'Host.getNetworkCapabilities'>> },
  o: { softwareVersion: string; defaultDomainType: string },
): Promise<CapabilitiesWithoutHooks> {
  let conn: Connection;
  try {
    conn = connection();
  } catch (e) {
    throw new LibvirtUnavailableApiError({ cause: e });
  }
  const [host, net] = await Promise.all([hostCapabilities(conn, o), networks.capabilities()]);
  return { ...host, ...net };
}
