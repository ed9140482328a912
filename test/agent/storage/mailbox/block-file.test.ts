// Aligned O_DIRECT I/O (block-file.ts) on a real sparse file and a real loop
// device, plus the coalescing writer the mailboxes use for their block writes.
import t, { type Test } from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlockFile, ensureAreaFile } from '../../../../agent/storage/mailbox/block-file.js';
import { CoalescedWriter } from '../../../../agent/storage/mailbox/coalesced-writer.js';
import { MailboxIoError } from '../../../../agent/storage/mailbox/errors.js';
import { attachLoop, detachLoop, labDir, removeDir } from './helpers.js';

const BS = 4096;

async function roundTrip(t: Test, path: string, direct: 'auto' | 'require' | 'off') {
  const f = await BlockFile.open(path, { writable: true, maxIoBytes: 16 * BS, direct });
  try {
    const zero = await f.read(0, 4 * BS);
    t.ok(zero.every((b) => b === 0), 'a fresh area reads as zeros');
    const data = Buffer.alloc(3 * BS);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    await f.write(BS, data);
    t.same(await f.read(BS, 3 * BS), data, 'what was written reads back');
    await f.write(8 * BS, data.subarray(0, BS));
    t.same(await f.read(8 * BS, BS), data.subarray(0, BS));
    await t.rejects(f.read(100, BS), RangeError, 'unaligned offset');
    await t.rejects(f.read(0, 17 * BS), RangeError, 'larger than maxIoBytes');
    await t.rejects(f.read(64 * BS, BS), MailboxIoError, 'beyond the end');
    return f.direct;
  } finally {
    await f.close();
  }
}

t.test('plain sparse file: O_DIRECT with buffer realignment', async (t) => {
  const dir = await labDir('bf');
  t.teardown(() => removeDir(dir));
  const path = join(dir, 'area');
  await ensureAreaFile(path, 32 * BS);
  t.equal(await roundTrip(t, path, 'require'), true, 'O_DIRECT stays on');
  const path2 = join(dir, 'area2');
  await ensureAreaFile(path2, 32 * BS);
  t.equal(await roundTrip(t, path2, 'off'), false, 'buffered when asked');
  const small = join(dir, 'small');
  await writeFile(small, Buffer.alloc(BS));
  const f = await BlockFile.open(small, { writable: false, maxIoBytes: BS });
  await t.rejects(f.ensureSize(2 * BS), /smaller than 8192 bytes/);
  await t.rejects(f.write(0, Buffer.alloc(BS)), /read-only/);
  await f.close();
});

t.test('loop device: O_DIRECT', async (t) => {
  const dir = await labDir('bf-loop');
  const file = join(dir, 'backing');
  await ensureAreaFile(file, 32 * BS);
  const dev = await attachLoop(file);
  t.teardown(async () => { await detachLoop(dev, file); await removeDir(dir); });
  t.equal(await roundTrip(t, dev, 'require'), true, 'O_DIRECT on the block device');
  const f = await BlockFile.open(dev, { writable: false, maxIoBytes: BS });
  await f.ensureSize(32 * BS);
  await t.rejects(f.ensureSize(33 * BS), /smaller than/);
  await f.close();
});

t.test('coalesced writer: one write at a time, later requests coalesce', async (t) => {
  let state = 0;
  const written: number[] = [];
  let fail = false;
  const w = new CoalescedWriter(async () => {
    const snapshot = state;
    await sleep(20);
    if (fail) throw new Error('disk gone');
    written.push(snapshot);
  });
  state = 1;
  const p1 = w.request();
  state = 2;
  const p2 = w.request();
  state = 3;
  const p3 = w.request();
  await Promise.all([p1, p2, p3]);
  t.same(written, [1, 3], 'the first write, then one more that includes every later change');
  t.equal(w.dirty, false);
  fail = true;
  state = 4;
  await t.rejects(w.request(), /disk gone/);
  t.equal(w.dirty, true, 'a failed write leaves the writer dirty');
  fail = false;
  await w.request();
  t.same(written.at(-1), 4);
  t.equal(w.dirty, false);
  await w.idle();
});
