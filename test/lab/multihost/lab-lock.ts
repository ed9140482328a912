// The multi-host lab is one set of hosts per machine: a test (or bench) that
// tears it down while another one runs on it breaks that run. This lock makes
// one process at a time own the lab from labUp() to the whole-lab labDown().
//
// It is an flock(1) on <lab>/multihost/.session-lock held by a small child
// (`flock ... sh -c 'echo locked; exec cat'`) that lives as long as its stdin:
// when the owner ends, even by SIGKILL, the pipe closes and the kernel drops the
// lock, so a crashed owner never leaves a stale lock behind. (lab.sh's own
// .lock only serializes single up/down commands.)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LabLockPaths { lockFile: string; ownerFile: string }

export function labLockPaths(multihostDir: string): LabLockPaths {
  return { lockFile: join(multihostDir, '.session-lock'), ownerFile: join(multihostDir, '.session-owner') };
}

let holder: ChildProcess | undefined;

/** True while this process owns the lab. */
export function labLockHeld(): boolean {
  return holder !== undefined && holder.exitCode === null && holder.signalCode === null;
}

function owner(p: LabLockPaths): string {
  try { return readFileSync(p.ownerFile, 'utf8').trim() || 'unknown'; } catch { return 'unknown'; }
}

/** One attempt: resolves true once locked, false when flock gave up after waitS seconds. */
function tryLock(p: LabLockPaths, waitS: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', '--wait', String(waitS), p.lockFile, 'sh', '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('locked')) return;
      child.stdout!.removeAllListeners('data');
      // The holder must not keep this process alive: it goes when this process goes.
      child.unref();
      for (const s of [child.stdin, child.stdout] as Array<{ unref?: () => void } | null>) s?.unref?.();
      holder = child;
      resolve(true);
    });
    child.stdin!.on('error', () => {});
    child.once('error', reject);
    child.once('exit', () => { if (holder === child) holder = undefined; else resolve(false); });
  });
}

/**
 * Takes the lab for this process (re-entrant), waiting at most waitMs for another owner to let
 * go; says once on stderr whom it waits for. Rejects naming the owner when the wait runs out.
 */
export async function acquireLabLock(multihostDir: string, waitMs: number): Promise<void> {
  if (labLockHeld()) return;
  const p = labLockPaths(multihostDir);
  mkdirSync(multihostDir, { recursive: true });
  if (!(await tryLock(p, 0))) {
    process.stderr.write(`lab: the multi-host lab is in use by ${owner(p)}; waiting up to ${Math.round(waitMs / 1000)} s\n`);
    if (!(await tryLock(p, Math.max(1, Math.ceil(waitMs / 1000))))) {
      throw new Error(`the multi-host lab is still in use by ${owner(p)} after ${waitMs} ms`);
    }
  }
  writeFileSync(p.ownerFile, `pid ${process.pid} (${process.argv.slice(1).join(' ').slice(0, 200)}) since ${new Date().toISOString()}\n`);
}

/** Takes the lab only if nobody owns it now; true when this process owns it afterwards. */
export async function tryAcquireLabLock(multihostDir: string): Promise<boolean> {
  if (labLockHeld()) return true;
  mkdirSync(multihostDir, { recursive: true });
  return tryLock(labLockPaths(multihostDir), 0);
}

/** Who owns the lab, as recorded by its owner (may be stale once nobody holds the lock). */
export function labLockOwner(multihostDir: string): string {
  return owner(labLockPaths(multihostDir));
}

/** Lets the lab go (closes the holder's stdin); resolves once the lock is dropped, bounded. */
export async function releaseLabLock(): Promise<void> {
  const h = holder;
  if (!h) return;
  holder = undefined;
  if (h.exitCode !== null || h.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => { h.kill('SIGKILL'); resolve(); }, 5_000);
    h.once('exit', () => { clearTimeout(t); resolve(); });
    h.stdin!.end();
  });
}
