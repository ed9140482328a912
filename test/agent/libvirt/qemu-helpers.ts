/**
 * Helpers shared by the qemu-*.test.ts integration tests (real libvirtd on qemu:///system, real
 * TCG guests). Not a test file itself: tap only runs *.test.js.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection, DomainEvent, DomainEventKind } from '../../../agent/libvirt/index.js';
import { ensureRunDir } from '../../lab/guest.js';

export const SYSTEM_URI = 'qemu:///system';

/** A guest name unique to this test process: hv-it-<tag>-<pid>. */
export function guestName(tag: string): string {
  return `hv-it-${tag}-${process.pid}`;
}

/** A fresh temp dir under LAB_DIR/run (qemu, running as root, can read and write there). */
export function makeTempDir(tag: string): Promise<string> {
  return mkdtemp(join(ensureRunDir(), `hv-it-${tag}-`));
}

/** Removes a temp dir; never throws (teardown must go on). */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true }).catch((e) => console.error(`could not remove ${dir}: ${String(e)}`));
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a program (no shell) with a hard timeout; rejects with its output on failure. */
export function run(file: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const how = err.killed ? `timed out after ${timeoutMs} ms` : `failed (${err.code ?? err.signal})`;
          reject(new Error(`${file} ${args.join(' ')} ${how}\n${stdout}${stderr}`.trimEnd()));
        } else {
          resolve({ stdout, stderr });
        }
      });
  });
}

/** Polls `probe` until it returns a value other than undefined; rejects after timeoutMs. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      lastErr = e;
    }
    if (performance.now() >= deadline) {
      const tail = lastErr === undefined ? '' : `; last error: ${String(lastErr)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${tail}`);
    }
    await sleep(intervalMs);
  }
}

/** Rejects with a clear message if `p` does not settle within timeoutMs. */
export function within<T>(what: string, p: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
    p.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

/** A timestamped domain event as received by a listener. */
export interface Received<K extends DomainEventKind> {
  ev: DomainEvent<K>;
  /** performance.now() when the listener ran. */
  at: number;
}

/**
 * Records events from a listener and lets a test wait for one that matches a predicate (events that
 * arrived before the wait count too). Use `log.listener` as the subscribe() callback.
 */
export class EventLog<K extends DomainEventKind> {
  readonly events: Received<K>[] = [];
  private waiters: { pred: (ev: DomainEvent<K>) => boolean; resolve: (r: Received<K>) => void }[] = [];

  /** Keep only events for this domain name (undefined: all). */
  constructor(private readonly domainName?: string) {}

  readonly listener = (ev: DomainEvent<K>): void => {
    if (this.domainName !== undefined && ev.domain.name !== this.domainName) return;
    const r = { ev, at: performance.now() };
    this.events.push(r);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(ev)) return true;
      w.resolve(r);
      return false;
    });
  };

  matching(pred: (ev: DomainEvent<K>) => boolean): Received<K>[] {
    return this.events.filter((r) => pred(r.ev));
  }

  waitFor(what: string, pred: (ev: DomainEvent<K>) => boolean, timeoutMs: number): Promise<Received<K>> {
    const seen = this.events.find((r) => pred(r.ev));
    if (seen) return Promise.resolve(seen);
    return new Promise<Received<K>>((resolve, reject) => {
      const w = {
        pred,
        resolve: (r: Received<K>) => { clearTimeout(timer); resolve(r); },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        const got = this.events.map((r) => JSON.stringify(r.ev, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events so far: [${got.join(', ')}]`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
}

/**
 * Destroys a guest by name if it is running: first through `conn` (when given and open), then with
 * virsh as a fallback (e.g. when the test's connection is gone). Never throws.
 */
export async function destroyGuestQuietly(name: string, conn?: Connection): Promise<void> {
  if (conn?.isOpen) {
    try {
      const dom = await conn.lookupByName(name);
      await dom.destroy();
    } catch {
      // not running, or the connection failed: the virsh fallback below decides
    }
  }
  try {
    await run('virsh', ['-c', SYSTEM_URI, 'destroy', name], 30_000);
  } catch {
    // "domain not found" when it is already gone
  }
}

/** Attaches a loop device to `file`; returns /dev/loopN. */
export async function attachLoop(file: string): Promise<string> {
  const { stdout } = await run('losetup', ['-f', '--show', file]);
  const dev = stdout.trim();
  if (!/^\/dev\/loop\d+$/.test(dev)) throw new Error(`losetup printed '${dev}'`);
  return dev;
}

/** Detaches a loop device if it still backs `file`. Never throws. */
export async function detachLoopQuietly(dev: string, file: string): Promise<void> {
  try {
    const { stdout } = await run('losetup', ['-n', '-O', 'BACK-FILE', dev]);
    if (stdout.trim() !== file) return; // already detached (and possibly reused by someone else)
    await run('losetup', ['-d', dev]);
  } catch {
    // not attached
  }
}
