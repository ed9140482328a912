// The job executor against a real SQLite store: steps recorded with their times, failures with
// their code, a job cut short by a stop resumed by the next executor with what it remembered,
// and the concurrency bound.
import t from 'tap';
import { join } from 'node:path';
import { scratchDir } from '../../agent/harness.js';
import { Store } from '../../../controller/store/store.js';
import { JobExecutor, type JobContext } from '../../../controller/jobs/executor.js';
import { JobFailure } from '../../../controller/jobs/job-failure.js';
import type { Job } from '../../../controller/model/jobs.js';

async function openStore(): Promise<Store> {
  return Store.open({ engine: 'sqlite', path: join(scratchDir('hv-exec-'), 'c.db') });
}

async function newJob(store: Store, kind: Job['kind'] = 'vm.start'): Promise<Job> {
  return store.jobs.create({ kind, targetKind: 'vm', targetId: '00000000-0000-4000-8000-000000000001', params: { a: 1 }, correlationId: 'corr-1' });
}

async function ended(store: Store, id: string, ms = 5_000): Promise<Job> {
  const end = Date.now() + ms;
  for (;;) {
    const j = await store.jobs.get(id);
    if (j.state === 'succeeded' || j.state === 'failed') return j;
    if (Date.now() > end) throw new Error(`job ${id} still ${j.state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('a job runs its steps in order and each is recorded with its times; the end is an event', async (t) => {
  const store = await openStore();
  t.teardown(() => store.close());
  const lines: { msg: string; f: Record<string, unknown> }[] = [];
  const ex = new JobExecutor({ store, maxConcurrent: 2, log: (_l, msg, f) => lines.push({ msg, f }), handlers: {
    'vm.start': async (ctx) => {
      await ctx.step('place', async () => 'h1', { hostId: 'h1' });
      await ctx.progress(50);
      await ctx.step('create', async () => { await new Promise((r) => setTimeout(r, 30)); });
    },
  } });
  const job = await newJob(store);
  ex.submit(job);
  const j = await ended(store, job.id);
  t.equal(j.state, 'succeeded');
  t.same(j.steps.map((s) => [s.name, s.state, s.hostId]), [['place', 'succeeded', 'h1'], ['create', 'succeeded', undefined]]);
  t.ok(j.steps.every((s) => s.startedAt !== null && s.endedAt !== null && s.endedAt >= s.startedAt!), 'every step has its start and end');
  t.ok(j.steps[1]!.endedAt! - j.steps[1]!.startedAt! >= 25, 'the step time is the time it took');
  t.equal(j.progress, 100);
  t.ok(j.startedAt !== null && j.endedAt !== null);
  const events = await store.eventLog.list(0, 100);
  t.ok(events.some((e) => e.kind === 'job.succeeded' && e.subjectId === job.id && e.correlationId === 'corr-1'), 'job.succeeded with the correlation id');
  t.ok(lines.some((l) => l.msg === 'job step done' && l.f.step === 'create' && typeof l.f.ms === 'number' && l.f.correlationId === 'corr-1'),
    'each step logs its time with the correlation id');
  await ex.close();
});

t.test('a failure is recorded with its code and the failed step; a kind without a handler fails as NotSupported', async (t) => {
  const store = await openStore();
  t.teardown(() => store.close());
  const ex = new JobExecutor({ store, maxConcurrent: 2, handlers: {
    'vm.start': async (ctx) => {
      await ctx.step('place', async () => { throw new JobFailure('NoPlacement', 'no host can take it', { hosts: 2 }); });
    },
  } });
  const a = await newJob(store);
  const b = await newJob(store, 'disk.delete');
  ex.submit(a);
  ex.submit(b);
  const ja = await ended(store, a.id);
  t.equal(ja.state, 'failed');
  t.same(ja.error, { code: 'NoPlacement', message: 'no host can take it', details: { hosts: 2 } });
  t.equal(ja.steps[0]!.state, 'failed');
  t.equal(ja.steps[0]!.detail, 'no host can take it');
  const jb = await ended(store, b.id);
  t.equal(jb.error?.code, 'NotSupported');
  const events = await store.eventLog.list(0, 100);
  t.ok(events.some((e) => e.kind === 'job.failed' && e.subjectId === a.id && /no host can take it/.test(e.message)));
  await ex.close();
});

t.test('a stop mid-step leaves the job running; the next executor resumes it with what it remembered', async (t) => {
  const store = await openStore();
  t.teardown(() => store.close());
  let release!: () => void;
  const blocked = new Promise<void>((r) => { release = r; });
  let entered!: () => void;
  const inStep = new Promise<void>((r) => { entered = r; });
  const first = new JobExecutor({ store, maxConcurrent: 1, handlers: {
    'vm.start': async (ctx) => {
      await ctx.remember('host', 'h2');
      await ctx.step('create', async () => {
        entered();
        await Promise.race([blocked, new Promise((_r, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason)))]);
      });
    },
  } });
  const job = await newJob(store);
  first.submit(job);
  await inStep;
  await first.close();
  release();
  const left = await store.jobs.get(job.id);
  t.equal(left.state, 'running', 'still running in the store');
  t.equal(left.steps.at(-1)?.state, 'running', 'its step too');
  t.same((left.params.memo as Record<string, unknown>).host, 'h2', 'the memo is persisted');
  t.equal(left.params.a, 1, 'the request parameters are kept');

  let seen: JobContext | undefined;
  const second = new JobExecutor({ store, maxConcurrent: 1, handlers: {
    'vm.start': async (ctx) => { seen = ctx; await ctx.step('create', async () => undefined); },
  } });
  await second.resume(await store.jobs.unfinished());
  const j = await ended(store, job.id);
  t.equal(j.state, 'succeeded');
  t.equal(seen?.resumed, true, 'the handler is told it is resumed');
  t.equal(seen?.memo('host'), 'h2', 'and finds what the first run remembered');
  t.same(j.steps.map((s) => [s.name, s.state]), [['create', 'failed'], ['create', 'succeeded']], 'the interrupted step is shown as such, then the resumed one');
  t.match(j.steps[0]!.detail, /^interrupted/);
  await second.close();
});

t.test('no more than maxConcurrent jobs run at once; the rest wait their turn', async (t) => {
  const store = await openStore();
  t.teardown(() => store.close());
  let now = 0;
  let peak = 0;
  const ex = new JobExecutor({ store, maxConcurrent: 3, handlers: {
    'vm.start': async () => { now++; peak = Math.max(peak, now); await new Promise((r) => setTimeout(r, 40)); now--; },
  } });
  const jobs = await Promise.all(Array.from({ length: 10 }, () => newJob(store)));
  for (const j of jobs) ex.submit(j);
  for (const j of jobs) t.equal((await ended(store, j.id)).state, 'succeeded');
  t.equal(peak, 3, `peak ${peak}`);
  await ex.close();
});
