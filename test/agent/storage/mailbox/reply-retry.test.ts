// A reply write that fails is retried by the SPM's poll loop, and the SPM
// logs "extend request served" once, for the write that reached the disk,
// with the fields extension-audit.ts matches on. The replies area is a real
// loop device; the failure is real too: while the extend handler runs the
// device is made read-only (blockdev --setro, so the SPM's write gets EPERM),
// and it is made writable again once the SPM has logged the failed write.
import t from 'tap';
import { join } from 'node:path';
import { createLogger } from '../../../../agent/log.js';
import { ensureAreaFile } from '../../../../agent/storage/mailbox/block-file.js';
import { auditExtensions, describeUnmatched } from '../extension-audit.js';
import { Fleet, attachLoop, detachLoop, labDir, recorder, removeDir, run, volume, waitFor, within } from './helpers.js';

t.test('the first reply write fails, the poll loop\'s retry succeeds: "extend request served" is logged once, with the request id, host, volume, size and status', async (t) => {
  const dir = await labDir('reply-retry');
  const files = { requests: join(dir, 'requests.img'), replies: join(dir, 'replies.img') };
  await ensureAreaFile(files.requests, 1024 * 1024);
  await ensureAreaFile(files.replies, 1024 * 1024);
  let dev: string | undefined;
  let fleet: Fleet | undefined;
  t.teardown(async () => {
    if (dev) await run('blockdev', ['--setrw', dev]).catch(() => undefined);
    await fleet?.stopAll(); // close the device before detaching it
    if (dev) await detachLoop(dev, files.replies);
    await removeDir(dir);
  });
  dev = await attachLoop(files.replies);
  const replyDev = dev;
  fleet = new Fleet({ requestsPath: files.requests, repliesPath: replyDev });

  const lines: string[] = [];
  const log = createLogger({ level: 'info', sink: (l) => { lines.push(l); if (process.env['HV_TEST_LOG']) process.stderr.write(l + '\n'); } });
  const records = (msg: string) => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r['msg'] === msg);
  const h = recorder();
  const spm = await fleet.spm({
    log, spmHostId: 1,
    // The reply area turns read-only while the handler runs: the reply written right after it fails.
    extend: async (d, v, s) => { await h.extend(d, v, s); await run('blockdev', ['--setro', replyDev]); },
  });
  // No re-send within the test: the retry is the SPM's own (poll loop), not a reply to a re-sent request.
  const hsm = await fleet.hsm(2, { resendAfterMs: 30_000, timeoutMs: 30_000 });
  const v = volume();
  const pending = hsm.requestExtend({ ...v, sizeMiB: 1536 });

  await waitFor(() => records('writing a reply failed; retried by the poll loop').length > 0, 10_000, 'the first reply write failed');
  t.equal(records('extend request served').length, 0, 'nothing is logged as served while the reply is not on disk');
  t.equal(spm.stats.served, 0, 'nor counted');
  await new Promise((r) => setTimeout(r, 300)); // a few poll-loop retries fail too
  await run('blockdev', ['--setrw', replyDev]);

  const reply = await within(pending, 10_000, 'the reply, after the retry');
  t.match(reply, { status: 'ok', spmHostId: 1, hostId: 2, sizeMiB: 1536, volumeId: v.volumeId, sends: 1 }, 'the HSM got an ok reply to its one send');
  await new Promise((r) => setTimeout(r, 500)); // later writes of the block (the slot cleared) must not log it again
  const served = records('extend request served');
  t.equal(served.length, 1, 'logged once');
  t.match(served[0], { requestId: reply.requestId, hostId: 2, volumeId: v.volumeId, domainId: v.domainId, sizeMiB: 1536, status: 'ok', reason: 'none' },
    'with the request id, host, volume, size and status');
  const phases = served[0]?.['phasesMs'] as Record<string, number> | undefined;
  t.ok(phases && typeof phases['extend'] === 'number' && typeof phases['reply'] === 'number' && phases['reply'] >= 250,
    `with its phase times, the reply phase including the retries ${JSON.stringify(phases)}`);
  t.equal(spm.stats.served, 1, 'counted once');
  t.equal(h.calls.length, 1, 'the handler ran once');
  const audit = auditExtensions([{ volume: v.volumeId, toMiB: 1536, requestId: reply.requestId }], served, 2);
  t.equal(audit.unmatched.length, 0, `extension-audit matches the extension ${describeUnmatched(audit)}`);
});
