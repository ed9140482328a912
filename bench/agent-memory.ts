// What an agent process's memory is, for the benchmarks' JSON: its resident
// pages by mapping (/proc/<pid>/smaps: the node binary, shared libraries, our
// libvirt addon, malloc's heap, other anonymous memory) and, from inside
// (bench/mem-probe.ts, asked with SIGUSR2), the V8 heap by space and the
// memory Node counts outside it (external, array buffers). All in MiB.
import { readFileSync } from 'node:fs';

/** The probe's log line says this. */
export const PROBE_MSG = 'bench-memory-probe';

export interface AgentMemory {
  rss: number;
  /**
   * VmRSS as the kernel splits it (/proc/<pid>/status): anonymous pages (heaps, stacks), file
   * pages (binary and libraries: clean, shared with other processes, dropped and read again
   * under memory pressure) and shared memory. RssFile is most of an idle agent's RSS.
   */
  status: { rss_anon: number; rss_file: number; rss_shmem: number };
  /** File-backed, shared with every other process that maps the same files. */
  file: { node_binary: number; shared_libs: number; addon: number; other: number };
  anon: { total: number; malloc_heap: number; stacks: number; other: number };
  /** From inside the agent; null when the probe did not answer. */
  v8: { heap_total: number; heap_used: number; new_space: number; old_space: number; code_space: number; large_objects: number; external: number; array_buffers: number } | null;
  threads: number;
}

const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;
const mibB = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

/** Resident KiB by kind of mapping, from /proc/<pid>/smaps. */
export function smapsKiB(pid: number): { nodeBinary: number; libs: number; addon: number; fileOther: number; mallocHeap: number; stacks: number; anonOther: number } {
  const out = { nodeBinary: 0, libs: 0, addon: 0, fileOther: 0, mallocHeap: 0, stacks: 0, anonOther: 0 };
  let kind: keyof typeof out = 'anonOther';
  const exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const [, inode, name = ''] = head;
      if (name === '[heap]') kind = 'mallocHeap';
      else if (name.startsWith('[stack')) kind = 'stacks';
      else if (inode === '0' || name.startsWith('[')) kind = 'anonOther';
      else if (name.endsWith('.node')) kind = 'addon';
      else if (/\.so(\.|$)/.test(name)) kind = 'libs';
      else if (name.endsWith('/node') || name === exe) kind = 'nodeBinary';
      else kind = 'fileOther';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]);
  }
  return out;
}

/** Asks the probe in the agent (SIGUSR2) and waits (bounded) for its line among the agent's logs. */
async function probe(pid: number, logs: string[], timeoutMs: number): Promise<AgentMemory['v8']> {
  const from = logs.length;
  process.kill(pid, 'SIGUSR2');
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    const line = logs.slice(from).find((l) => l.includes(PROBE_MSG));
    if (line) {
      const p = JSON.parse(line) as { heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; spaces: Record<string, number> };
      const s = (name: string): number => mibB(p.spaces[name] ?? 0);
      return {
        heap_total: mibB(p.heapTotal), heap_used: mibB(p.heapUsed), new_space: s('new_space'), old_space: s('old_space'),
        code_space: s('code_space'), large_objects: mibB((p.spaces.large_object_space ?? 0) + (p.spaces.code_large_object_space ?? 0)),
        external: mibB(p.external), array_buffers: mibB(p.arrayBuffers),
      };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
}

export async function agentMemory(pid: number, logs: string[]): Promise<AgentMemory> {
  const v8 = await probe(pid, logs, 2_000);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const k = smapsKiB(pid);
  const anon = k.mallocHeap + k.stacks + k.anonOther;
  return {
    rss: mib(field('VmRSS')),
    status: { rss_anon: mib(field('RssAnon')), rss_file: mib(field('RssFile')), rss_shmem: mib(field('RssShmem')) },
    file: { node_binary: mib(k.nodeBinary), shared_libs: mib(k.libs), addon: mib(k.addon), other: mib(k.fileOther) },
    anon: { total: mib(anon), malloc_heap: mib(k.mallocHeap), stacks: mib(k.stacks), other: mib(k.anonOther) },
    v8,
    threads: field('Threads'),
  };
}

/** One line for the log: "95.5 MiB = file 57.2 (node 41.7, libs 16.5) + anon 38.3 (V8 heap 29.9, malloc 4.9); ...". */
export function describeMemory(m: AgentMemory): string {
  const f = m.file.node_binary + m.file.shared_libs + m.file.addon + m.file.other;
  return `${m.rss} MiB = file ${f.toFixed(1)} (node ${m.file.node_binary}, libs ${m.file.shared_libs}, addon ${m.file.addon}) + anon ${m.anon.total} `
    + `(V8 heap ${m.v8?.heap_total ?? '?'}: used ${m.v8?.heap_used ?? '?'}, new space ${m.v8?.new_space ?? '?'}; malloc heap ${m.anon.malloc_heap}); ${m.threads} threads; `
    + `status: RssAnon ${m.status.rss_anon}, RssFile ${m.status.rss_file}, RssShmem ${m.status.rss_shmem}`;
}
