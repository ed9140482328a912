// The sanlock facade against a real sanlock daemon (started here under the
// lab's setrlimit shim, or an already running one), on plain files.
import t from 'tap';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import {
  Sanlock, SanlockError, isSanlockError, SanlockRc, type LeaseRef,
} from '../../../agent/storage/sanlock.js';
import { ensureSanlockDaemon, sanlockUnavailable } from './sanlock-daemon.js';

const MiB = 1024 * 1024;
const IO_TIMEOUT = 1; // seconds: a join takes ~3 s instead of ~21 s at the default 10 s

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, stepMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await fn();
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, stepMs));
    v = await fn();
  }
  return v;
}

function emptyFile(path: string, size: number): void {
  closeSync(openSync(path, 'w'));
  truncateSync(path, size);
}

const unavailable = await sanlockUnavailable();

t.test('sanlock: lockspace, SPM-style resource lease, lver, exclusion, loss', { skip: unavailable ?? false }, async (t) => {
  const t0 = Date.now();
  const daemon = await ensureSanlockDaemon();
  const sanlock = new Sanlock();

  // /var/tmp: sanlock uses O_DIRECT, which tmpfs refuses.
  const dir = mkdtempSync('/var/tmp/hostvisor-sanlock-test-');
  const tag = `hvt${process.pid}`;
  // A: the exclusion / lver lockspace. B: a lockspace whose storage we break.
  const A = { name: `${tag}a`, ids: join(dir, 'a-ids'), leases: join(dir, 'a-leases') };
  const B = { name: `${tag}b`, ids: join(dir, 'b-ids'), leases: join(dir, 'b-leases') };
  const spm: LeaseRef = { lockspace: A.name, resource: 'SDM', path: A.leases, offset: MiB };
  const spmB: LeaseRef = { lockspace: B.name, resource: 'SDM', path: B.leases, offset: MiB };
  const fds: number[] = [];
  const joined: { name: string; ids: string }[] = [];

  t.teardown(async () => {
    for (const fd of fds) await sanlock.unregister(fd).catch(() => undefined);
    for (const ls of joined) {
      // unused: never let sanlock kill this process over a lease still held.
      await sanlock.remLockspace(ls.name, 1, ls.ids, 0, { unused: true }).catch(() => undefined);
    }
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
    t.comment(`sanlock test took ${((Date.now() - t0) / 1000).toFixed(1)} s (daemon ${daemon.startedByUs ? `started, pid ${daemon.pid}` : 'reused'})`);
  });

  const v = await sanlock.daemonVersion();
  t.match(v.version, /^\d+\.\d+\.\d+$/, `daemon answers: sanlock ${v.version}`);

  await t.test('direct init of lockspaces and resources on plain files, then join as host 1', async (t) => {
    for (const ls of [A, B]) {
      emptyFile(ls.ids, MiB);
      emptyFile(ls.leases, 2 * MiB);
      await sanlock.directInitLockspace(ls.name, ls.ids, 0, { ioTimeoutSec: IO_TIMEOUT });
      await sanlock.directInitResource(ls.name, 'SDM', ls.leases, MiB);
    }
    const fresh = await sanlock.readResourceOwners(A.name, 'SDM', A.leases, MiB);
    t.same(fresh, { lver: 0, owners: [], shared: false }, 'a fresh lease: lver 0, no owner');
    t.same(await sanlock.spmStatus(spm), { spmId: -1, spmLver: -1 }, 'spmStatus of a free lease: -1 / -1');
    t.equal(await sanlock.inqLockspace(A.name, 1, A.ids, 0), 'absent', 'not joined yet');

    const started = Date.now();
    await Promise.all([A, B].map(async (ls) => {
      await sanlock.addLockspace(ls.name, 1, ls.ids, 0, IO_TIMEOUT);
      joined.push(ls);
    }));
    const secs = (Date.now() - started) / 1000;
    t.ok(secs < 15, `both lockspaces joined in ${secs.toFixed(1)} s (io_timeout ${IO_TIMEOUT} s)`);
    t.equal(await sanlock.inqLockspace(A.name, 1, A.ids, 0), 'joined');
    const all = await sanlock.getLockspaces();
    t.match(all.find((l) => l.name === A.name), { hostId: 1, path: A.ids, offset: 0, state: 'joined' }, 'getLockspaces lists it');

    const again = await sanlock.addLockspace(A.name, 1, A.ids, 0, IO_TIMEOUT).catch((e: unknown) => e);
    t.ok(isSanlockError(again, 'EEXIST'), 'joining twice: EEXIST');
  });

  await t.test('acquire gives lver 1; a second registration is refused; release + re-acquire gives lver 2', async (t) => {
    const fd1 = await sanlock.registerProcess();
    fds.push(fd1);
    const fd2 = await sanlock.registerProcess();
    fds.push(fd2);
    t.not(fd1, fd2, 'two registrations');

    const got = await sanlock.acquire(fd1, spm.lockspace, spm.resource, spm.path, spm.offset);
    t.match(got, { lockspace: A.name, resource: 'SDM', path: A.leases, offset: MiB, lver: 1 }, 'first acquire: lver 1');
    t.match(await sanlock.inquire(fd1), [{ resource: 'SDM', lver: 1 }], 'inquire lists the held lease with its lver');
    t.same(await sanlock.inquire(fd2), [], 'the other registration holds nothing');

    const owners = await sanlock.readResourceOwners(spm.lockspace, spm.resource, spm.path, spm.offset);
    t.equal(owners.lver, 1, 'on storage: lver 1');
    t.match(owners.owners, [{ hostId: 1, generation: 1 }], 'on storage: owned by host 1');
    t.same(await sanlock.spmStatus(spm), { spmId: 1, spmLver: 1 }, 'spmStatus: {spmId 1, spmLver 1}');

    const refused = await sanlock.acquire(fd2, spm.lockspace, spm.resource, spm.path, spm.offset).catch((e: unknown) => e);
    t.type(refused, SanlockError, 'second acquire rejects with a SanlockError');
    const err = refused as SanlockError;
    t.equal(err.code, -17, 'code -EEXIST');
    t.equal(err.codeName, 'EEXIST');
    t.equal(err.op, 'acquire');
    t.ok(err.heldElsewhere, 'heldElsewhere');
    t.match(err.message, /acquire .*SDM.*File exists/, `clear message: ${err.message}`);
    t.equal((await sanlock.readResourceOwners(spm.lockspace, spm.resource, spm.path, spm.offset)).lver, 1,
      'the refused acquire did not bump lver');

    const notHeld = await sanlock.release(fd2, spm.lockspace, spm.resource, spm.path, spm.offset).catch((e: unknown) => e);
    t.ok(isSanlockError(notHeld, 'FAILED'), 'releasing a lease the registration does not hold: FAILED (-1)');

    await sanlock.release(fd1, spm.lockspace, spm.resource, spm.path, spm.offset);
    t.same(await sanlock.inquire(fd1), [], 'released');
    const free = await sanlock.readResourceOwners(spm.lockspace, spm.resource, spm.path, spm.offset);
    t.same(free, { lver: 1, owners: [], shared: false }, 'on storage: free, last lver 1');
    t.same(await sanlock.spmStatus(spm), { spmId: -1, spmLver: -1 }, 'spmStatus of a released lease: -1 / -1');

    const second = await sanlock.acquire(fd2, spm.lockspace, spm.resource, spm.path, spm.offset);
    t.equal(second.lver, 2, 're-acquire (by the other registration): lver 2');
    t.same(await sanlock.spmStatus(spm), { spmId: 1, spmLver: 2 }, 'spmStatus: {spmId 1, spmLver 2}');

    const stale = await sanlock.acquire(fd1, spm.lockspace, spm.resource, spm.path, spm.offset, 0, { lver: 1 })
      .catch((e: unknown) => e);
    t.ok(stale instanceof SanlockError && stale.heldElsewhere, `held: refused whatever lver is asked (${(stale as Error).message})`);
  });

  await t.test('watchLease sees a lease released behind its back; unregister releases what it held', async (t) => {
    const [, fd2] = fds as [number, number];
    const watch = sanlock.watchLease(fd2, spm, { intervalMs: 60_000 });
    t.equal(await watch.poll(), undefined, 'held: no loss');
    await sanlock.releaseAll(fd2);
    const loss = await watch.poll();
    t.match(loss, { reason: 'released' }, 'missing from inquire: released');
    t.match(await watch.lost, { reason: 'released' }, 'lost settles');

    const fd3 = await sanlock.registerProcess();
    const got = await sanlock.acquire(fd3, spm.lockspace, spm.resource, spm.path, spm.offset);
    t.equal(got.lver, 3, 'lver 3');
    await sanlock.unregister(fd3);
    const owners = await waitFor(() => sanlock.readResourceOwners(spm.lockspace, spm.resource, spm.path, spm.offset),
      (o) => o.owners.length === 0, 5_000);
    t.same(owners.owners, [], 'closing the registration released the lease (asynchronously)');
    const bad = await sanlock.inquire(fd3).catch((e: unknown) => e);
    t.ok(isSanlockError(bad, 'EBADF'), 'the closed registration is refused with EBADF, never reused');
  });

  await t.test('lockspace failure: sanlock signals the holder (killpath), watchLease reports it', async (t) => {
    // The holder is this process: never let sanlock SIGKILL it, and have it
    // signalled with SIGUSR2 through a killpath when B's lockspace fails.
    const onTerm = () => t.fail('sanlock sent SIGTERM: the kill grace period ran out');
    process.on('SIGTERM', onTerm);
    t.teardown(() => { process.off('SIGTERM', onTerm); });

    const fd = await sanlock.registerProcess({ restrictSigkill: true, notifySignal: 'SIGUSR2' });
    fds.push(fd);
    const got = await sanlock.acquire(fd, spmB.lockspace, spmB.resource, spmB.path, spmB.offset);
    t.equal(got.lver, 1, 'holds B:SDM, lver 1');
    const watch = sanlock.watchLease(fd, spmB, { intervalMs: 500, signal: 'SIGUSR2', lockspace: { hostId: 1, path: B.ids, offset: 0 } });

    // Break B's storage: its delta lease can no longer be renewed, and after
    // 8 x io_timeout sanlock declares the lockspace failed.
    const broken = Date.now();
    truncateSync(B.ids, 0);
    let timer: NodeJS.Timeout | undefined;
    const loss = await Promise.race([
      watch.lost,
      new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), 30_000); }),
    ]);
    clearTimeout(timer);
    watch.stop();
    t.match(loss, { reason: 'lockspace-failed' }, `lost after ${((Date.now() - broken) / 1000).toFixed(1)} s: ${loss?.detail}`);
    t.match(await sanlock.inquire(fd), [{ resource: 'SDM' }], 'until released, inquire still lists the lease (why the signal is needed)');

    await sanlock.releaseAll(fd);
    t.same(await sanlock.inquire(fd), [], 'released');
    const st = await waitFor(() => sanlock.inqLockspace(B.name, 1, B.ids, 0), (s) => s === 'absent', 10_000);
    t.equal(st, 'absent', 'once nothing holds leases in it, sanlock drops the failed lockspace');
    const idx = joined.findIndex((l) => l.name === B.name);
    if (idx >= 0) joined.splice(idx, 1);

    const refused = await sanlock.acquire(fd, spmB.lockspace, spmB.resource, spmB.path, spmB.offset).catch((e: unknown) => e);
    t.ok(isSanlockError(refused), `acquire in the failed lockspace fails: ${(refused as Error).message}`);
  });

  await t.test('leaving the lockspace', async (t) => {
    for (const fd of fds.splice(0)) await sanlock.unregister(fd);
    await sanlock.remLockspace(A.name, 1, A.ids, 0, { unused: true });
    joined.splice(0);
    t.equal(await sanlock.inqLockspace(A.name, 1, A.ids, 0), 'absent', 'left');
    t.equal(Sanlock.strerror(SanlockRc.SANLK_ACQUIRE_IDLIVE), 'Lease is held by another host', 'strerror of a SANLK_ code');
  });
});
