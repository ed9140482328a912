// Integration: a qcow2 written directly on a small loop device (standing in for an LV) runs out of
// space under a guest write. With error_policy='stop' libvirt pauses the guest and reports an
// 'io-error-reason' event with reason 'enospc', and diskErrors() says NO_SPACE for the disk; growing
// the device and resuming lets the guest finish.
import t from 'tap';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Connection, enums } from '../../../agent/libvirt/index.js';
import { guestDomainXml, waitForSerialMarker } from '../../lab/guest.js';
import {
  EventLog, SYSTEM_URI, attachLoop, destroyGuestQuietly, detachLoopQuietly, guestName, makeTempDir, removeDir, run,
} from './qemu-helpers.js';

const { DomainEventType, DomainEventSuspendedDetailType, DomainEventResumedDetailType, DomainEventIOErrorAction,
  DomainState, DomainPausedReason } = enums;
const MiB = 1024 * 1024;

t.test('a qcow2 on a full 64 MiB loop device pauses the guest with io-error-reason enospc; after growing the device and resume the guest write completes and the image checks clean', async (t) => {
  const name = guestName('enospc');
  const dir = await makeTempDir('enospc');
  const serial = join(dir, 'serial.log');
  const backing = join(dir, 'lv.img');
  let conn: Connection | undefined;
  let loop: string | undefined;
  t.teardown(async () => {
    await destroyGuestQuietly(name, conn);
    await conn?.close().catch(() => {});
    if (loop) await detachLoopQuietly(loop, backing);
    await removeDir(dir);
  });

  await writeFile(backing, '');
  await truncate(backing, 64 * MiB);
  loop = await attachLoop(backing);
  t.comment(`loop device ${loop} over a 64 MiB file`);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', loop, '1G']);

  conn = await Connection.open(SYSTEM_URI, { callTimeoutMs: 60_000 });
  const ioErrors = new EventLog<'io-error-reason'>(name);
  const lifecycle = new EventLog<'lifecycle'>(name);
  const subs = [
    await conn.subscribe('io-error-reason', ioErrors.listener),
    await conn.subscribe('lifecycle', lifecycle.listener),
  ];
  t.teardown(() => Promise.all(subs.map((s) => s.close().catch(() => {}))));

  const dom = await conn.createXML(guestDomainXml({
    name,
    serialPath: serial,
    disk: { path: loop, type: 'block', format: 'qcow2', errorPolicy: 'stop' },
    // 200 MiB of direct writes into a qcow2 that can hold less than 64 MiB.
    cmdline: ['lab.delay=1', 'lab.dd=200', 'lab.end=poweroff'],
  }));
  await waitForSerialMarker(serial, 'LAB-DD-START', 120_000);

  const ioErr = await ioErrors.waitFor("io-error-reason with reason 'enospc'", (ev) => ev.reason === 'enospc', 120_000);
  t.equal(ioErr.ev.srcPath, loop, 'the I/O error names the loop device');
  t.equal(ioErr.ev.action, DomainEventIOErrorAction.PAUSE, 'the action is PAUSE (error_policy stop)');
  t.ok(ioErr.ev.devAlias.length > 0, `the I/O error names the disk alias (${ioErr.ev.devAlias})`);

  const suspended = await lifecycle.waitFor('lifecycle SUSPENDED',
    (ev) => ev.event === DomainEventType.SUSPENDED, 30_000);
  t.equal(suspended.ev.detail, DomainEventSuspendedDetailType.IOERROR, 'the guest was SUSPENDED for an I/O error');

  const st = await dom.state();
  t.equal(st.state, DomainState.PAUSED, 'domain.state() is PAUSED');
  t.equal(st.reason, DomainPausedReason.IOERROR, 'with reason IOERROR');
  // What a restarted agent reads to tell an ENOSPC pause from another I/O error (no event to go by).
  t.same(await dom.diskErrors(), { vda: enums.DomainDiskErrorCode.NO_SPACE }, 'diskErrors() names vda with NO_SPACE');
  const before = await readFile(serial, 'latin1');
  t.notMatch(before, /LAB-DD-DONE/, 'the guest write has not completed while paused');

  // The counterpart of lvextend + lvchange --refresh.
  const t0 = performance.now();
  await truncate(backing, 512 * MiB);
  await run('losetup', ['-c', loop]);
  const { stdout: size } = await run('blockdev', ['--getsize64', loop]);
  t.equal(Number(size.trim()), 512 * MiB, 'the loop device now has 512 MiB');
  await dom.resume();
  t.comment(`grow + losetup -c + resume: ${Math.round(performance.now() - t0)} ms`);

  const resumed = await lifecycle.waitFor('lifecycle RESUMED', (ev) => ev.event === DomainEventType.RESUMED, 30_000);
  t.equal(resumed.ev.detail, DomainEventResumedDetailType.UNPAUSED, 'RESUMED detail is UNPAUSED');

  const done = await waitForSerialMarker(serial, /^LAB-DD-DONE rc=\d+/, 180_000);
  t.match(done.line, /^LAB-DD-DONE rc=0 /, `the guest write completes successfully (${done.line})`);
  t.match(done.line, /200\+0 records out/, 'all 200 MiB were written');

  // lab.end=poweroff: wait until QEMU is gone before checking the image.
  await lifecycle.waitFor('lifecycle STOPPED after the guest powers off',
    (ev) => ev.event === DomainEventType.STOPPED, 60_000);
  const suspends = lifecycle.matching((ev) => ev.event === DomainEventType.SUSPENDED).length;
  t.comment(`the guest paused ${suspends} time(s); ${ioErrors.events.length} io-error-reason event(s)`);

  const check = await run('qemu-img', ['check', loop], 60_000);
  t.match(check.stdout, /No errors were found on the image/, 'qemu-img check on the device is clean');
  const end = /Image end offset: (\d+)/.exec(check.stdout);
  t.ok(end && Number(end[1]) > 200 * MiB, `the qcow2 grew past 200 MiB on the device (end offset ${end?.[1]})`);
});
