// Host.getStats: host utilisation from /proc (CPU from a cgroup instead when the host shares its
// kernel: cgroup-cpu.ts). Each sample() reads the files once and keeps the previous sample;
// current() reports CPU percentages and NIC rates over the interval between the two. The parsers
// are pure.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResultOf } from '../../api/schema.js';
import { cgroupCpuPercent, readCgroupCpu, type CgroupCpuSample, type CgroupCpuSource } from './cgroup-cpu.js';

export type HostStats = ResultOf<'Host.getStats'>;

/** The aggregate "cpu" line of /proc/stat, in clock ticks since boot. */
export interface CpuTimes {
  user: number; nice: number; system: number; idle: number;
  iowait: number; irq: number; softirq: number; steal: number;
}

export interface MemInfo { totalKiB: number; freeKiB: number; availableKiB: number }

export interface NicCounters { rxBytes: number; txBytes: number }

export interface ProcSample {
  /** Monotonic time of the sample, in ms. */
  at: number;
  cpu: CpuTimes;
  mem: MemInfo;
  loadAvg: [number, number, number];
  net: Record<string, NicCounters>;
  uptime: number;
  /** the host's cgroup CPU use, when the sampler reads CPU from a cgroup instead of cpu above */
  cgroupCpu?: CgroupCpuSample;
}

function num(s: string | undefined, what: string): number {
  const n = Number(s);
  if (s === undefined || s === '' || !Number.isFinite(n)) throw new Error(`unparsable ${what}: ${JSON.stringify(s)}`);
  return n;
}

export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) throw new Error('/proc/stat has no aggregate cpu line');
  const f = line.trim().split(/\s+/).slice(1);
  // Fields after idle came with later kernels; a missing one counts as 0.
  const at = (i: number, name: string): number => (f[i] === undefined ? 0 : num(f[i], `/proc/stat cpu ${name}`));
  return {
    user: num(f[0], '/proc/stat cpu user'), nice: num(f[1], '/proc/stat cpu nice'),
    system: num(f[2], '/proc/stat cpu system'), idle: num(f[3], '/proc/stat cpu idle'),
    iowait: at(4, 'iowait'), irq: at(5, 'irq'), softirq: at(6, 'softirq'), steal: at(7, 'steal'),
  };
}

export function parseMeminfo(text: string): MemInfo {
  const kib = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) kib.set(m[1], Number(m[2]));
  }
  const get = (k: string): number => {
    const v = kib.get(k);
    if (v === undefined) throw new Error(`/proc/meminfo has no ${k}`);
    return v;
  };
  return { totalKiB: get('MemTotal'), freeKiB: get('MemFree'), availableKiB: get('MemAvailable') };
}

export function parseLoadavg(text: string): [number, number, number] {
  const f = text.trim().split(/\s+/);
  return [num(f[0], 'loadavg 1'), num(f[1], 'loadavg 5'), num(f[2], 'loadavg 15')];
}

/** /proc/net/dev: per interface, received and transmitted bytes. */
export function parseNetDev(text: string): Record<string, NicCounters> {
  const out: Record<string, NicCounters> = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.includes('|')) continue; // the two header lines
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/);
    out[name] = { rxBytes: num(f[0], `${name} rx bytes`), txBytes: num(f[8], `${name} tx bytes`) };
  }
  return out;
}

export function parseUptime(text: string): number {
  return num(text.trim().split(/\s+/)[0], 'uptime');
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** user (user+nice), sys (system+irq+softirq) and idle (the rest, steal included) in % of all CPUs. */
export function cpuPercent(prev: CpuTimes, cur: CpuTimes): { cpuUser: number; cpuSys: number; cpuIdle: number } {
  const d = (k: keyof CpuTimes): number => Math.max(0, cur[k] - prev[k]);
  const total = d('user') + d('nice') + d('system') + d('idle') + d('iowait') + d('irq') + d('softirq') + d('steal');
  if (total <= 0) return { cpuUser: 0, cpuSys: 0, cpuIdle: 0 };
  const cpuUser = round2(((d('user') + d('nice')) * 100) / total);
  const cpuSys = round2(((d('system') + d('irq') + d('softirq')) * 100) / total);
  return { cpuUser, cpuSys, cpuIdle: round2(Math.max(0, 100 - cpuUser - cpuSys)) };
}

/** Bytes/s over the interval; 0 for a new interface or a counter that went back (reset or wrap). */
export function nicRates(prev: Record<string, NicCounters> | undefined, cur: Record<string, NicCounters>,
  seconds: number): HostStats['network'] {
  const out: HostStats['network'] = {};
  for (const [name, c] of Object.entries(cur)) {
    const p = prev?.[name];
    const rate = (now: number, before: number | undefined): number =>
      before === undefined || seconds <= 0 || now < before ? 0 : round2((now - before) / seconds);
    out[name] = { rxBytes: c.rxBytes, txBytes: c.txBytes, rxRate: rate(c.rxBytes, p?.rxBytes), txRate: rate(c.txBytes, p?.txBytes) };
  }
  return out;
}

const mib = (kib: number): number => Math.floor(kib / 1024);

/** Host.getStats from the previous and the latest sample (previous undefined after the first). */
export function computeHostStats(prev: ProcSample | undefined, cur: ProcSample, vmCount: number, vmActive: number): HostStats {
  const cpu = !prev ? { cpuUser: 0, cpuSys: 0, cpuIdle: 0 }
    : prev.cgroupCpu && cur.cgroupCpu ? cgroupCpuPercent(prev.cgroupCpu, cur.cgroupCpu) : cpuPercent(prev.cpu, cur.cpu);
  return {
    ...cpu,
    memTotal: mib(cur.mem.totalKiB), memFree: mib(cur.mem.freeKiB), memAvailable: mib(cur.mem.availableKiB),
    loadAvg: [...cur.loadAvg],
    network: nicRates(prev?.net, cur.net, prev ? (cur.at - prev.at) / 1000 : 0),
    uptime: cur.uptime,
    vmCount, vmActive,
  };
}

export interface HostStatsSamplerOptions {
  /** Where proc is mounted; tests point it at fixture files. Default /proc. */
  procRoot?: string;
  /** Monotonic clock in ms; default performance.now. */
  now?: () => number;
  /** Host CPU from this cgroup rather than /proc/stat (setting host.cpuAccountingCgroup). */
  cgroupCpu?: CgroupCpuSource;
}

export class HostStatsSampler {
  private readonly procRoot: string;
  private readonly now: () => number;
  private readonly cgroupCpu: CgroupCpuSource | undefined;
  private prev: ProcSample | undefined;
  private last: ProcSample | undefined;
  private inflight: Promise<ProcSample> | undefined;

  constructor(o: HostStatsSamplerOptions = {}) {
    this.procRoot = o.procRoot ?? '/proc';
    this.now = o.now ?? (() => performance.now());
    this.cgroupCpu = o.cgroupCpu;
  }

  /** Reads /proc once; the sample before becomes the previous one. Concurrent calls share one read. */
  sample(): Promise<ProcSample> {
    this.inflight ??= this.read().then(
      (s) => { this.prev = this.last; this.last = s; this.inflight = undefined; return s; },
      (e: unknown) => { this.inflight = undefined; throw e; },
    );
    return this.inflight;
  }

  /** True once sample() has succeeded at least once. */
  get hasSample(): boolean {
    return this.last !== undefined;
  }

  /** Host.getStats over the last interval. Throws until sample() has run once. */
  current(vmCount: number, vmActive: number): HostStats {
    if (!this.last) throw new Error('HostStatsSampler.current() before the first sample()');
    return computeHostStats(this.prev, this.last, vmCount, vmActive);
  }

  private async read(): Promise<ProcSample> {
    const file = (p: string): Promise<string> => readFile(join(this.procRoot, p), 'utf8');
    const at = this.now();
    const [stat, meminfo, loadavg, netdev, uptime, cgroupCpu] = await Promise.all(
      [file('stat'), file('meminfo'), file('loadavg'), file('net/dev'), file('uptime'), this.cgroupCpu && readCgroupCpu(this.cgroupCpu, at)]);
    return {
      at, ...(cgroupCpu && { cgroupCpu }),
      cpu: parseProcStat(stat), mem: parseMeminfo(meminfo), loadAvg: parseLoadavg(loadavg),
      net: parseNetDev(netdev), uptime: parseUptime(uptime),
    };
  }
}
