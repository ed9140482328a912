// SPM changes and lost replies, on real area files: a request whose SPM stops
// mid-way is re-sent and served by a new SPM started later; a reply lost on
// disk is written again on re-send; a new SPM clears stale replies; an SPM
// whose lease check turns false stops replying.
import t from 'tap';
import { BlockFile } from '../../../../agent/storage/mailbox/block-file.js';
import { MailboxTimeoutError, MailboxUnavailableError } from '../../../../agent/storage/mailbox/errors.js';
import { BLOCK_SIZE, blockOffset, decodeBlock, emptyHostBlock, encodeBlock, type ReplySlot } from '../../../../agent/storage/mailbox/format.js';
import { Fleet, areaFiles, labDir, recorder, removeDir, volume, waitFor, within } from './helpers.js';

async function setup(t: { teardown: (fn: () => Promise<void>) => void }, tag: string): Promise<Fleet> {
  const dir = await labDir(tag);
  const fleet = new Fleet(await areaFiles(dir));
  t.teardown(async () => { await fleet.stopAll(); await removeDir(dir); });
  return fleet;
}

async function replies(path: string, hostId: number) {
  const f = await BlockFile.open(path, { writable: false, maxIoBytes: BLOCK_SIZE });
  try {
    const r = decodeBlock(await f.read(blockOffset(hostId), BLOCK_SIZE), { kind: 'reply', ownerHostId: hostId });
    if (!r.ok) throw new Error(r.error);
    return r.block;
  } finally {
    await f.close();
  }
}

t.test('SPM stopped mid-way: the request is re-sent and served by a new SPM', async (t) => {
  const fleet = await setup(t, 'lost');
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const first = recorder();
  const spm1 = await fleet.spm({ spmHostId: 1, drainMs: 100, extend: async (d, v, s) => { await first.extend(d, v, s); await gate; } });
  const hsm = await fleet.hsm(2, { resendAfterMs: 300, timeoutMs: 20_000 });
  const v = volume();
  const pending = hsm.requestExtend({ ...v, sizeMiB: 2048 });
  await waitFor(() => first.calls.length === 1, 5000, 'the first SPM runs the handler');
  await within(spm1.stop(), 5000, 'spm1.stop()');
  t.equal(spm1.running, false);
  release(); // the first SPM's handler finishes after it stopped: its result must be dropped
  await new Promise((r) => setTimeout(r, 1000)); // the HSM re-sends to nobody meanwhile
  t.ok((await replies(fleet.paths.repliesPath, 2)).slots.every((s) => !s), 'the stopped SPM wrote no reply');
  const second = recorder();
  const spm2 = await fleet.spm({ spmHostId: 3, extend: second.extend });
  const reply = await within(pending, 10_000, 'reply from the new SPM');
  t.match(reply, { status: 'ok', spmHostId: 3, sizeMiB: 2048, volumeId: v.volumeId });
  t.ok(reply.sends >= 3, `re-sent while no SPM served (${reply.sends} sends)`);
  t.equal(second.calls.length, 1, 'the new SPM ran the (idempotent) handler again');
  t.equal(spm2.stats.served, 1);
});

t.test('a reply lost on disk is written again when the HSM re-sends', async (t) => {
  const fleet = await setup(t, 'relost');
  const h = recorder();
  const spm = await fleet.spm({ extend: h.extend });
  const hsm = await fleet.hsm(4, { replyPollMs: 500, resendAfterMs: 300 });
  const pending = hsm.requestExtend({ ...volume(), sizeMiB: 300 });
  await waitFor(async () => (await replies(fleet.paths.repliesPath, 4)).slots.some(Boolean), 400, 'the reply is on disk', 2);
  const raw = await BlockFile.open(fleet.paths.repliesPath, { writable: true, maxIoBytes: BLOCK_SIZE });
  await raw.write(blockOffset(4), Buffer.alloc(BLOCK_SIZE)); // the reply is lost before the HSM reads it
  await raw.close();
  const reply = await within(pending, 10_000, 'reply');
  t.equal(reply.status, 'ok');
  t.ok(reply.sends >= 2, `re-sent (${reply.sends} sends)`);
  t.ok(spm.stats.repliesRewritten >= 1, 'the SPM wrote the reply again');
  t.equal(h.calls.length, 1, 'without running the handler again');
});

t.test('a new SPM announces itself, clears stale replies and serves what is pending', async (t) => {
  const fleet = await setup(t, 'stale');
  // A previous SPM left a reply for host 9 and nobody is serving host 2's request.
  const stale = emptyHostBlock('reply', 9, 5, 77n, 10n);
  stale.slots[3] = { state: 'ok', opcode: 1, requestId: 99n, attempt: 0, ...volume(), sizeMiB: 1, reason: 0, reasonText: '', spmHostId: 5, extendMs: 1 } satisfies ReplySlot;
  const raw = await BlockFile.open(fleet.paths.repliesPath, { writable: true, maxIoBytes: BLOCK_SIZE });
  await raw.write(blockOffset(9), encodeBlock(stale));
  await raw.close();
  const hsm = await fleet.hsm(2, { timeoutMs: 20_000 });
  const pending = hsm.requestExtend({ ...volume(), sizeMiB: 4096 });
  await new Promise((r) => setTimeout(r, 300));
  const h = recorder();
  await fleet.spm({ spmHostId: 6, extend: h.extend });
  const block9 = await replies(fleet.paths.repliesPath, 9);
  t.ok(block9.slots.every((s) => !s), 'the stale reply is gone');
  t.equal(block9.writerHostId, 6, 'rewritten by the new SPM');
  const f = await BlockFile.open(fleet.paths.repliesPath, { writable: false, maxIoBytes: BLOCK_SIZE });
  const spmBlock = decodeBlock(await f.read(0, BLOCK_SIZE), { kind: 'spm', ownerHostId: 0 });
  await f.close();
  t.match(spmBlock, { ok: true, block: { writerHostId: 6 } }, 'block 0 names the current SPM');
  t.match(await within(pending, 10_000, 'reply'), { status: 'ok', spmHostId: 6 });
});

t.test('an SPM whose lease check turns false stops replying', async (t) => {
  const fleet = await setup(t, 'lease');
  let lease = true;
  const lost: string[] = [];
  const h = recorder();
  const spm = await fleet.spm({ extend: h.extend, stillSpm: () => Promise.resolve(lease), onLost: (why) => lost.push(why) });
  const hsm = await fleet.hsm(2, { resendAfterMs: 200 });
  t.equal((await within(hsm.requestExtend({ ...volume(), sizeMiB: 1 }), 10_000, 'first reply')).status, 'ok');
  lease = false;
  const err = await hsm.requestExtend({ ...volume(), sizeMiB: 2 }, { timeoutMs: 1500 }).then(() => undefined, (e: unknown) => e);
  t.type(err, MailboxTimeoutError, 'no reply once the lease is gone');
  t.equal(h.calls.length, 1, 'no handler call without the lease');
  t.equal(spm.running, false);
  t.same(lost, ['stillSpm() returned false']);
  t.ok((await replies(fleet.paths.repliesPath, 2)).slots.every((s) => !s || s.sizeMiB === 1), 'no reply for the second request');
  lease = true;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(spm.running, false, 'a lost SPM mailbox does not come back by itself');
});

t.test('a throwing lease check counts as lost; a non-SPM cannot start', async (t) => {
  const fleet = await setup(t, 'lease2');
  const h = recorder();
  await t.rejects(fleet.spm({ extend: h.extend, stillSpm: () => false }), MailboxUnavailableError);
  let calls = 0;
  const spm = await fleet.spm({ extend: h.extend, stillSpm: () => { if (++calls > 1) throw new Error('sanlock inquire failed'); return true; } });
  const hsm = await fleet.hsm(3);
  await t.rejects(hsm.requestExtend({ ...volume(), sizeMiB: 5 }, { timeoutMs: 800 }), MailboxTimeoutError);
  t.equal(spm.running, false);
  t.equal(h.calls.length, 0);
});

t.test('a request withdrawn while its handler runs: the result is dropped', async (t) => {
  const fleet = await setup(t, 'withdraw');
  const h = recorder({ delayMs: 500 });
  const spm = await fleet.spm({ extend: h.extend, scanIntervalMs: 100 });
  const hsm = await fleet.hsm(2);
  const outcome = hsm.requestExtend({ ...volume(), sizeMiB: 7 }).then(() => undefined, (e: unknown) => e);
  await waitFor(() => h.calls.length === 1, 5000, 'handler runs');
  await hsm.stop(); // clears the slot
  t.type(await outcome, MailboxUnavailableError, 'the stopped HSM fails its pending request');
  await new Promise((r) => setTimeout(r, 800));
  t.ok((await replies(fleet.paths.repliesPath, 2)).slots.every((s) => !s), 'no reply written for a withdrawn request');
  t.equal(spm.stats.served, 0);
});
