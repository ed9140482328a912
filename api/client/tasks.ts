// SPM tasks as the engine runs them: call the verb, poll its task, clear it.
// Written against any Caller, so the plain and the reconnecting client share it.
import type { MethodName, ParamsOf, ResultOf, SpmTaskMethod, SpmTaskResultOf } from '../schema.js';
import { ERRORS } from '../errors.js';
import { RpcCallError } from './errors.js';

export interface CallOptions {
  correlationId?: string;
  /** Bound on waiting for this call's answer (default: the client's timeoutMs). */
  timeoutMs?: number;
}

/** Something that makes typed calls: HostvisorClient or ReconnectingClient. */
export interface Caller {
  call<M extends MethodName>(method: M, params: ParamsOf<M>, opts?: CallOptions): Promise<ResultOf<M>>;
}

export interface TaskWaitOptions {
  /** Overall bound on waiting for the task to finish (default 10 min). */
  timeoutMs?: number;
  /** Longest pause between two Task.getStatus polls (default 500 ms; the first polls are quicker). */
  pollMs?: number;
}

/** An SPM task that ended without success: its code (411 stopped, 1011 interrupted, or the verb's) and message, and the task's info as data. */
export class TaskFailedError extends RpcCallError {
  override readonly name = 'TaskFailedError';
  constructor(readonly task: ResultOf<'Task.getInfo'>) {
    super(`${task.verb} task ${task.id} ${task.taskResult === 'cleanFailure' ? 'failed and its rollback failed' : 'failed'}: ${task.message}`, task.code, task);
  }
}

/** A task not finished within the wait's bound (1002); the task itself may still finish. */
export class TaskWaitTimeoutError extends RpcCallError {
  override readonly name = 'TaskWaitTimeoutError';
  constructor(taskID: string, timeoutMs: number, status: ResultOf<'Task.getStatus'>) {
    super(`task ${taskID} not finished within ${timeoutMs} ms (${status.taskState}: ${status.message})`, ERRORS.timeout.code, status);
  }
}

/**
 * Polls Task.getStatus until the task is finished (taskState 'finished'),
 * then returns Task.getInfo: state, result, phase times. Throws
 * TaskWaitTimeoutError (1002) if it is not done in time.
 */
export async function waitForTask(c: Caller, taskID: string, o: TaskWaitOptions = {}): Promise<ResultOf<'Task.getInfo'>> {
  const limitMs = o.timeoutMs ?? 600_000;
  const deadline = Date.now() + limitMs;
  let pause = 20;
  for (;;) {
    const st = await c.call('Task.getStatus', { taskID });
    if (st.taskState === 'finished') return c.call('Task.getInfo', { taskID });
    if (Date.now() >= deadline) throw new TaskWaitTimeoutError(taskID, limitMs, st);
    await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(1, deadline - Date.now()))));
    pause = Math.min(pause * 2, o.pollMs ?? 500);
  }
}

/**
 * Runs an SPM verb as the engine does: call it, wait for its task, clear
 * the task, return the verb's result (Volume.create: the volume's info).
 * A task that does not succeed is cleared too and thrown as TaskFailedError.
 * `onDone` sees the task's info (phase times) before it is cleared.
 */
export async function runSpmTask<M extends SpmTaskMethod>(c: Caller, method: M, params: ParamsOf<M>,
  o: TaskWaitOptions & { onDone?: (task: ResultOf<'Task.getInfo'>) => void } = {}): Promise<SpmTaskResultOf<M>> {
  const { taskID } = (await c.call(method, params)) as { taskID: string };
  const task = await waitForTask(c, taskID, o);
  o.onDone?.(task);
  await c.call('Task.clear', { taskID });
  if (task.taskResult !== 'success') throw new TaskFailedError(task);
  return task.result as SpmTaskResultOf<M>;
}
