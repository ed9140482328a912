// The monitor's read check on real files: an O_DIRECT read through dd with
// dd's own delay figure, a failed read, a read hung on a fifo (killed at the
// timeout), and the bounded probes that keep a probe that never returns from
// holding up its caller or piling up.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BoundedProbes } from '../../../../agent/storage/monitor/bounded-probe.js';
import { readHeadDirect, ReadCheckError } from '../../../../agent/storage/monitor/read-delay.js';
import { readersOf } from './processes.js';

// /var/tmp: O_DIRECT needs a real file system (tmpfs refuses it).
const scratch = await mkdtemp('/var/tmp/hv-read-check-');
t.teardown(() => rm(scratch, { recursive: true, force: true }));

t.test('an O_DIRECT read of a small metadata file returns its bytes and dd\'s delay', async (t) => {
  const f = join(scratch, 'metadata');
  await writeFile(f, 'VERSION=1\nEOF\n');
  const r = await readHeadDirect(f, 4096, 5_000);
  t.equal(r.bytes.toString('utf8'), 'VERSION=1\nEOF\n', 'a short read of a small file is the whole file');
  t.ok(r.seconds > 0 && r.seconds < 1, `delay ${r.seconds} s, from dd's own figure`);
});

t.test('a read of a missing file fails (not a timeout)', async (t) => {
  const err = await readHeadDirect(join(scratch, 'gone'), 4096, 5_000).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof ReadCheckError, 'ReadCheckError');
  t.equal((err as ReadCheckError).timedOut, false);
  t.match((err as Error).message, /No such file/);
});

t.test('a read hung on a fifo is killed at its timeout, and leaves no reader behind', async (t) => {
  const fifo = join(scratch, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const t0 = performance.now();
  const pending = readHeadDirect(fifo, 4096, 700).then(() => undefined, (e: unknown) => e);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(readersOf(fifo), 1, 'the read is hung in dd');
  const err = await pending;
  const ms = performance.now() - t0;
  t.ok(err instanceof ReadCheckError && err.timedOut, 'timed out');
  t.ok(ms >= 650 && ms < 3_000, `answered after ${Math.round(ms)} ms (timeout 700)`);
  t.equal(readersOf(fifo), 0, 'the dd was killed');
});

t.test('probes: a probe that never returns (simulated: a read stuck in uninterruptible I/O, which SIGKILL cannot end) answers timeout, then blocked without starting another', async (t) => {
  const probes = new BoundedProbes();
  let calls = 0;
  let release!: () => void;
  const stuck = () => { calls++; return new Promise<string>((r) => { release = () => r('late'); }); };
  const t0 = performance.now();
  const first = await probes.run('read', 200, stuck, 100);
  const ms = performance.now() - t0;
  t.equal(first.kind, 'timeout');
  t.ok(ms >= 280 && ms < 2_000, `timeout reported after ${Math.round(ms)} ms (200 + grace 100)`);
  const t1 = performance.now();
  const second = await probes.run('read', 200, stuck, 100);
  t.equal(second.kind, 'blocked', 'the next check does not pile up behind the stuck one');
  t.ok(performance.now() - t1 < 50, 'and answers at once');
  t.equal(calls, 1, 'no second probe was started');
  t.ok(probes.stuckFor('read')! >= 280, 'the stuck probe is known');
  const other = await probes.run('refresh', 200, async () => 'fine', 100);
  t.same(other.kind, 'ok', 'another kind of probe is not held up');
  release();
  await probes.drain(1_000);
  t.equal(probes.stuckFor('read'), undefined, 'once it returns, its slot is free');
  const third = await probes.run('read', 200, async () => 'fresh', 100);
  t.same(third, { kind: 'ok', value: 'fresh', ms: third.ms });
  t.equal(calls, 1);
});

t.test('probes: a failure is reported with its error', async (t) => {
  const probes = new BoundedProbes();
  const r = await probes.run('read', 1_000, async () => { throw new Error('EIO'); });
  t.equal(r.kind, 'failed');
  t.match(String((r as { error: unknown }).error), /EIO/);
});
