import t from 'tap';
import { OpQueue } from '../../../agent/vm/op-queue.js';

t.test('operations on one queue run one at a time, in order, even when one fails', async (t) => {
  const q = new OpQueue();
  const log: string[] = [];
  let running = 0, maxRunning = 0;
  const op = (name: string, ms: number, fail = false) => q.run(async () => {
    running++; maxRunning = Math.max(maxRunning, running);
    log.push(`start ${name}`);
    await new Promise((r) => setTimeout(r, ms));
    log.push(`end ${name}`);
    running--;
    if (fail) throw new Error(name);
    return name;
  });
  const results = await Promise.allSettled([op('a', 30), op('b', 5, true), op('c', 1)]);
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  t.same(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  t.equal(maxRunning, 1);
  t.equal(q.length, 0);
});

t.test('separate queues (separate VMs) run in parallel', async (t) => {
  const a = new OpQueue(), b = new OpQueue();
  const t0 = Date.now();
  await Promise.all([a.run(() => new Promise((r) => setTimeout(r, 100))), b.run(() => new Promise((r) => setTimeout(r, 100)))]);
  t.ok(Date.now() - t0 < 180, 'both finished in about one delay');
});
