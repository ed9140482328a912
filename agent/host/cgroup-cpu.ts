// Host CPU usage from a cgroup-v1 cpuacct group, for a host that is itself a container or a
// nested host sharing its kernel with others: there /proc/stat counts the whole machine, so every
// such host would report the same CPU. The group's cpuacct.usage counts, in ns, the CPU time of
// every process in it (the host's daemons and the QEMU processes they start), and its use over an
// interval is that delta over (wall time × the CPUs the host may use): the CPUs this process may
// run on, or fewer when a CFS quota (cpu.cfs_quota_us / cpu.cfs_period_us) bounds the host.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

export interface CgroupCpuSource {
  /** directory of the cpuacct group (cpuacct.usage, cpuacct.usage_sys) */
  cpuacctDir: string;
  /** directory of the cpu group whose CFS quota bounds the host; '' or absent: no quota read */
  quotaDir?: string;
}

export interface CgroupCpuSample {
  /** monotonic ms */
  at: number;
  /** cpuacct.usage: ns of CPU used by the group since it was made */
  usageNs: number;
  /** cpuacct.usage_sys: the part in the kernel (0 on kernels before 4.7, which lack the file) */
  sysNs: number;
  /** CPUs the host may use at this sample (may be fractional under a quota) */
  cpus: number;
}

function whole(text: string, what: string): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`unparsable ${what}: ${JSON.stringify(text.slice(0, 40))}`);
  return n;
}

async function optional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** CPUs under a CFS quota: quota/period, or undefined when there is none (-1) or it cannot be read. */
export function quotaCpus(quotaText: string | undefined, periodText: string | undefined): number | undefined {
  if (quotaText === undefined || periodText === undefined) return undefined;
  const quota = whole(quotaText, 'cpu.cfs_quota_us');
  const period = whole(periodText, 'cpu.cfs_period_us');
  return quota > 0 && period > 0 ? quota / period : undefined;
}

export async function readCgroupCpu(src: CgroupCpuSource, at: number, cpusOnline: number = availableParallelism()): Promise<CgroupCpuSample> {
  const [usage, sys, quota, period] = await Promise.all([
    readFile(join(src.cpuacctDir, 'cpuacct.usage'), 'utf8'),
    optional(join(src.cpuacctDir, 'cpuacct.usage_sys')),
    src.quotaDir ? optional(join(src.quotaDir, 'cpu.cfs_quota_us')) : undefined,
    src.quotaDir ? optional(join(src.quotaDir, 'cpu.cfs_period_us')) : undefined,
  ]);
  const limit = quotaCpus(quota, period);
  return {
    at,
    usageNs: whole(usage, 'cpuacct.usage'),
    sysNs: sys === undefined ? 0 : whole(sys, 'cpuacct.usage_sys'),
    cpus: Math.min(cpusOnline, limit ?? Infinity),
  };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const clampPct = (x: number): number => Math.min(100, Math.max(0, x));

/**
 * user, sys and idle in % of the CPUs the host may use, over the interval between two samples
 * (the CPU count of the later one: a quota changed meanwhile applies from then). Usage above the
 * capacity (a quota enforced per period, rounding) reads as 100 %.
 */
export function cgroupCpuPercent(prev: CgroupCpuSample, cur: CgroupCpuSample): { cpuUser: number; cpuSys: number; cpuIdle: number } {
  const capacityNs = (cur.at - prev.at) * 1e6 * cur.cpus;
  if (capacityNs <= 0) return { cpuUser: 0, cpuSys: 0, cpuIdle: 0 };
  const used = Math.max(0, cur.usageNs - prev.usageNs);
  const sys = Math.min(used, Math.max(0, cur.sysNs - prev.sysNs));
  const total = clampPct((used * 100) / capacityNs);
  const cpuSys = round2(Math.min(total, (sys * 100) / capacityNs));
  const user = round2(Math.max(0, total - cpuSys));
  return { cpuUser: user, cpuSys, cpuIdle: round2(100 - total) };
}
