// Pure computation of VM statistics from raw bulk domain stats
// (virConnectGetAllDomainStats records): counters come from the newest
// sample, rates and latencies from the difference with the sample before.
// No I/O here, so it is unit-testable on hand-made samples.
import type { Static } from '@sinclair/typebox';
import type { DiskStats, NicStats, VmStats } from '../../api/types.js';

/** One domain's typed parameters as returned by the bulk call (64-bit values as number or bigint). */
export type RawStats = Readonly<Record<string, number | bigint | string | boolean>>;

/** One domain's stats from one bulk call, with the wall-clock time (ms) taken just before the call. */
export interface RawSample {
  time: number;
  name: string;
  uuid: string;
  stats: RawStats;
}

/** The last two samples of a domain; prev is undefined after the first one. */
export interface DomainHistory {
  prev: RawSample | undefined;
  cur: RawSample;
}

export type DiskStatsValue = Static<typeof DiskStats>;
export type NicStatsValue = Static<typeof NicStats>;
type VmStatsValue = Static<typeof VmStats>;

/** The VmStats fields the sampler provides (status and exit info come from elsewhere). */
export type VmSampledStats = Pick<VmStatsValue, 'vmId' | 'vmName'> &
  Partial<Pick<VmStatsValue, 'cpuPct' | 'cpuUser' | 'cpuSys' | 'cpuTimeNs' | 'vcpuCount' | 'memoryKiB' |
    'disks' | 'network' | 'sampleTime'>>;

/** A device's fields inside a sample: stats plus its key prefix, e.g. 'block.2.'. */
export interface Dev {
  stats: RawStats;
  prefix: string;
}

function raw(s: RawStats, key: string): number | bigint | undefined {
  const v = s[key];
  if (typeof v === 'bigint') return v;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function num(s: RawStats, key: string): number | undefined {
  const v = raw(s, key);
  return v === undefined ? undefined : Number(v);
}

function toBigInt(v: number | bigint): bigint {
  return typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
}

/**
 * cur - prev of a counter, exact for bigints. 0 when either side is missing, and
 * when the counter went backwards (a domain restarted under the same uuid).
 */
function counterDelta(cur: RawStats, curKey: string, prev: RawStats | undefined, prevKey: string): number {
  if (prev === undefined) return 0;
  const a = raw(prev, prevKey);
  const b = raw(cur, curKey);
  if (a === undefined || b === undefined) return 0;
  const d = typeof a === 'number' && typeof b === 'number' ? b - a : Number(toBigInt(b) - toBigInt(a));
  return d > 0 ? d : 0;
}

function devDelta(cur: Dev, prev: Dev | undefined, field: string): number {
  return prev === undefined ? 0 : counterDelta(cur.stats, cur.prefix + field, prev.stats, prev.prefix + field);
}

function devNum(dev: Dev, field: string): number {
  return num(dev.stats, dev.prefix + field) ?? 0;
}

function perSecond(delta: number, dtSec: number): number {
  return dtSec > 0 ? delta / dtSec : 0;
}

/** Mean latency of the ops of the interval, in ms, from a delta of total ns; 0 without ops. */
function latencyMs(deltaNs: number, deltaOps: number): number {
  return deltaOps > 0 ? deltaNs / deltaOps / 1e6 : 0;
}

/** Devices of one group ('block' or 'net') by name -> their key prefix. The first of a name wins. */
export function devicePrefixes(stats: RawStats, group: 'block' | 'net'): Map<string, string> {
  const out = new Map<string, string>();
  const count = num(stats, `${group}.count`) ?? 0;
  for (let i = 0; i < count; i++) {
    const name = stats[`${group}.${i}.name`];
    if (typeof name === 'string' && !out.has(name)) out.set(name, `${group}.${i}.`);
  }
  return out;
}

export function diskStats(cur: Dev, prev: Dev | undefined, dtSec: number): DiskStatsValue {
  const d = (field: string) => devDelta(cur, prev, field);
  const rdOps = d('rd.reqs');
  const wrOps = d('wr.reqs');
  return {
    readBytes: devNum(cur, 'rd.bytes'),
    writeBytes: devNum(cur, 'wr.bytes'),
    readOps: devNum(cur, 'rd.reqs'),
    writeOps: devNum(cur, 'wr.reqs'),
    readRate: perSecond(d('rd.bytes'), dtSec),
    writeRate: perSecond(d('wr.bytes'), dtSec),
    readOpsRate: perSecond(rdOps, dtSec),
    writeOpsRate: perSecond(wrOps, dtSec),
    readLatencyMs: latencyMs(d('rd.times'), rdOps),
    writeLatencyMs: latencyMs(d('wr.times'), wrOps),
    capacity: devNum(cur, 'capacity'),
    allocation: devNum(cur, 'allocation'),
    physical: devNum(cur, 'physical'),
  };
}

export function nicStats(cur: Dev, prev: Dev | undefined, dtSec: number): NicStatsValue {
  return {
    rxBytes: devNum(cur, 'rx.bytes'),
    txBytes: devNum(cur, 'tx.bytes'),
    rxRate: perSecond(devDelta(cur, prev, 'rx.bytes'), dtSec),
    txRate: perSecond(devDelta(cur, prev, 'tx.bytes'), dtSec),
    rxPackets: devNum(cur, 'rx.pkts'),
    txPackets: devNum(cur, 'tx.pkts'),
    rxErrors: devNum(cur, 'rx.errs'),
    txErrors: devNum(cur, 'tx.errs'),
    rxDrops: devNum(cur, 'rx.drop'),
    txDrops: devNum(cur, 'tx.drop'),
  };
}

/** Per-device stats of one group, keyed by device name; a device is matched by name across samples. */
function groupStats<T>(
  group: 'block' | 'net', cur: RawStats, prev: RawStats | undefined, dtSec: number,
  compute: (cur: Dev, prev: Dev | undefined, dtSec: number) => T,
): Record<string, T> | undefined {
  const curDevs = devicePrefixes(cur, group);
  if (curDevs.size === 0) return undefined;
  const prevDevs = prev === undefined ? undefined : devicePrefixes(prev, group);
  const out: Record<string, T> = {};
  for (const [name, prefix] of curDevs) {
    const prevPrefix = prevDevs?.get(name);
    const prevDev = prev !== undefined && prevPrefix !== undefined ? { stats: prev, prefix: prevPrefix } : undefined;
    out[name] = compute({ stats: cur, prefix }, prevDev, dtSec);
  }
  return out;
}

/** CPU fields: cpuPct, cpuUser and cpuSys are % of one host CPU over the interval (0 with one sample). */
function cpuStats(cur: RawStats, prev: RawStats | undefined, dtNs: number): Partial<VmSampledStats> {
  const out: Partial<VmSampledStats> = {};
  const pct = (key: string) => (dtNs > 0 ? (counterDelta(cur, key, prev, key) / dtNs) * 100 : 0);
  const cpuTime = num(cur, 'cpu.time');
  if (cpuTime !== undefined) {
    out.cpuTimeNs = cpuTime;
    out.cpuPct = pct('cpu.time');
  }
  if (raw(cur, 'cpu.user') !== undefined) out.cpuUser = pct('cpu.user');
  if (raw(cur, 'cpu.system') !== undefined) out.cpuSys = pct('cpu.system');
  return out;
}

/** Stats of one domain from its newest sample and (for rates) the one before it. */
export function computeVmStats(cur: RawSample, prev?: RawSample): VmSampledStats {
  const usable = prev !== undefined && prev.uuid === cur.uuid && cur.time > prev.time ? prev : undefined;
  const dtMs = usable === undefined ? 0 : cur.time - usable.time;
  const p = usable?.stats;
  const out: VmSampledStats = { vmId: cur.uuid, vmName: cur.name, sampleTime: cur.time };
  Object.assign(out, cpuStats(cur.stats, p, dtMs * 1e6));
  const vcpus = num(cur.stats, 'vcpu.current');
  if (vcpus !== undefined) out.vcpuCount = vcpus;
  const balloon = num(cur.stats, 'balloon.current');
  if (balloon !== undefined) out.memoryKiB = balloon;
  const disks = groupStats('block', cur.stats, p, dtMs / 1000, diskStats);
  if (disks !== undefined) out.disks = disks;
  const network = groupStats('net', cur.stats, p, dtMs / 1000, nicStats);
  if (network !== undefined) out.network = network;
  return out;
}

/**
 * The history after one bulk call taken at `time`: every domain in the batch
 * keeps its previous newest sample as prev; domains absent from the batch
 * (gone, or no longer running/paused) are dropped.
 */
export function advanceHistory(
  history: ReadonlyMap<string, DomainHistory>,
  batch: readonly { name: string; uuid: string; stats: RawStats }[],
  time: number,
): Map<string, DomainHistory> {
  const next = new Map<string, DomainHistory>();
  for (const d of batch) {
    next.set(d.uuid, { prev: history.get(d.uuid)?.cur, cur: { time, name: d.name, uuid: d.uuid, stats: d.stats } });
  }
  return next;
}

/** Stats of every domain in the history, keyed by uuid. */
export function computeAllStats(history: ReadonlyMap<string, DomainHistory>): Map<string, VmSampledStats> {
  const out = new Map<string, VmSampledStats>();
  for (const [uuid, h] of history) out.set(uuid, computeVmStats(h.cur, h.prev));
  return out;
}
