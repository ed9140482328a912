// The monitor's read check: one O_DIRECT read of the head of a domain's
// metadata (VDSM reads 4 KiB the same way). O_DIRECT so the read reaches the
// storage and not this host's page cache. It runs in a dd child (Node cannot
// make the aligned buffers O_DIRECT needs, and a read stuck on dead storage
// must not hold a libuv thread); the delay is dd's own figure for the copy,
// which leaves out the time to start the process (tens of ms on a loaded host).
import { runProcess } from '../../process.js';

export interface HeadRead {
  bytes: Buffer;
  /** Seconds the read took, as dd measured it (wall time of the run if dd did not say). */
  seconds: number;
}

export class ReadCheckError extends Error {
  override readonly name = 'ReadCheckError';
  constructor(message: string, readonly timedOut: boolean) { super(message); }
}

const COPIED_RE = /copied, ([0-9.]+(?:e[-+]?\d+)?) s/;

/** Reads up to `length` bytes from offset 0 of path with O_DIRECT; dd is killed after timeoutMs. */
export async function readHeadDirect(path: string, length: number, timeoutMs: number): Promise<HeadRead> {
  const r = await runProcess(['dd', `if=${path}`, 'iflag=direct', `bs=${length}`, 'count=1'], { timeoutMs, stderrCapBytes: 4096 });
  if (r.timedOut) throw new ReadCheckError(`read of ${path} did not finish in ${timeoutMs} ms (dd killed)`, true);
  if (r.rc !== 0) {
    const why = r.spawnError ? String(r.spawnError) : r.stderr.trim().split('\n').at(-1) ?? `rc ${r.rc}`;
    throw new ReadCheckError(`read of ${path} failed: ${why}`, false);
  }
  const m = COPIED_RE.exec(r.stderr);
  return { bytes: r.stdout, seconds: m ? Number(m[1]) : r.ms / 1000 };
}
