// Memory relief: level-triggered on the resident size against the lowest it
// has been; past the slack it trims malloc (on the thread pool) and asks V8
// for a memory-reducing GC, again at once after a new rise and otherwise with
// a backoff; it does nothing while the event loop is busy. And for real, in
// this process: 100 MB of freed Buffers in malloc's arenas go back.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryRelief } from '../../agent/memory-relief.js';
import { silentLogger } from '../../agent/log.js';
import { mallocStats } from '../../agent/libvirt/process-memory.js';

const MiB = 1024 * 1024;
/** Long enough that the event loop was mostly idle since the previous check (a GC asked for runs in steps meanwhile). */
const IDLE_MS = 150;

/** A relief whose resident size the test sets; checks only when the test calls them. */
function scripted(o: { busyGate?: boolean } = {}): { relief: MemoryRelief; set: (mib: number) => void } {
  let rss = 100 * MiB;
  // Without the busy gate unless asked: on a loaded machine the GC steps a request starts can make any short window look busy.
  const relief = new MemoryRelief({ checkMs: 3_600_000, slackBytes: 8 * MiB, log: silentLogger, rss: () => rss, ...(o.busyGate ? {} : { busyUtilization: 1.01 }) });
  relief.start();
  return { relief, set: (mib) => { rss = mib * MiB; } };
}

t.test('under the slack nothing is done; past it a trim each check, GC requests at once and then 1, 2, 4 checks apart', async (t) => {
  const { relief, set } = scripted();
  t.teardown(() => relief.stop());
  await sleep(IDLE_MS); // an idle event loop since start
  set(105);
  t.equal(await relief.check(), undefined, '5 MiB over the lowest: within the slack, nothing done');
  set(130);
  const asked: boolean[] = [];
  for (let i = 0; i < 7; i++) {
    await sleep(IDLE_MS);
    const r = await relief.check();
    t.ok(r, `check ${i + 1} over the slack released`);
    asked.push(r?.gcRequested ?? false);
  }
  t.same(asked, [true, false, true, false, false, true, false], 'a GC asked for at the first check, then after 1, 2, 4 checks');
  set(160);
  await sleep(IDLE_MS);
  t.equal((await relief.check())?.gcRequested, true, 'a new rise past the slack since the last request asks again at once');
  set(101);
  await sleep(IDLE_MS);
  t.equal(await relief.check(), undefined, 'back within the slack: nothing done, and the backoff starts over');
  set(130);
  await sleep(IDLE_MS);
  t.equal((await relief.check())?.gcRequested, true);
  set(90);
  await sleep(IDLE_MS);
  await relief.check();
  t.equal(relief.floorBytes, 90 * MiB, 'the lowest reading becomes the reference');
});

t.test('while the event loop was busy since the last check, nothing is released', async (t) => {
  const { relief, set } = scripted({ busyGate: true });
  t.teardown(() => relief.stop());
  t.equal(await relief.check(), undefined, 'within the slack (and the window starts here)');
  set(200);
  const until = performance.now() + 400;
  while (performance.now() < until) { /* the event loop is busy */ }
  t.equal(await relief.check(), undefined, 'busy: the burst is still on');
  await sleep(1_000);
  t.ok(await relief.check(), 'idle again: released');
});

const glibc = mallocStats() !== null;
t.test('for real: 100 MB of freed Buffers kept by malloc go back to the kernel', { skip: glibc ? false : 'malloc is not glibc 2.33+: nothing to trim' }, async (t) => {
  const relief = new MemoryRelief({ checkMs: 3_600_000, slackBytes: 8 * MiB, log: silentLogger });
  relief.start();
  t.teardown(() => relief.stop());
  // 100 KB each: under glibc's mmap threshold, so they come from (and are freed into) the arenas.
  let held: Buffer[] | undefined = Array.from({ length: 1_000 }, () => Buffer.alloc(100 * 1024, 1));
  const peak = process.memoryUsage.rss();
  t.ok(peak - (relief.floorBytes ?? 0) > 50 * MiB, `the Buffers are resident (${Math.round(peak / MiB)} MiB)`);
  held = undefined;
  t.equal(held, undefined);
  let rss = peak;
  const until = performance.now() + 20_000;
  for (let i = 0; i < 40 && performance.now() < until && peak - rss < 80 * MiB; i++) {
    await sleep(500);
    await relief.check();
    rss = process.memoryUsage.rss();
  }
  t.ok(peak - rss >= 80 * MiB, `RSS fell by ${Math.round((peak - rss) / MiB)} MiB (from ${Math.round(peak / MiB)} to ${Math.round(rss / MiB)} MiB)`);
});
