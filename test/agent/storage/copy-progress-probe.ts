// Test helper: follows a copy task every 100 ms (as the controller follows a
// disk job) and, at each poll, what has reached the destination: for a file,
// the bytes of it held in the page cache (fincore); for a loop device (a
// block volume of the lab), the bytes its queue has completed writing
// (/sys/block/loopN/stat). Tells whether the task's progress follows the
// writes or runs ahead of them into the page cache.
import { readFile, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { ResultOf } from '../../../api/schema.js';
import { run } from '../../../agent/storage/exec.js';

export interface ProgressSample {
  ms: number;
  progress: number;
  /** file: bytes in the page cache; block: bytes the device completed writing since the first sample */
  bytes?: number;
}

/** Bytes of `file` held in the page cache; undefined while it does not exist. */
export async function cachedBytes(file: string): Promise<number | undefined> {
  const r = await run(['fincore', '-b', '-n', '-o', 'RES', file], { timeoutMs: 10_000, okCodes: [0, 1] });
  return r.rc === 0 ? Number(r.stdout.trim()) : undefined;
}

/** Bytes written (completed) by the loop device the link points to; undefined while there is none. */
export async function deviceWrittenBytes(link: string): Promise<number | undefined> {
  const dev = await realpath(link).catch(() => undefined);
  if (!dev) return undefined;
  const stat = await readFile(`/sys/block/${basename(dev)}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined ? undefined : Number(stat.trim().split(/\s+/)[6]) * 512;
}

/**
 * Polls Task.getStatus and `measure` every 100 ms until the task ends (bounded
 * by timeoutMs). `counter`: measure is a device's running total, so a sample
 * keeps what it grew since the device was first seen at progress 0.
 */
export async function followCopy(c: HostvisorClient, taskID: string, measure: () => Promise<number | undefined>, o: { timeoutMs: number; counter: boolean }):
  Promise<{ last: ResultOf<'Task.getStatus'>; samples: ProgressSample[]; seconds: number }> {
  const t0 = performance.now();
  const timeoutMs = o.timeoutMs;
  const samples: ProgressSample[] = [];
  let base: number | undefined;
  for (;;) {
    const [s, m] = await Promise.all([c.call('Task.getStatus', { taskID }), measure()]);
    const progress = s.progress ?? 0;
    if (o.counter && m !== undefined && (base === undefined || (progress === 0 && m < base))) base = m;
    const bytes = m === undefined ? undefined : m - (o.counter ? base! : 0);
    samples.push({ ms: Math.round(performance.now() - t0), progress, ...(bytes !== undefined ? { bytes } : {}) });
    if (s.taskState === 'finished') return { last: s, samples, seconds: (performance.now() - t0) / 1000 };
    if (performance.now() - t0 > timeoutMs) throw new Error(`task ${taskID} not finished in ${timeoutMs} ms; last ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** "ms:progress%/MiB" per sample, for the test's comments. */
export const describeSamples = (samples: readonly ProgressSample[]): string =>
  samples.map((s) => `${s.ms}:${s.progress}%${s.bytes !== undefined ? `/${Math.round(s.bytes / 1048576)}M` : ''}`).join(' ');
