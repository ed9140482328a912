// What the live merge tests share: a guest that writes 1 MiB blocks of
// random data to vda (each block's md5 printed as it is written) until the
// host puts STOP into a small mailbox disk (vdb), then reads every block back
// and prints its md5; data written on the host beforehand with qemu-io (a
// byte pattern per block range); and the checks of what the guest read.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_DIR } from '../../../lab/guest.js';
import { labShWord } from '../../../lab/workloads.js';
import type { HostvisorClient } from '../../../../api/client/client.js';
import type { ResultOf } from '../../../../api/schema.js';

const MiB = 1024 * 1024;

export type MergeJobR = ResultOf<'VM.getJobs'>['jobs'][number];

/** The guest's workload: writes blocks START.. (one per PAUSE s) until STOP or MAX, then reads 0..end back. */
export function writerScript(o: { start: number; max: number; pauseSec: number }): string {
  return `
w() { head -c 1048576 /dev/urandom > /tmp/b; m=$(md5sum /tmp/b | cut -d' ' -f1)
  if dd if=/tmp/b of=/dev/vda bs=1M seek=$1 count=1 oflag=direct conv=notrunc 2>/dev/null; then echo "LAB-W $1 $m"; else echo "LAB-W-FAIL $1"; fi; }
stopped() { [ "$(dd if=/dev/vdb bs=512 count=1 iflag=direct 2>/dev/null | head -c 4)" = STOP ]; }
echo LAB-W-BEGIN
k=${o.start}
while ! stopped && [ $k -lt ${o.max} ]; do w $k; k=$((k+1)); sleep ${o.pauseSec}; done
sync
echo "LAB-W-END $k"
i=0
while [ $i -lt $k ]; do m=$(dd if=/dev/vda bs=1M skip=$i count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1); echo "LAB-R $i $m"; i=$((i+1)); done
echo LAB-R-END
`;
}

/** The mailbox disk: a 1 MiB raw file next to the serial logs (both lab hosts see it). */
export function mailbox(name: string): { disk: { name: string; path: string; type: 'file'; format: 'raw' }; stop(): void } {
  const path = join(LAB_DIR, 'run', `${name}.mbox`);
  writeFileSync(path, Buffer.alloc(MiB));
  chmodSync(path, 0o666);
  return {
    disk: { name: 'vdb', path, type: 'file', format: 'raw' },
    stop: () => writeFileSync(path, Buffer.concat([Buffer.from('STOP'), Buffer.alloc(MiB - 4)])),
  };
}

export const guestCmdline = (o: { start: number; max: number; pauseSec: number }): string[] => ['lab.end=wait', labShWord(writerScript(o))];

/** md5 of one 1 MiB block of a byte pattern, as qemu-io `write -P` writes it. */
export const patternMd5 = (byte: number): string => createHash('md5').update(Buffer.alloc(MiB, byte)).digest('hex');

/** The blocks written (index → md5) and read back, from the serial log. */
export function guestBlocks(serial: string): { written: Map<number, string>; read: Map<number, string>; end?: number; readDone: boolean } {
  const log = readFileSync(serial, 'utf8');
  const written = new Map([...log.matchAll(/LAB-W (\d+) ([0-9a-f]{32})/g)].map((m) => [Number(m[1]), m[2]!] as const));
  const read = new Map([...log.matchAll(/LAB-R (\d+) ([0-9a-f]{32})/g)].map((m) => [Number(m[1]), m[2]!] as const));
  const end = log.match(/LAB-W-END (\d+)/)?.[1];
  return { written, read, ...(end ? { end: Number(end) } : {}), readDone: log.includes('LAB-R-END') };
}

/** Blocks whose read-back md5 differs from what was written there (host patterns for the blocks the guest did not write). */
export function badBlocks(b: ReturnType<typeof guestBlocks>, patterns: Array<{ from: number; to: number; md5: string }>): number[] {
  const bad: number[] = [];
  for (let i = 0; i < (b.end ?? 0); i++) {
    const want = b.written.get(i) ?? patterns.find((p) => i >= p.from && i < p.to)?.md5;
    if (!want || b.read.get(i) !== want) bad.push(i);
  }
  return bad;
}

/** Waits (bounded) until the guest printed at least n LAB-W lines. */
export async function waitWrites(serial: string, n: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const got = guestBlocks(serial).written.size;
    if (got >= n) return got;
    if (Date.now() > until) throw new Error(`the guest wrote ${got} blocks, not ${n}, within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Polls VM.getJobs (bounded) until the job ended; returns it and the states seen. */
export async function waitJob(c: () => HostvisorClient, vmID: string, id: string, timeoutMs: number): Promise<{ job: MergeJobR; states: string[] }> {
  const until = Date.now() + timeoutMs;
  const states: string[] = [];
  for (;;) {
    const job = await c().call('VM.getJobs', { vmID }).then((r) => r.jobs.find((j) => j.id === id), () => undefined);
    if (job && states.at(-1) !== job.state) states.push(job.state);
    if (job && (job.state === 'done' || job.state === 'failed')) return { job, states };
    if (Date.now() > until) throw new Error(`merge ${id} did not end within ${timeoutMs} ms (states ${states.join(' -> ')})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Waits (bounded) for the guest to finish reading back. */
export async function waitReadBack(serial: string, timeoutMs: number): Promise<ReturnType<typeof guestBlocks>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const b = guestBlocks(serial);
    if (b.readDone) return b;
    if (Date.now() > until) throw new Error(`the guest did not read back within ${timeoutMs} ms (${b.read.size} of ${b.end ?? '?'} blocks)`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Lets the guest write `more` blocks after the merge, then stops it and waits for its read-back. */
export async function stopAndReadBack(g: { serial: string; mb: { stop(): void } }, more: number): Promise<ReturnType<typeof guestBlocks> & { atStop: number }> {
  const atStop = await waitWrites(g.serial, guestBlocks(g.serial).written.size + more, 60_000);
  g.mb.stop();
  return { ...(await waitReadBack(g.serial, 240_000)), atStop };
}
