// The multi-host lab's session lock (lab-lock.ts), on a scratch directory: one
// owner at a time across processes, a waiter gets it when the owner lets go,
// and an owner killed with SIGKILL leaves no stale lock.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLabLock, labLockHeld, labLockOwner, releaseLabLock, tryAcquireLabLock } from './lab-lock.js';

const LOCK_JS = join(dirname(fileURLToPath(import.meta.url)), 'lab-lock.js');

/** Another process that takes the lock on `dir` and holds it until killed or told to release (stdin 'release'). */
function otherOwner(dir: string): Promise<ChildProcess> {
  const code = `
    const m = await import(${JSON.stringify(LOCK_JS)});
    await m.acquireLabLock(${JSON.stringify(dir)}, 5000);
    console.log('held');
    process.stdin.on('data', async () => { await m.releaseLabLock(); console.log('released'); process.exit(0); });
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the other process did not take the lock in 10 s')); }, 10_000);
    child.stdout!.once('data', (d: Buffer) => { clearTimeout(timer); if (d.toString().includes('held')) resolve(child); else reject(new Error(d.toString())); });
    child.once('exit', (c) => { clearTimeout(timer); reject(new Error(`the other process exited (${c})`)); });
  });
}

const exited = (c: ChildProcess): Promise<void> => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r())));

t.test('lab session lock', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-lablock-'));
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    for (const c of children) c.kill('SIGKILL');
    await releaseLabLock();
    rmSync(dir, { recursive: true, force: true });
  });

  await t.test('one owner at a time; the owner is named; a waiter gets it once the owner lets go', async (t) => {
    const other = await otherOwner(dir);
    children.push(other);
    t.equal(await tryAcquireLabLock(dir), false, 'not free while another process owns it');
    t.match(labLockOwner(dir), new RegExp(`^pid ${other.pid} `), 'the owner file names the other process');
    await t.rejects(acquireLabLock(dir, 1000), /still in use by pid/, 'a bounded wait ends with an error naming the owner');
    const waiting = acquireLabLock(dir, 20_000);
    const t0 = performance.now();
    setTimeout(() => other.stdin!.write('release\n'), 1000);
    await waiting;
    t.ok(labLockHeld(), `taken ${((performance.now() - t0) / 1000).toFixed(1)} s after the wait began, once the other let go`);
    t.match(labLockOwner(dir), new RegExp(`^pid ${process.pid} `), 'and the owner file names this process');
    await acquireLabLock(dir, 1000);
    t.ok(labLockHeld(), 're-entrant in the owning process');
    await releaseLabLock();
    t.notOk(labLockHeld(), 'released');
    await exited(other);
  });

  await t.test('an owner killed with SIGKILL leaves no stale lock', async (t) => {
    const other = await otherOwner(dir);
    children.push(other);
    t.equal(await tryAcquireLabLock(dir), false, 'held by the other process');
    other.kill('SIGKILL');
    await exited(other);
    let got = false;
    for (let i = 0; i < 50 && !got; i++) { // the holder notices its closed stdin at once; allow 5 s
      got = await tryAcquireLabLock(dir);
      if (!got) await new Promise((r) => setTimeout(r, 100));
    }
    t.ok(got, 'free again once the owner is gone');
    await releaseLabLock();
  });
});
