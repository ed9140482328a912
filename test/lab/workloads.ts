// Guest workloads for migration tests and benchmarks: sh scripts for the tiny
// guest's lab.sh= word (test/lab/guest/init runs them after boot). Plain POSIX
// sh with busybox applets, so a test can also run them on the host.

export interface DirtyTickerOptions {
  /** MiB/s of guest memory rewritten; 0 for a ticker that dirties nothing. */
  dirtyMiBs: number;
  /** Size of the rewritten region in MiB (a tmpfs file, so guest RAM); default 32. */
  regionMiB?: number;
  /** Directory on a tmpfs; default /tmp (the guest's tmpfs). */
  dir?: string;
}

/** Rewrites per tick are 64 KiB blocks; ticks are 100 ms apart. */
const BLOCK_KIB = 64;
const TICKS_PER_S = 10;
/** Random source the rewrites copy from: non-zero pages, which QEMU cannot skip as zero pages. */
const SOURCE_MIB = 8;

/**
 * A guest that prints `LAB-TICK n` every 100 ms on its console and, in the
 * background, rewrites `dirtyMiBs` MiB/s of its memory with random bytes,
 * printing `LAB-DIRTY mib=<total> uptime=<s>` every second so a test can
 * measure the rate it really reached (TCG may fall short of a high target).
 * Prints `LAB-DIRTY-READY` once the region is filled.
 */
export function dirtyTickerScript(o: DirtyTickerOptions): string {
  const region = o.regionMiB ?? 32;
  const dir = o.dir ?? '/tmp';
  if (!Number.isFinite(o.dirtyMiBs) || o.dirtyMiBs < 0 || o.dirtyMiBs > SOURCE_MIB * TICKS_PER_S) {
    throw new RangeError(`dirtyMiBs must be 0..${SOURCE_MIB * TICKS_PER_S}, got ${o.dirtyMiBs}`);
  }
  if (!Number.isInteger(region) || region < 1 || region > 4096) throw new RangeError(`regionMiB must be 1..4096, got ${region}`);
  const perTick = Math.round((o.dirtyMiBs * 1024) / BLOCK_KIB / TICKS_PER_S); // 64 KiB blocks per tick
  const regionBlocks = (region * 1024) / BLOCK_KIB;
  const sourceBlocks = (SOURCE_MIB * 1024) / BLOCK_KIB;
  const dirtier = perTick === 0 ? '' : `
head -c ${SOURCE_MIB * 1024 * 1024} /dev/urandom > ${dir}/hv-src
dd if=/dev/zero of=${dir}/hv-region bs=1M count=${region} 2>/dev/null
dd if=${dir}/hv-src of=${dir}/hv-region bs=1M count=${Math.min(region, SOURCE_MIB)} conv=notrunc 2>/dev/null
echo "LAB-DIRTY-READY"
(
  pos=0; n=0; blocks=0
  while :; do
    skip=$(( (pos * 7) % (${sourceBlocks} - ${perTick} + 1) ))
    if [ $(( pos + ${perTick} )) -gt ${regionBlocks} ]; then pos=0; fi
    dd if=${dir}/hv-src of=${dir}/hv-region bs=${BLOCK_KIB}k count=${perTick} skip=$skip seek=$pos conv=notrunc 2>/dev/null
    pos=$(( pos + ${perTick} )); blocks=$(( blocks + ${perTick} )); n=$(( n + 1 ))
    if [ $(( n % ${TICKS_PER_S} )) -eq 0 ]; then
      echo "LAB-DIRTY mib=$(( blocks * ${BLOCK_KIB} / 1024 )) uptime=$(cut -d' ' -f1 /proc/uptime)"
    fi
    sleep 0.1
  done
) &`;
  return `${dirtier}
i=0
while :; do echo "LAB-TICK $i"; i=$((i+1)); sleep 0.1; done
`;
}

/** The script as the lab.sh= kernel command-line word wants it. */
export function labShWord(script: string): string {
  return `lab.sh=${Buffer.from(script).toString('base64')}`;
}

/** `LAB-TICK n` counters in a serial log, in order. */
export function ticksIn(log: string): number[] {
  return [...log.matchAll(/LAB-TICK (\d+)/g)].map((m) => Number(m[1]));
}

/** The dirty rate the guest reached, MiB/s, from its first and last LAB-DIRTY lines; undefined with fewer than two. */
export function dirtyRateIn(log: string): number | undefined {
  const marks = [...log.matchAll(/LAB-DIRTY mib=(\d+) uptime=([\d.]+)/g)].map((m) => ({ mib: Number(m[1]), s: Number(m[2]) }));
  if (marks.length < 2) return undefined;
  const a = marks[0]!;
  const b = marks.at(-1)!;
  return b.s > a.s ? (b.mib - a.mib) / (b.s - a.s) : undefined;
}

/**
 * A CPU-bound guest: prints `LAB-BUSY` once, then spins in the shell forever (under TCG each
 * spinning vCPU keeps one QEMU thread busy on the host), printing `LAB-BUSY n` every 2^16 turns so a
 * test sees it still runs.
 */
export function busyLoopScript(): string {
  return `echo LAB-BUSY
n=0
while :; do n=$((n+1)); [ $((n % 65536)) -eq 0 ] && echo "LAB-BUSY $n"; done
`;
}
