// HSM and SPM mailboxes in one process on one pair of real area files: a
// request is served and replied, duplicates are joined, handler failures come
// back as failed replies, 60+ concurrent requests from several hosts, the
// overall timeout, and invalid blocks are ignored.
import t from 'tap';
import { BlockFile } from '../../../../agent/storage/mailbox/block-file.js';
import { MailboxReasonError, MailboxTimeoutError } from '../../../../agent/storage/mailbox/errors.js';
import { BLOCK_SIZE, areaBytes, blockOffset, decodeBlock } from '../../../../agent/storage/mailbox/format.js';
import type { ExtendReply } from '../../../../agent/storage/mailbox/hsm-mailbox.js';
import { Fleet, MAX_HOSTS, areaFiles, labDir, percentile, recorder, removeDir, volume, waitFor, within } from './helpers.js';

async function setup(t: { teardown: (fn: () => Promise<void>) => void }, tag: string): Promise<Fleet> {
  const dir = await labDir(tag);
  const fleet = new Fleet(await areaFiles(dir));
  t.teardown(async () => { await fleet.stopAll(); await removeDir(dir); });
  return fleet;
}

async function readBlock(path: string, kind: 'request' | 'reply', hostId: number) {
  const f = await BlockFile.open(path, { writable: false, maxIoBytes: BLOCK_SIZE });
  try {
    const r = decodeBlock(await f.read(blockOffset(hostId), BLOCK_SIZE), { kind, ownerHostId: hostId });
    if (!r.ok) throw new Error(r.error);
    return r.block;
  } finally {
    await f.close();
  }
}

t.test('a request is served, replied and cleared', async (t) => {
  const fleet = await setup(t, 'basic');
  const h = recorder();
  const spm = await fleet.spm({ extend: h.extend, spmHostId: 1, scanIntervalMs: 200 });
  const hsm = await fleet.hsm(2);
  const v = volume();
  const reply = await within(hsm.requestExtend({ ...v, sizeMiB: 1024 }), 10_000, 'reply');
  t.equal(reply.status, 'ok');
  t.equal(reply.reason, 'none');
  t.equal(reply.spmHostId, 1);
  t.equal(reply.sends, 1);
  t.same(Object.keys(reply.phasesMs), ['queued', 'written', 'replied', 'cleared']);
  t.match(reply, { ...v, sizeMiB: 1024, hostId: 2 });
  t.same(h.calls.map((c) => [c.domainId, c.volumeId, c.sizeMiB]), [[v.domainId, v.volumeId, 1024]]);
  t.comment(`round trip ${reply.totalMs} ms, phases ${JSON.stringify(reply.phasesMs)}`);
  const req = await readBlock(fleet.paths.requestsPath, 'request', 2);
  t.ok(req.slots.every((s) => !s), 'the HSM cleared its slot');
  await waitFor(async () => (await readBlock(fleet.paths.repliesPath, 'reply', 2)).slots.every((s) => !s), 3000, 'the SPM clears its reply');
  t.equal(spm.stats.served, 1);
  t.equal(hsm.inFlight, 0);
});

t.test('duplicates are joined; a re-send does not run the handler again', async (t) => {
  const fleet = await setup(t, 'dup');
  const h = recorder({ delayMs: 300 });
  await fleet.spm({ extend: h.extend });
  const hsm = await fleet.hsm(3, { resendAfterMs: 100 });
  const v = volume();
  const p1 = hsm.requestExtend({ ...v, sizeMiB: 100 });
  const p2 = hsm.requestExtend({ ...v, sizeMiB: 100 });
  const p3 = hsm.requestExtend({ ...v, sizeMiB: 80 });
  const p4 = hsm.requestExtend({ ...v, sizeMiB: 200 });
  t.equal(p1, p2, 'an identical pending request is joined');
  t.equal(p1, p3, 'a smaller request for a volume with a pending larger one is joined');
  t.not(p1, p4, 'a larger size is a new request');
  t.equal(hsm.inFlight, 2);
  const [r1, r4] = await within(Promise.all([p1, p4]), 10_000, 'replies');
  t.equal(r1.status, 'ok');
  t.equal(r4.status, 'ok');
  t.same(h.calls.map((c) => c.sizeMiB).sort(), [100, 200], 'the handler ran once per distinct request');
  t.equal(h.peak, 1, 'requests for one volume run one at a time on the SPM');
  t.ok(r1.sends >= 2, `the HSM re-sent while the handler ran (${r1.sends} sends)`);
});

t.test('a handler failure yields a failed reply with a reason', async (t) => {
  const fleet = await setup(t, 'fail');
  const h = recorder({
    fail: (c) => {
      if (c.sizeMiB === 1) return Object.assign(new Error('Insufficient free space: 8 extents needed'), { code: 'ENOSPC' });
      if (c.sizeMiB === 2) return new MailboxReasonError('notFound', 'no such LV');
      if (c.sizeMiB === 3) return new Error('lvextend exploded');
      return undefined;
    },
  });
  const spm = await fleet.spm({ extend: h.extend });
  const hsm = await fleet.hsm(4);
  const [a, b, c, d] = await within(Promise.all([1, 2, 3, 4].map((sizeMiB) => hsm.requestExtend({ ...volume(), sizeMiB }))), 10_000, 'replies');
  t.match(a, { status: 'failed', reason: 'noSpace', reasonText: /^Insufficient free space/ });
  t.match(b, { status: 'failed', reason: 'notFound', reasonText: 'no such LV' });
  t.match(c, { status: 'failed', reason: 'extendFailed', reasonText: 'lvextend exploded' });
  t.match(d, { status: 'ok', reason: 'none' });
  t.equal(spm.stats.failed, 3);
  t.equal(spm.stats.served, 1);
});

t.test('72 concurrent requests from three hosts, bounded handler concurrency', async (t) => {
  const fleet = await setup(t, 'many');
  const h = recorder({ delayMs: () => Math.random() * 20 });
  const spm = await fleet.spm({ extend: h.extend, concurrency: 8 });
  const perHost: Record<number, number> = { 2: 40, 3: 16, 4: 16 }; // 40 > 31 slots: some wait for a slot
  const hsms = await Promise.all(Object.keys(perHost).map((id) => fleet.hsm(Number(id))));
  const t0 = performance.now();
  const jobs: Promise<{ req: { volumeId: string; sizeMiB: number }; reply: ExtendReply }>[] = [];
  for (const hsm of hsms) {
    for (let i = 0; i < perHost[hsm.hostId]!; i++) {
      const req = { ...volume(), sizeMiB: 512 + i };
      jobs.push(hsm.requestExtend(req).then((reply) => ({ req, reply })));
    }
  }
  const results = await within(Promise.all(jobs), 30_000, '72 replies');
  const wall = performance.now() - t0;
  t.equal(results.length, 72);
  t.ok(results.every((r) => r.reply.status === 'ok'), 'all ok');
  t.ok(results.every((r) => r.reply.volumeId === r.req.volumeId && r.reply.sizeMiB === r.req.sizeMiB), 'each reply matches its request');
  t.equal(h.calls.length, 72, 'one handler call each');
  t.ok(h.peak <= 8, `handler concurrency stayed ≤ 8 (peak ${h.peak})`);
  t.ok(results.filter((r) => r.reply.hostId === 2).some((r) => r.reply.phasesMs.queued! > 1), 'host 2 queued requests beyond its 31 slots');
  t.equal(spm.stats.served, 72);
  const totals = results.map((r) => r.reply.totalMs);
  t.comment(`72 concurrent: wall ${Math.round(wall)} ms, round trip p50 ${percentile(totals, 50)} ms, p99 ${percentile(totals, 99)} ms`);
  t.ok(hsms.every((m) => m.inFlight === 0));
});

t.test('no SPM: the overall timeout rejects with a clear error and frees the slot', async (t) => {
  const fleet = await setup(t, 'timeout');
  const hsm = await fleet.hsm(5, { timeoutMs: 600, resendAfterMs: 200 });
  const v = volume();
  const err = await hsm.requestExtend({ ...v, sizeMiB: 64 }).then(() => undefined, (e: unknown) => e);
  t.type(err, MailboxTimeoutError);
  t.match((err as Error).message, /no reply from the SPM to extend volume .* to 64 MiB within 600 ms \(after \d+ send\(s\)\)/);
  t.match(err, { errorName: 'timeout', data: { hostId: 5, volumeId: v.volumeId } });
  t.equal(hsm.inFlight, 0);
  await waitFor(async () => (await readBlock(fleet.paths.requestsPath, 'request', 5)).slots.every((s) => !s), 2000, 'slot cleared on disk');
  await t.rejects(hsm.requestExtend({ ...v, sizeMiB: 0 }), /bad extension size/);
  await t.rejects(hsm.requestExtend({ domainId: 'x', volumeId: v.volumeId, sizeMiB: 1 }), /bad domain or volume UUID/);
});

t.test('a corrupt request block is ignored; other hosts are served', async (t) => {
  const fleet = await setup(t, 'corrupt');
  const h = recorder();
  const spm = await fleet.spm({ extend: h.extend });
  const raw = await BlockFile.open(fleet.paths.requestsPath, { writable: true, maxIoBytes: areaBytes(MAX_HOSTS) });
  t.teardown(() => raw.close());
  const garbage = Buffer.alloc(BLOCK_SIZE, 0x5a);
  garbage.write('HVMB', 0, 'latin1');
  await raw.write(blockOffset(6), garbage);
  const hsm = await fleet.hsm(7);
  const reply = await within(hsm.requestExtend({ ...volume(), sizeMiB: 10 }), 10_000, 'reply');
  t.equal(reply.status, 'ok');
  t.ok(spm.stats.badBlocks >= 1, 'the corrupt block was seen and skipped');
  t.equal(h.calls.length, 1);
});
