// Errors of the SPM task verbs, with VDSM's task error numbers (api/errors.ts).
import { HostvisorError } from '../../../api/errors.js';

type Opts = { cause?: unknown; data?: Record<string, unknown> };

/** No task with this id on this host (never existed, cleared, or this host is not the SPM). */
export class UnknownTaskError extends HostvisorError {
  override readonly name = 'UnknownTaskError';
  constructor(taskID: string, why = '') {
    super('unknownTask', `Task id unknown: ${taskID}${why ? ` (${why})` : ''}`, { data: { taskID } });
  }
}

/** A caller-chosen task id that a task already has. */
export class TaskIdInUseError extends HostvisorError {
  override readonly name = 'TaskIdInUseError';
  constructor(taskID: string) {
    super('addTaskError', `Task id already in use: ${taskID}`, { data: { taskID, field: 'taskID' } });
  }
}

/** The task is in a state that does not allow this (clear of a running task). */
export class TaskStateError extends HostvisorError {
  override readonly name = 'TaskStateError';
  constructor(taskID: string, state: string, message: string) {
    super('taskStateError', message, { data: { taskID, state } });
  }
}

/** The task record could not be written to (or read from) the master domain. */
export class TaskPersistError extends HostvisorError {
  override readonly name = 'TaskPersistError';
  constructor(message: string, opts?: Opts) {
    super('taskPersistError', message, opts);
  }
}

/** spmStop while tasks still run (VDSM's SpmStopError). */
export class SpmHasTasksError extends HostvisorError {
  override readonly name = 'SpmHasTasksError';
  constructor(taskIDs: string[]) {
    super('spmStopError', `Cannot stop the SPM: ${taskIDs.length} task(s) unfinished (${taskIDs.slice(0, 5).join(', ')}); stop them or wait`, { data: { taskIDs } });
  }
}
