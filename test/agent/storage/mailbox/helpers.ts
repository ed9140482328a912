/**
 * Helpers for the mailbox tests: real area files under the lab's run dir,
 * loop devices over them, a recording extend handler, percentiles. Not a test
 * file itself (tap only runs *.test.js).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, silentLogger, type Logger } from '../../../../agent/log.js';
import { ensureAreaFile } from '../../../../agent/storage/mailbox/block-file.js';
import { areaBytes } from '../../../../agent/storage/mailbox/format.js';
import { HsmMailbox, type HsmMailboxOptions } from '../../../../agent/storage/mailbox/hsm-mailbox.js';
import { SpmMailbox, type SpmMailboxOptions } from '../../../../agent/storage/mailbox/spm-mailbox.js';

export const LAB_RUN = process.env.HOSTVISOR_LAB_DIR ? join(process.env.HOSTVISOR_LAB_DIR, 'run') : '/var/tmp/hostvisor-lab/run';
export const MAX_HOSTS = 16;

export const testLog: Logger = process.env.HV_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger;

export async function labDir(tag: string): Promise<string> {
  mkdirSync(LAB_RUN, { recursive: true });
  return mkdtemp(join(LAB_RUN, `hv-mbox-${tag}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true }).catch((e) => console.error(`could not remove ${dir}: ${String(e)}`));
}

/** Two sparse area files (requests, replies) for host ids 1..maxHosts. */
export async function areaFiles(dir: string, maxHosts = MAX_HOSTS): Promise<{ requestsPath: string; repliesPath: string }> {
  const requestsPath = join(dir, 'mbox-requests');
  const repliesPath = join(dir, 'mbox-replies');
  await ensureAreaFile(requestsPath, areaBytes(maxHosts));
  await ensureAreaFile(repliesPath, areaBytes(maxHosts));
  return { requestsPath, repliesPath };
}

export function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

export async function attachLoop(file: string): Promise<string> {
  const dev = (await run('losetup', ['-f', '--show', file])).trim();
  if (!/^\/dev\/loop\d+$/.test(dev)) throw new Error(`losetup printed '${dev}'`);
  return dev;
}

/** Detaches `dev` if it still backs `file`. Never throws. */
export async function detachLoop(dev: string, file: string): Promise<void> {
  try {
    const back = (await run('losetup', ['-n', '-O', 'BACK-FILE', dev])).trim();
    if (back === file) await run('losetup', ['-d', dev]);
  } catch {
    // already detached
  }
}

/** HSMs and SPMs made for one test; stop them all in teardown. */
export class Fleet {
  readonly hsms: HsmMailbox[] = [];
  readonly spms: SpmMailbox[] = [];
  constructor(readonly paths: { requestsPath: string; repliesPath: string }, readonly maxHosts = MAX_HOSTS) {}

  async hsm(hostId: number, o: Partial<HsmMailboxOptions> = {}): Promise<HsmMailbox> {
    const m = new HsmMailbox({ ...this.paths, maxHosts: this.maxHosts, hostId, log: testLog.child({ host: hostId }), ...o });
    await m.start();
    this.hsms.push(m);
    return m;
  }

  async spm(o: Partial<SpmMailboxOptions> & Pick<SpmMailboxOptions, 'extend'>): Promise<SpmMailbox> {
    const m = new SpmMailbox({ ...this.paths, maxHosts: this.maxHosts, spmHostId: 1, stillSpm: () => true, log: testLog.child({ spm: true }), ...o });
    await m.start();
    this.spms.push(m);
    return m;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.hsms, ...this.spms].map((m) => m.stop().catch(() => undefined)));
  }
}

export interface Call { domainId: string; volumeId: string; sizeMiB: number; at: number }

/** An extend handler that records calls and the peak concurrency; optional delay and failure. */
export function recorder(o: { delayMs?: number | (() => number); fail?: (c: Call) => Error | undefined } = {}) {
  const calls: Call[] = [];
  let active = 0;
  let peak = 0;
  const extend = async (domainId: string, volumeId: string, sizeMiB: number): Promise<void> => {
    const c = { domainId, volumeId, sizeMiB, at: performance.now() };
    calls.push(c);
    active++;
    peak = Math.max(peak, active);
    try {
      const d = typeof o.delayMs === 'function' ? o.delayMs() : o.delayMs ?? 0;
      if (d > 0) await sleep(d);
      const err = o.fail?.(c);
      if (err) throw err;
    } finally {
      active--;
    }
  };
  return { extend, calls, get peak() { return peak; } };
}

export function volume(): { domainId: string; volumeId: string } {
  return { domainId: randomUUID(), volumeId: randomUUID() };
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Rejects if `p` is not settled within `ms` (every wait in these tests is bounded). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms); }),
  ]);
}

/** Polls `cond` every `stepMs` until true or `ms` passed. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string, stepMs = 10): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await cond()) return;
    await sleep(stepMs);
  }
  throw new Error(`${what}: not true within ${ms} ms`);
}
