// The SPM's task manager (VDSM's taskManager + task): SPM verbs run as tasks
// that the caller polls (Task.getStatus) and then clears (Task.clear). Every
// state change is persisted on the master domain before it is reported, so
// the next spmStart, on this host or another, finds every task that was not
// cleared: finished ones keep their result, unfinished ones are recovered.
//
// A task takes exclusive locks (its image, and the volume it makes or
// deletes) before it starts, so tasks on one image run one at a time and
// recovery never races the task it recovers. Before each change to storage,
// the operation registers a recovery step (persisted first); a failure, a
// Task.stop or a restart runs the steps, last first.
import type { Logger } from '../../log.js';
import { ERRORS, HostvisorError, type ErrorName } from '../../../api/errors.js';
import { KeyedLock } from '../keyed-lock.js';
import { OperationAbortedError } from '../errors.js';
import { SpmHasTasksError, TaskIdInUseError, TaskStateError, UnknownTaskError } from './errors.js';
import type { TaskStore } from './file-store.js';
import { Task } from './task.js';
import {
  clip, isDone, legacyStatus, type LegacyTaskResult, type LegacyTaskState, type RecoveryStep, type SpmTaskVerb, type TaskRecord,
} from './record.js';

/** What a running operation can do with its task. */
export interface TaskContext {
  readonly taskID: string;
  /** Aborted by Task.stop (reason: an OperationAbortedError), or when this host stops being SPM. */
  readonly signal: AbortSignal;
  /** Marks the end of a phase (its time is recorded and logged). */
  phase(name: string): void;
  /** Registers (and persists) a recovery step; call it before the change it undoes. */
  addRecovery(step: RecoveryStep): Promise<void>;
  /** Reports percent done (0..100, only rising): Task.getStatus/getInfo show it and onStatus hears it. */
  progress(pct: number): void;
}

export interface TaskOperation {
  /** Lock keys, taken exclusively in sorted order before the task runs. */
  locks: string[];
  run(ctx: TaskContext): Promise<unknown>;
}

export interface TaskManagerOptions {
  log: Logger;
  /** Runs one recovery step; returns what it did, for the task's message. `restart`: the task was found unfinished at spmStart. */
  runStep(step: RecoveryStep, restart: boolean): Promise<string>;
  /** The lock keys a loaded task needs for its recovery. */
  recoveryLocks(r: TaskRecord): string[];
  /** Hears a task's progress and its end (the |storage|task_status| event). */
  onStatus?(s: TaskStatus & { verb: string; state: string }): void;
}

export interface TaskStatus { taskID: string; taskState: LegacyTaskState; taskResult: LegacyTaskResult; code: number; message: string; progress?: number }

export class TaskManager {
  private readonly tasks = new Map<string, Task>();
  private readonly locks = new KeyedLock();
  private store: TaskStore | undefined;
  private attaching: Promise<{ loaded: number; recovering: number }> | undefined;
  private owner = { hostId: 0, lver: -1 };

  constructor(private readonly o: TaskManagerOptions) {}

  get attached(): boolean { return this.store !== undefined; }

  /**
   * spmStart: loads every task kept on the master domain. Finished ones are
   * reported as they were; unfinished ones (the agent or host died under
   * them) are recovered in the background, under their locks, which are
   * taken before this returns so no new task can slip in first.
   */
  attach(openStore: () => Promise<TaskStore>, owner: { hostId: number; lver: number }): Promise<{ loaded: number; recovering: number }> {
    if (this.store) return Promise.resolve({ loaded: this.tasks.size, recovering: 0 });
    // Two spmStart calls at once load the tasks once.
    this.attaching ??= this.load(openStore, owner).finally(() => { this.attaching = undefined; });
    return this.attaching;
  }

  private async load(openStore: () => Promise<TaskStore>, owner: { hostId: number; lver: number }): Promise<{ loaded: number; recovering: number }> {
    const store = await openStore();
    let records: TaskRecord[];
    try {
      records = await store.load();
    } catch (e) {
      await store.close().catch(() => {});
      throw e;
    }
    this.store = store;
    this.owner = owner;
    let recovering = 0;
    for (const rec of records) {
      const t = new Task(rec);
      this.tasks.set(rec.id, t);
      if (isDone(rec.state)) continue;
      recovering++;
      t.loadedUnfinished = true;
      t.done = this.locks.withAll(this.o.recoveryLocks(rec), () => this.recoverInterrupted(t));
    }
    this.o.log.info('tasks loaded', { store: store.location, loaded: records.length, recovering });
    return { loaded: records.length, recovering };
  }

  /** spmStop: refuses while tasks are unfinished; the records stay on the master domain. */
  async detach(): Promise<void> {
    const busy = this.unfinished();
    if (busy.length) throw new SpmHasTasksError(busy);
    await this.drop();
  }

  /**
   * The lease is lost (or shutdown gave up waiting): stop every task at once
   * and write nothing more; the next SPM recovers what they left.
   */
  async abandon(reason: string): Promise<void> {
    const store = this.store;
    if (!store) return;
    this.store = undefined; // no more writes from here on
    for (const t of this.tasks.values()) {
      if (!isDone(t.rec.state)) t.controller.abort(new OperationAbortedError(`abandoned: ${reason}`));
    }
    const left = this.unfinished();
    if (left.length) this.o.log.warn('tasks abandoned; the next SPM recovers them', { reason, tasks: left });
    this.tasks.clear();
    await store.close().catch(() => {});
  }

  /** Agent shutdown: let tasks finish for up to waitMs, then stop the rest (rolled back), then abandon what is left. */
  async shutdown(waitMs: number): Promise<void> {
    if (!this.store) return;
    const settle = (ms: number) => Promise.race([
      Promise.all([...this.tasks.values()].map((t) => t.done)).then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
    ]);
    if (this.unfinished().length && !(await settle(waitMs))) {
      for (const id of this.unfinished()) this.stop(id);
      await settle(waitMs);
    }
    if (this.unfinished().length) await this.abandon('agent shutting down');
    else await this.drop();
  }

  /** Starts a task; resolves with its id once its first record is persisted. */
  async submit(verb: SpmTaskVerb, params: Record<string, unknown>, op: TaskOperation, taskID: string): Promise<string> {
    this.requireStore();
    if (this.tasks.has(taskID)) throw new TaskIdInUseError(taskID);
    const t = new Task({
      v: 1, id: taskID, verb, params, state: 'init', code: 0, message: 'Task is initializing',
      hostId: this.owner.hostId, lver: this.owner.lver, createdAt: Date.now(), phases: [], recovery: [],
    });
    this.tasks.set(taskID, t);
    try {
      await t.save((r) => this.requireStore().save(r)); // not written at all if the role ended meanwhile
    } catch (e) {
      this.tasks.delete(taskID);
      throw e;
    }
    t.done = this.locks.withAll(op.locks, () => this.execute(t, op));
    this.o.log.info('task started', { taskID, verb });
    return taskID;
  }

  status(taskID: string): TaskStatus {
    return statusOf(this.get(taskID));
  }

  all(): Record<string, TaskStatus> {
    return Object.fromEntries([...this.tasks.keys()].map((id) => [id, this.status(id)]));
  }

  info(taskID: string): TaskRecord & { progress?: number } {
    const t = this.get(taskID);
    return { ...structuredClone(t.shown), ...(t.progress !== undefined ? { progress: t.progress } : {}) };
  }

  /** Forgets a finished task (here and on the master domain). */
  async clear(taskID: string): Promise<void> {
    const t = this.get(taskID);
    if (!isDone(t.shown.state)) {
      throw new TaskStateError(taskID, t.shown.state, `Task ${taskID} is ${t.shown.state}; only a finished task can be cleared (stop it with Task.stop, then wait for it to finish)`);
    }
    await t.idle(); // its last write must not land after the removal
    t.cleared = true;
    try {
      await this.requireStore().remove(taskID);
    } catch (e) {
      t.cleared = false;
      throw e;
    }
    this.tasks.delete(taskID);
    this.o.log.info('task cleared', { taskID, verb: t.rec.verb, state: t.rec.state });
  }

  /**
   * Task.stop: a waiting task ends at once; a running one is aborted (its
   * commands are killed) and then recovered. A finished task, or one already
   * recovering, is left alone, as VDSM does.
   */
  stop(taskID: string): void {
    const t = this.get(taskID);
    const r = t.rec;
    if (isDone(r.state) || r.state === 'aborting' || r.state === 'recovering' || t.loadedUnfinished) return;
    r.stopRequested = true;
    t.controller.abort(new OperationAbortedError(`Task ${taskID} stopped by Task.stop`));
    if (r.state === 'init') {
      // Nothing was done yet: it ends now (its turn at the lock will find it done).
      this.end(t, 'recovered', ERRORS.taskAborted.code, 'taskAborted', 'stopped by Task.stop before it started; nothing to undo');
      void t.save((x) => this.write(x)).catch((e: unknown) => this.o.log.error('task not persisted', { taskID, err: e }));
    }
    this.o.log.info('task stop requested', { taskID, verb: r.verb, state: r.state });
  }

  /** Waits for a task's work (and recovery) to end, for tests and shutdown. */
  async settled(taskID: string): Promise<void> {
    await this.get(taskID).done;
  }

  private unfinished(): string[] {
    return [...this.tasks.values()].filter((t) => !isDone(t.rec.state)).map((t) => t.rec.id);
  }

  private async drop(): Promise<void> {
    const store = this.store;
    this.store = undefined;
    this.tasks.clear();
    await store?.close().catch(() => {});
  }

  private get(taskID: string): Task {
    const t = this.tasks.get(taskID);
    if (!t) throw new UnknownTaskError(taskID, this.store ? '' : 'this host is not the SPM; tasks live on the SPM');
    return t;
  }

  private requireStore(): TaskStore {
    if (!this.store) throw new HostvisorError('unavailable', 'no tasks here: this host is not the SPM (or its spmStart did not finish loading them)');
    return this.store;
  }

  /** Writes a record unless this host stopped being SPM (then the next SPM owns the records). */
  private async write(r: TaskRecord): Promise<void> {
    if (this.store) await this.store.save(r);
  }

  private persist(t: Task): Promise<void> {
    return t.save((r) => this.write(r)).catch((e: unknown) => {
      // Keep going: the state is still reported from memory; a restart would find the previous record.
      this.o.log.error('task state not persisted', { taskID: t.rec.id, state: t.rec.state, err: e });
    }).then(() => { if (isDone(t.rec.state)) this.o.onStatus?.({ ...statusOf(t), verb: t.rec.verb, state: t.rec.state }); });
  }

  private async execute(t: Task, op: TaskOperation): Promise<void> {
    const r = t.rec;
    if (isDone(r.state)) return; // stopped while waiting for its locks
    t.phase('wait');
    r.state = 'running';
    r.startedAt = Date.now();
    r.message = 'running';
    await this.persist(t);
    const ctx: TaskContext = {
      taskID: r.id, signal: t.controller.signal,
      phase: (name) => t.phase(name),
      addRecovery: async (step) => {
        r.recovery.push(step);
        await t.save((x) => this.write(x)); // must be durable before the change it undoes
      },
      progress: (pct) => {
        if (pct <= (t.progress ?? -1) || pct > 100) return;
        t.progress = pct;
        this.o.onStatus?.({ ...statusOf(t), verb: r.verb, state: r.state });
      },
    };
    let result: unknown;
    try {
      t.controller.signal.throwIfAborted();
      result = await op.run(ctx);
    } catch (e) {
      await this.recover(t, e, false);
      return;
    }
    r.result = result;
    this.end(t, 'finished', 0, undefined, 'OK');
    await this.persist(t);
  }

  /** A loaded task that was not done: the agent or host died under it. */
  private async recoverInterrupted(t: Task): Promise<void> {
    const r = t.rec;
    r.interrupted = true;
    t.phase('recovery wait');
    if (r.state === 'init') {
      this.end(t, 'recovered', ERRORS.taskInterrupted.code, 'taskInterrupted', `interrupted by ${r.hostId === this.owner.hostId ? 'an agent restart' : `the loss of its SPM (host ${r.hostId})`} before it started; nothing to undo`);
      await this.persist(t);
      return;
    }
    const was = r.state;
    const by = r.hostId === this.owner.hostId ? 'an agent restart' : `the loss of its SPM (host ${r.hostId}); recovered by host ${this.owner.hostId}`;
    const cause = was === 'running'
      ? new HostvisorError('taskInterrupted', `interrupted by ${by} while running ${r.verb}`)
      : new HostvisorError((errorName(r.error) ?? 'taskInterrupted'), `${r.message} (its recovery was interrupted by ${by})`);
    await this.recover(t, cause, true);
  }

  /** Runs the task's recovery steps, last first, and ends it recovered (or failed, if a step fails). */
  private async recover(t: Task, e: unknown, restart: boolean): Promise<void> {
    const r = t.rec;
    // A stop is the reason, whatever the operation threw on its way out (its killed command, say).
    const stopped = !restart && t.controller.signal.aborted ? (t.controller.signal.reason as HostvisorError) : undefined;
    const err = stopped ?? (e instanceof HostvisorError ? e : undefined);
    const detail = String((e as Error)?.message ?? e);
    const code = err?.code ?? ERRORS.internalError.code;
    const name = err?.errorName ?? 'internalError';
    const message = clip(stopped && detail !== stopped.message ? `${stopped.message} (${detail})` : err?.message ?? detail);
    r.state = 'aborting';
    r.code = code;
    r.error = name;
    r.message = message;
    if (!this.store) return; // abandoned: the next SPM recovers it
    await this.persist(t);
    r.state = 'recovering';
    await this.persist(t);
    const steps = r.recovery.filter((s) => s.when === 'always' || restart).reverse();
    const done: string[] = [];
    let failure: unknown;
    for (const step of steps) {
      if (!this.store) return;
      try {
        done.push(await this.o.runStep(step, restart));
        t.phase(`recover ${step.kind}`);
      } catch (stepErr) {
        failure = stepErr;
        t.phase(`recover ${step.kind} (failed)`);
        break;
      }
    }
    r.recoveryLog = done;
    const what = done.length ? done.join('; ') : 'nothing to undo';
    if (failure) {
      this.o.log.error('task recovery failed', { taskID: r.id, verb: r.verb, err: failure });
      this.end(t, 'failed', code, name, `${message}; recovery failed: ${clip(String((failure as Error).message ?? failure), 300)}${done.length ? ` (after: ${what})` : ''}`);
    } else {
      this.end(t, 'recovered', code, name, `${message}; ${restart ? 'recovered at spmStart' : 'rolled back'}: ${what}`);
    }
    await this.persist(t);
  }

  private end(t: Task, state: 'finished' | 'recovered' | 'failed', code: number, error: ErrorName | undefined, message: string): void {
    const r = t.rec;
    r.state = state;
    r.code = code;
    if (error) r.error = error; else delete r.error;
    r.message = clip(message, 2000);
    r.endedAt = Date.now();
    const phasesMs = Object.fromEntries(r.phases);
    const fields = { taskID: r.id, verb: r.verb, state, code, phasesMs, totalMs: r.endedAt - r.createdAt, ...(r.interrupted ? { interrupted: true } : {}) };
    if (state === 'finished') this.o.log.info('task finished', fields);
    else this.o.log.warn('task ended without success', { ...fields, message: r.message });
  }
}

function statusOf(t: Task): TaskStatus {
  const r = t.shown;
  return { taskID: r.id, ...legacyStatus(r), code: r.code, message: r.message, ...(t.progress !== undefined ? { progress: t.progress } : {}) };
}

function errorName(name: string | undefined): ErrorName | undefined {
  return name && name in ERRORS ? (name as ErrorName) : undefined;
}
