/**
 * Helpers for the stats integration tests on the real qemu:///system. Not a test file (tap runs
 * *.test.js only). The lab's libvirtd is shared and may be restarted by another test meanwhile, so
 * the connection is reopened on demand and teardown retries until libvirtd answers.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection, LibvirtUnavailableError } from '../../../agent/libvirt/index.js';

export const SYSTEM_URI = 'qemu:///system';

/** Runs a program (no shell) with a hard timeout; rejects with its output on failure. */
export function run(file: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${String(err)}\n${stdout}${stderr}`.trimEnd()));
      else resolve(stdout);
    });
  });
}

/** A connection to qemu:///system that is reopened in the background when it is lost. */
export class LabConnection {
  private conn: Connection | undefined;
  private opening: Promise<void> | undefined;
  private closed = false;

  /** Opens the first connection, retrying (bounded) while libvirtd does not answer. */
  static async open(): Promise<LabConnection> {
    const lc = new LabConnection();
    lc.conn = await retrying('open qemu:///system', () => Connection.open(SYSTEM_URI, { callTimeoutMs: 60_000 }));
    return lc;
  }

  /** The open connection, or LibvirtUnavailableError (and a reopen starts). */
  get(): Connection {
    if (this.conn?.isOpen) return this.conn;
    this.reopen();
    throw new LibvirtUnavailableError('lab libvirt connection lost; reopening');
  }

  /** Waits (bounded) for an open connection. */
  async ready(timeoutMs = 90_000): Promise<Connection> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        return this.get();
      } catch (e) {
        if (performance.now() > deadline) throw e;
        await sleep(250);
      }
    }
  }

  private reopen(): void {
    if (this.opening !== undefined || this.closed) return;
    this.opening = (async () => {
      await this.conn?.close().catch(() => {});
      this.conn = await Connection.open(SYSTEM_URI, { callTimeoutMs: 60_000 }).catch(() => undefined);
      if (this.closed) await this.conn?.close().catch(() => {});
    })().finally(() => { this.opening = undefined; });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.opening;
    await this.conn?.close().catch(() => {});
  }
}

/** Retries `fn` (bounded) while it fails, e.g. while libvirtd restarts. */
export async function retrying<T>(what: string, fn: () => Promise<T>, timeoutMs = 90_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (performance.now() > deadline) throw new Error(`${what}: still failing after ${timeoutMs} ms: ${String(e)}`);
      await sleep(500);
    }
  }
}

/** Destroys a guest by name with virsh, retrying while libvirtd does not answer. Never throws. */
export async function destroyGuestQuietly(name: string, timeoutMs = 90_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      await run('virsh', ['-c', SYSTEM_URI, 'destroy', name]);
      return;
    } catch (e) {
      if (/failed to get domain|not found|not running/i.test(String(e))) return; // gone already
      await sleep(1000);
    }
  }
  console.error(`could not destroy ${name} within ${timeoutMs} ms`);
}
