// The executor's cancel against a real SQLite store: only kinds registered cancellable accept it;
// a running handler sees its cancelSignal; a queued job meets the request when it starts; the
// request is persisted with the job, so a job resumed by the next executor still sees it.
import t from 'tap';
import { join } from 'node:path';
import { scratchDir } from '../../agent/harness.js';
import { Store } from '../../../controller/store/store.js';
import { JobExecutor, type JobContext } from '../../../controller/jobs/executor.js';
import { JobFailure } from '../../../controller/jobs/job-failure.js';
import type { Job } from '../../../controller/model/jobs.js';

const TARGET = '00000000-0000-4000-8000-000000000001';

async function openStore(t: { teardown(fn: () => unknown): void }): Promise<Store> {
  const store = await Store.open({ engine: 'sqlite', path: join(scratchDir('hv-cancel-'), 'c.db') });
  t.teardown(() => store.close());
  return store;
}

const newJob = (store: Store, kind: Job['kind']): Promise<Job> =>
  store.jobs.create({ kind, targetKind: 'disk', targetId: TARGET, params: {}, correlationId: 'corr-c' });

async function state(store: Store, id: string, want: (j: Job) => boolean, ms = 5_000): Promise<Job> {
  const end = Date.now() + ms;
  for (;;) {
    const j = await store.jobs.get(id);
    if (want(j)) return j;
    if (Date.now() > end) throw new Error(`job ${id}: ${j.state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const ended = (store: Store, id: string) => state(store, id, (j) => j.state === 'succeeded' || j.state === 'failed');

/** Waits for its cancelSignal (at most 5 s), then fails Cancelled, as the disk jobs do. */
const cancellableHandler = (seen: string[]) => async (ctx: JobContext): Promise<void> => {
  seen.push(`start:${ctx.cancelSignal.aborted ? 'already-cancelled' : 'running'}`);
  await ctx.step('work', () => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5_000);
    const done = () => { clearTimeout(timer); resolve(); };
    if (ctx.cancelSignal.aborted) done(); else ctx.cancelSignal.addEventListener('abort', done, { once: true });
  }));
  if (ctx.cancelSignal.aborted) throw new JobFailure('Cancelled', `cancelled: ${String(ctx.cancelSignal.reason)}`);
};

t.test('a kind not registered cancellable refuses; a running cancellable job sees its signal and fails Cancelled, the request kept with it', async (t) => {
  const store = await openStore(t);
  const seen: string[] = [];
  const ex = new JobExecutor({ store, maxConcurrent: 2, handlers: { 'disk.create': async () => { await new Promise((r) => setTimeout(r, 300)); } } });
  ex.register('disk.copy', cancellableHandler(seen), { cancellable: true });
  t.teardown(() => ex.close());
  const plain = await newJob(store, 'disk.create');
  ex.submit(plain);
  t.equal(await ex.cancel(plain, 'no'), 'notCancellable', 'disk.create: notCancellable');
  t.equal((await ended(store, plain.id)).state, 'succeeded', 'and it ran to its end');

  const job = await newJob(store, 'disk.copy');
  ex.submit(job);
  await state(store, job.id, (j) => j.steps.some((s) => s.name === 'work'));
  t.equal(await ex.cancel(job, 'by test'), 'requested', 'requested');
  const j = await ended(store, job.id);
  t.same([j.state, j.error?.code, j.error?.message], ['failed', 'Cancelled', 'cancelled: by test'], 'failed Cancelled, with the reason');
  t.equal((j.params['memo'] as Record<string, unknown>)['cancelRequested'], 'by test', 'the request is persisted with the job');
  t.same(seen, ['start:running']);
  t.equal(await ex.cancel(j, 'again'), 'ended', 'an ended job: ended');
});

t.test('a queued job meets the cancel when it starts; a resumed job still sees a cancel from before the restart', async (t) => {
  const store = await openStore(t);
  const seen: string[] = [];
  const ex = new JobExecutor({ store, maxConcurrent: 1, handlers: {} });
  ex.register('disk.copy', cancellableHandler(seen), { cancellable: true });
  const first = await newJob(store, 'disk.copy');
  const second = await newJob(store, 'disk.copy');
  ex.submit(first);
  ex.submit(second);
  await state(store, first.id, (j) => j.state === 'running');
  t.equal((await store.jobs.get(second.id)).state, 'pending', 'the second waits its turn');
  t.equal(await ex.cancel(second, 'queued'), 'requested', 'requested while queued');
  t.equal(await ex.cancel(first, 'first'), 'requested');
  t.equal((await ended(store, second.id)).error?.code, 'Cancelled', 'the queued job, once started, ended Cancelled');
  t.same(seen, ['start:running', 'start:already-cancelled'], 'it started with its signal already aborted');
  await ex.close();

  // A running job whose cancel was recorded when the controller stopped: the next executor resumes it cancelled.
  const third = await newJob(store, 'disk.copy');
  await store.jobs.advance(third.id, { state: 'running', params: { memo: { cancelRequested: 'before the restart' } } });
  const seen2: string[] = [];
  const next = new JobExecutor({ store, maxConcurrent: 1, handlers: {} });
  next.register('disk.copy', cancellableHandler(seen2), { cancellable: true });
  t.teardown(() => next.close());
  await next.resume(await store.jobs.unfinished());
  const j = await ended(store, third.id);
  t.same([j.error?.code, seen2], ['Cancelled', ['start:already-cancelled']], 'resumed with its cancel');
});
