// An SPM verb run as a task and followed to its end, so that a job runs it once whatever
// happens to the controller or the SPM meanwhile:
//   - the task's id is chosen by the controller and remembered with the job BEFORE the verb is
//     sent (the agents take the caller's id), so a resumed job asks the SPM about that same task
//     instead of starting another;
//   - an SPM that knows no task of that id (it was cleared after it ended, or the verb never
//     reached the agent) is asked whether the work is already on storage (`done`); only if not
//     is the verb sent, under the same id (405: it arrived after all, so follow it);
//   - the tasks live on the master domain, so after a failover the new SPM knows them: a task
//     the old SPM left unfinished is rolled back there and ends with 1011, and the verb is sent
//     again as a new task;
//   - Task.* answered by a host that is not the SPM (401) proves nothing: the host's role is
//     checked before a 401 is believed.
import { randomUUID } from 'node:crypto';
import type { JobContext } from '../jobs/executor.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { ParamsOf, ResultOf } from '../../api/schema.js';
import { ERRORS } from '../../api/errors.js';
import { agentCode, answered, errorText } from './agent-answer.js';
import type { StorageDeps } from './storage-deps.js';
import { sleepOrAbort } from './sleep.js';

export type SpmVerb = 'Volume.create' | 'Volume.delete' | 'Image.delete' | 'Volume.copy' | 'Volume.merge' | 'Image.move';
type VerbParams<V extends SpmVerb> = Omit<ParamsOf<V>, 'taskID'>;

export interface SpmTaskSpec<V extends SpmVerb> {
  clusterId: string;
  verb: V;
  params: VerbParams<V>;
  /** Is the verb's work already on storage? Asked on the SPM when it knows no task of the id. */
  done(spmHostId: string): Promise<boolean>;
  /** where the job remembers the task's id (default 'taskId'); a job running several tasks names each */
  memoKey?: string;
  /** Each status seen while the task runs (copies report progress 0..100). */
  onStatus?(status: ResultOf<'Task.getStatus'>): Promise<void> | void;
  /**
   * Aborted to stop the task (a cancelled job): Task.stop is sent, the task is followed while the
   * agent rolls it back, and runSpmTask throws JobFailure 'Cancelled'. A task not yet sent is not sent.
   */
  stop?: AbortSignal;
}

/** How many times a task rolled back by a failover or an agent restart (1011) is sent again. */
const MAX_INTERRUPTED = 3;
const TASK_ID = 'taskId';

/** The SPM moved or went away while the task was followed: find it again. */
class SpmMovedError extends Error {
  override readonly name = 'SpmMovedError';
  readonly code = 6101;
}

/** 'done' when an earlier run finished the work; the task's info when this run saw it end well. */
export async function runSpmTask<V extends SpmVerb>(deps: StorageDeps, ctx: JobContext, spec: SpmTaskSpec<V>): Promise<ResultOf<'Task.getInfo'> | 'done'> {
  const until = Date.now() + deps.settings.spmTaskTimeoutMs;
  const memoKey = spec.memoKey ?? TASK_ID;
  for (let interrupted = 0; ;) {
    let taskID = ctx.memo<string | null>(memoKey) ?? null;
    if (taskID === null) {
      taskID = randomUUID();
      await ctx.remember(memoKey, taskID); // before the verb is sent: a resumed run asks about this task
    }
    let info: ResultOf<'Task.getInfo'> | 'done';
    try {
      info = await followOrSubmit(deps, ctx, spec, taskID, until);
    } catch (e) {
      if (!(e instanceof SpmMovedError)) throw e;
      if (Date.now() > until) throw new JobFailure('TaskTimeout', `${spec.verb} task ${taskID} not followed to its end within ${deps.settings.spmTaskTimeoutMs / 1000} s: ${e.message}`, { taskID });
      ctx.log('info', 'lost the SPM while following the task: finding it again', { taskID, error: e.message });
      await sleepOrAbort(1_000, ctx.signal);
      continue;
    }
    if (info === 'done' || info.taskResult === 'success') return info;
    if (spec.stop?.aborted && info.code === ERRORS.taskAborted.code) {
      throw new JobFailure('Cancelled', `cancelled: the ${spec.verb} task ${taskID} was stopped and rolled back (${info.taskResult}: ${info.message})`,
        { taskID, agentCode: info.code, taskResult: info.taskResult, reason: String(spec.stop.reason) });
    }
    if (info.code === ERRORS.taskInterrupted.code && ++interrupted <= MAX_INTERRUPTED) {
      ctx.log('warn', 'the SPM task was interrupted and rolled back (agent restart or SPM failover): sending it again', { taskID, verb: spec.verb });
      await ctx.remember(memoKey, null);
      continue;
    }
    throw new JobFailure('SpmTaskFailed', `${spec.verb} task ${taskID} failed: ${info.code} ${info.message}`, { taskID, agentCode: info.code, taskResult: info.taskResult });
  }
}

/** The recorded SPM, once it is Up and its agent connected (within spmWaitMs). */
export async function waitForSpm(deps: StorageDeps, ctx: JobContext, clusterId: string): Promise<string> {
  const until = Date.now() + deps.settings.spmWaitMs;
  for (;;) {
    const id = deps.spm.usableSpm(clusterId);
    if (id !== null) return id;
    if (Date.now() > until) throw new JobFailure('NoSpm', `the cluster has no SPM host to run the job on (waited ${deps.settings.spmWaitMs / 1000} s)`, { clusterId });
    await sleepOrAbort(1_000, ctx.signal);
  }
}

async function followOrSubmit<V extends SpmVerb>(deps: StorageDeps, ctx: JobContext, spec: SpmTaskSpec<V>, taskID: string, until: number): Promise<ResultOf<'Task.getInfo'> | 'done'> {
  const spm = await ctx.step('find the SPM', () => waitForSpm(deps, ctx, spec.clusterId));
  if (await taskStatus(deps, ctx, spm, taskID) === undefined) {
    if (await spec.done(spm)) {
      ctx.log('info', 'the SPM knows no such task and the work is on storage: an earlier run did it', { taskID, verb: spec.verb, hostId: spm });
      return 'done';
    }
    if (spec.stop?.aborted) throw new JobFailure('Cancelled', `cancelled before the ${spec.verb} task was sent`, { taskID, reason: String(spec.stop.reason) });
    await ctx.step(spec.verb, async () => {
      try {
        const params = { ...spec.params, taskID } as ParamsOf<V>;
        await deps.runtime.links.call(spm, spec.verb, params as ParamsOf<'Volume.create'> & ParamsOf<'Volume.delete'> & ParamsOf<'Image.delete'> & ParamsOf<'Volume.copy'> & ParamsOf<'Volume.merge'> & ParamsOf<'Image.move'>, { correlationId: ctx.correlationId });
      } catch (e) {
        if (!answered(e, 'addTaskError')) throw e; // 405: the task has this id already: an earlier send arrived
      }
    }, { hostId: spm, detail: `task ${taskID}` });
  }
  // The agent sends each whole percent as |storage|task_status|<taskID>: the job's progress keeps up between polls.
  // Matched by its method: the typed 'task_status' listener never fired (its method ends in <taskID>, not <vmId>).
  const method = `|storage|task_status|${taskID}`;
  const offEvents = spec.onStatus && deps.runtime.links.get(spm)?.onEvent((m, params) => {
    if (m !== method) return;
    const body = params[taskID] as ResultOf<'Task.getStatus'> | undefined;
    if (body === undefined || body.progress === undefined || body.taskState === 'finished') return;
    void Promise.resolve(spec.onStatus?.({ ...body, taskID }))
      .catch((e: unknown) => ctx.log('warn', 'recording a task_status event failed', { taskID, error: errorText(e) }));
  });
  try {
    return await ctx.step('follow the task', () => follow(deps, ctx, spm, taskID, until, spec), { hostId: spm, detail: `task ${taskID}` });
  } finally {
    offEvents?.();
  }
}

/** The task's status on the SPM; undefined when the SPM (checked to be one) knows no such task. */
async function taskStatus(deps: StorageDeps, ctx: JobContext, spm: string, taskID: string): Promise<ResultOf<'Task.getStatus'> | undefined> {
  try {
    return await deps.runtime.links.call(spm, 'Task.getStatus', { taskID }, { correlationId: ctx.correlationId, timeoutMs: deps.settings.pollTimeoutMs });
  } catch (e) {
    if (!answered(e, 'unknownTask')) throw agentCode(e) === undefined ? new SpmMovedError(`Task.getStatus on ${spm}: ${errorText(e)}`, { cause: e }) : e;
  }
  await stillSpm(deps, ctx, spm);
  return undefined;
}

/** A 401 counts only from the SPM: a host that lost the role knows no tasks at all. */
async function stillSpm(deps: StorageDeps, ctx: JobContext, hostId: string): Promise<void> {
  const poolId = (await deps.store.clusters.get((await deps.store.hosts.get(hostId)).clusterId)).poolId;
  const st = poolId === null ? undefined
    : await deps.runtime.links.call(hostId, 'StoragePool.getSpmStatus', { storagepoolID: poolId }, { correlationId: ctx.correlationId }).catch(() => undefined);
  if (st?.spmStatus !== 'SPM') {
    deps.spm.loop.kick();
    await sleepOrAbort(1_000, ctx.signal);
    throw new SpmMovedError(`${hostId} is no longer the SPM`);
  }
}

/** Polls Task.getStatus until the task has finished, then reads its info and clears it. */
async function follow(deps: StorageDeps, ctx: JobContext, spm: string, taskID: string, until: number,
  o: Pick<SpmTaskSpec<SpmVerb>, 'onStatus' | 'stop'>): Promise<ResultOf<'Task.getInfo'>> {
  const call = { correlationId: ctx.correlationId, timeoutMs: deps.settings.pollTimeoutMs };
  let pause = 200;
  let stopSent = false;
  for (;;) {
    if (o.stop?.aborted && !stopSent) {
      // Idempotent on the agent (a finished or rolling-back task is left as it is): a resumed job may send it again.
      await deps.runtime.links.call(spm, 'Task.stop', { taskID }, call);
      stopSent = true;
      ctx.log('info', 'Task.stop sent: the job was cancelled', { taskID, hostId: spm });
    }
    const st = await taskStatus(deps, ctx, spm, taskID);
    if (st === undefined) throw new JobFailure('TaskLost', `the SPM ${spm} no longer knows task ${taskID} (cleared by someone else?)`, { taskID });
    await o.onStatus?.(st);
    if (st.taskState === 'finished') {
      const info = await deps.runtime.links.call(spm, 'Task.getInfo', { taskID }, call);
      // Cleared after its info is read; a clear lost here is done again by nobody, which only leaves a record on the master.
      await deps.runtime.links.call(spm, 'Task.clear', { taskID }, call)
        .catch((e: unknown) => ctx.log('warn', 'Task.clear failed', { taskID, error: errorText(e) }));
      return info;
    }
    if (Date.now() > until) {
      throw new JobFailure('TaskTimeout', `task ${taskID} not finished within ${deps.settings.spmTaskTimeoutMs / 1000} s (${st.taskState}: ${st.message})`, { taskID });
    }
    await sleepOrAbort(pause, ctx.signal, o.stop);
    // A task that reports progress is polled at most a second apart, so the job's progress keeps up.
    pause = Math.min(pause * 2, st.progress === undefined ? 2_000 : 1_000);
  }
}
