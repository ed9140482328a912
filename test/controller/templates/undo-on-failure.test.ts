// The control flow of a failed template or clone job (undoOnFailure), in-process: what is recorded
// with the job and in which order, what a resumed run does with an earlier failure, and that the
// controller stopping undoes nothing. Only paths that reach no agent are run here (nothing to
// delete, or a recorded volume the plan keeps); the deletions themselves are proven on a real
// agent by failed-jobs-cleanup.test.
import t from 'tap';
import type { JobContext } from '../../../controller/jobs/executor.js';
import { JobFailure } from '../../../controller/jobs/job-failure.js';
import type { StorageDeps } from '../../../controller/storage/storage-deps.js';
import { failedEarlier, undoOnFailure, willMake } from '../../../controller/templates/made-volumes.js';

const ID = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const NO_AGENT = {} as StorageDeps; // never reached on these paths: a call would throw

function fakeJob(o: { memo?: Record<string, unknown>; stopping?: boolean } = {}) {
  const memo = new Map<string, unknown>(Object.entries(o.memo ?? {}));
  const order: string[] = [];
  const stop = new AbortController();
  if (o.stopping) stop.abort(new Error('the controller is stopping'));
  const ctx = {
    signal: stop.signal, log: () => {},
    memo: <T>(k: string) => memo.get(k) as T | undefined,
    remember: async (k: string, v: unknown) => { memo.set(k, v); order.push(`remember ${k}`); },
  } as unknown as JobContext;
  const undo = { clusterId: ID(1), notOurs: [{ storageDomainId: ID(2), imageId: ID(40) }], markFailed: async () => { order.push('markFailed'); } };
  return { ctx, memo, order, undo };
}

t.test('a failure is recorded with the job, then the records are marked failed; the job fails with its first error and the clean-up', async (t) => {
  const { ctx, memo, order, undo } = fakeJob();
  const e = await undoOnFailure(NO_AGENT, ctx, undo, async () => { throw new JobFailure('SpmTaskFailed', 'the copy failed', { agentCode: 201 }); }).catch((x: unknown) => x);
  t.ok(e instanceof JobFailure, 'a JobFailure');
  const f = e as JobFailure;
  t.same([f.code, f.message, f.details['agentCode']], ['SpmTaskFailed', 'the copy failed', 201], 'the first error\'s code, message and details');
  t.same(f.details['cleanup'], { deleted: [], notDeleted: [], kept: [] }, 'nothing made, nothing deleted');
  t.same(order, ['remember failure', 'markFailed'], 'the failure is recorded before the records are marked');
  t.equal((memo.get('failure') as { code: string }).code, 'SpmTaskFailed', 'the recorded failure');
  t.ok(failedEarlier(ctx), 'a resumed run would know it');
});

t.test('a recorded volume in an image the job read from is kept and named in the error, never deleted', async (t) => {
  const { ctx, undo } = fakeJob();
  const source = { storageDomainId: ID(2), imageId: ID(40), volumeId: ID(50) };
  const e = await undoOnFailure(NO_AGENT, ctx, undo, async () => {
    await willMake(ctx, source);
    throw new JobFailure('SpmTaskFailed', 'the copy failed');
  }).catch((x: unknown) => x) as JobFailure;
  const cleanup = e.details['cleanup'] as { kept: { volume: unknown }[]; deleted: unknown[] };
  t.same([cleanup.kept.map((k) => k.volume), cleanup.deleted], [[source], []], 'kept, not deleted');
  t.match(e.message, new RegExp(`1 volume\\(s\\) it made could not be deleted: ${ID(40)}`), `the message names it: ${e.message}`);
});

t.test('a job resumed after its earlier run failed finishes the clean-up without running its work again', async (t) => {
  const { ctx, order, undo } = fakeJob({ memo: { failure: { code: 'SpmTaskFailed', message: 'the copy failed', details: { agentCode: 201 } } } });
  let ran = false;
  const e = await undoOnFailure(NO_AGENT, ctx, undo, async () => { ran = true; }).catch((x: unknown) => x) as JobFailure;
  t.notOk(ran, 'the work is not run again');
  t.same([e.code, e.details['agentCode']], ['SpmTaskFailed', 201], 'it fails with the earlier error');
  t.ok(order.includes('markFailed'), 'the records are marked failed (again: idempotent)');
});

t.test('the controller stopping mid-job is not a failure: nothing is recorded, marked or undone', async (t) => {
  const { ctx, memo, order, undo } = fakeJob({ stopping: true });
  await willMake(ctx, { storageDomainId: ID(2), imageId: ID(10), volumeId: ID(20) });
  const stopped = new Error('interrupted');
  const e = await undoOnFailure(NO_AGENT, ctx, undo, async () => { throw stopped; }).catch((x: unknown) => x);
  t.equal(e, stopped, 'the interruption goes up as it is (the job is resumed at the next start)');
  t.same(order, ['remember madeVolumes'], 'only the volume was recorded; no failure, no marking');
  t.notOk(memo.has('failure'), 'no failure recorded');
});

t.test('willMake records each volume once, in order, before its task', async (t) => {
  const { ctx, memo } = fakeJob();
  const a = { storageDomainId: ID(2), imageId: ID(10), volumeId: ID(20) };
  const b = { storageDomainId: ID(2), imageId: ID(11), volumeId: ID(21) };
  await willMake(ctx, a);
  await willMake(ctx, b);
  await willMake(ctx, { ...a, name: 'vda' } as typeof a);
  t.same(memo.get('madeVolumes'), [a, b], 'two volumes, only their ids');
});
