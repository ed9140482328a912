// The pure parts of migration: progress from job stats, the slot limits, and host[:port].
import t from 'tap';
import { ProgressTracker } from '../../../../agent/vm/migration/progress.js';
import { Slots } from '../../../../agent/vm/migration/slots.js';
import { parseHostPort } from '../../../../agent/vm/migration/peer.js';

t.test('progress is 100 - 100 x remaining / total, never goes down, and stays at 99 until done', async (t) => {
  const p = new ProgressTracker();
  t.equal(p.update({}).progress, 0, 'no stats yet: 0');
  t.equal(p.update({ data_total: 1000n, data_remaining: 750n }).progress, 25);
  // A new memory iteration re-dirties pages: remaining goes up again, progress does not go down.
  const back = p.update({ data_total: 1000, data_remaining: 900, memory_iteration: 2 });
  t.equal(back.progress, 25, 'held at 25 when remaining grows');
  t.equal(back.dataRemaining, 900, 'data remaining is reported as libvirt gives it');
  t.equal(back.memoryIteration, 2);
  t.equal(p.update({ data_total: 1000, data_remaining: 0 }).progress, 99, 'nothing remaining is still 99 while the job runs');
  t.equal(p.update({ data_total: 0, data_remaining: 0 }).progress, 99, 'a zero total is ignored');
  t.equal(p.done(), 100, '100 only once done');
});

t.test('slots: tryAcquire refuses past the limit; acquire waits for a release, or gives up at its timeout or abort', async (t) => {
  const s = new Slots(() => 2);
  t.ok(s.tryAcquire() && s.tryAcquire(), 'two slots');
  t.notOk(s.tryAcquire(), 'a third is refused');
  t.ok(s.tryAcquire(3), 'an explicit higher limit (incomingLimit) lets it in');
  s.release();
  const t0 = performance.now();
  t.notOk(await s.acquire(100), 'acquire gives up after its timeout');
  t.ok(performance.now() - t0 >= 95, 'after about 100 ms');
  const waiting = s.acquire(5_000);
  setTimeout(() => s.release(), 50);
  t.ok(await waiting, 'acquire gets the slot a release frees');
  t.equal(s.inUse, 2);
  const ac = new AbortController();
  const aborted = s.acquire(5_000, ac.signal);
  ac.abort();
  t.notOk(await aborted, 'an abort ends the wait');
});

t.test('host[:port]: default port, IPv6 in brackets, bad ports refused', async (t) => {
  t.same(parseHostPort('10.250.0.2', 54321), { host: '10.250.0.2', port: 54321 });
  t.same(parseHostPort('hv-2.example:1234', 54321), { host: 'hv-2.example', port: 1234 });
  t.same(parseHostPort('[fd00::2]:99', 54321), { host: '[fd00::2]', port: 99 });
  t.throws(() => parseHostPort('h:70000', 1), TypeError);
  t.throws(() => parseHostPort('a:b:c', 1), TypeError);
});
