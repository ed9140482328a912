// An SPM task as it is kept on the master domain: one self-contained JSON
// record per task, rewritten whole at every state change, so a new SPM (or
// this host after a restart) can report it and finish its recovery.
//
// States follow VDSM's task states (storage/task.py), reduced to those a
// task here can be in:
//   init        accepted and persisted; waiting for its image lock
//   running     doing the work
//   aborting    failed or stopped; about to run its recovery steps
//   recovering  running its recovery steps (undo, or finish a deletion)
//   finished    done, successfully
//   recovered   failed or stopped, and recovery restored a consistent state
//   failed      failed or stopped, and recovery itself failed
// The engine sees VDSM's older status pair (Task.getStatus): taskState
// running/finished/aborting/cleaning and taskResult success/cleanSuccess/
// cleanFailure, exactly as VDSM maps them.
import { StorageParamsError } from '../errors.js';

import { SPM_TASK_VERBS, TASK_STATES, type SpmTaskVerb, type TaskState } from '../../../api/tasks.js';
export { SPM_TASK_VERBS, TASK_STATES, type SpmTaskVerb, type TaskState };

const DONE: readonly TaskState[] = ['finished', 'recovered', 'failed'];
export const isDone = (s: TaskState): boolean => DONE.includes(s);

/**
 * A step that restores consistency if the task does not finish. `when`:
 * 'always' runs after a failure or a stop too; 'restart' only when the task
 * was cut short by an agent restart (the operation itself cleans up after an
 * ordinary failure, but a killed process cleans up nothing).
 */
export type RecoveryStep =
  /** Remove whatever exists of a volume this task was creating. */
  | { kind: 'removeVolume'; when: 'always'; sdUUID: string; imgUUID: string; volUUID: string }
  /** Finish deleting the volumes the task had begun to delete (marked ILLEGAL); leave LEGAL ones alone. */
  | { kind: 'finishDeletes'; when: 'restart'; sdUUID: string; imgUUID: string; volUUIDs: string[] }
  /**
   * A move's copy: removed (as removeVolume) while the source image is whole
   * and LEGAL; kept once the move had begun to delete the source (the
   * volumes are marked ILLEGAL first), since the copy is then the disk.
   */
  | { kind: 'undoCopy'; when: 'always'; sdUUID: string; imgUUID: string; volUUID: string; srcSdUUID: string; srcImgUUID: string }
  /** A cold merge (Volume.merge) of volUUID into baseVolUUID: finished past its commit point (the top ILLEGAL), undone before it. */
  | { kind: 'settleMerge'; when: 'always'; sdUUID: string; imgUUID: string; volUUID: string; baseVolUUID: string }
  /** Re-apply a capacity change, so the image and its metadata agree. */
  | { kind: 'completeExtend'; when: 'restart'; sdUUID: string; imgUUID: string; volUUID: string; newSize: number };

export interface TaskRecord {
  v: 1;
  id: string;
  verb: SpmTaskVerb;
  /** The verb's parameters, as validated by the API schema. */
  params: Record<string, unknown>;
  state: TaskState;
  /** 0 on success; else the API error code the task failed with. */
  code: number;
  message: string;
  /** The error's name (volumeAlreadyExists, taskAborted, taskInterrupted, ...) when it failed. */
  error?: string;
  /** The verb's result on success (Volume.create: the volume's info). */
  result?: unknown;
  /** Who ran it: this pool's host id and SPM lease version. */
  hostId: number;
  lver: number;
  /** Epoch ms. */
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  /** Time of each phase, ms, in order (lock, then the verb's own, then recovery). */
  phases: Array<[string, number]>;
  /** Registered as the work proceeds; run last-first. */
  recovery: RecoveryStep[];
  /** What recovery did, for people. */
  recoveryLog?: string[];
  /** Set when the task was found unfinished at spmStart (the agent or host died under it). */
  interrupted?: boolean;
  /** Task.stop was called. */
  stopRequested?: boolean;
}

export type LegacyTaskState = 'init' | 'running' | 'aborting' | 'cleaning' | 'finished';
export type LegacyTaskResult = '' | 'success' | 'cleanSuccess' | 'cleanFailure';

/** VDSM's status pair for the engine. */
export function legacyStatus(r: TaskRecord): { taskState: LegacyTaskState; taskResult: LegacyTaskResult } {
  switch (r.state) {
    case 'init': return { taskState: 'init', taskResult: '' };
    case 'running': return { taskState: 'running', taskResult: '' };
    case 'aborting': return { taskState: 'aborting', taskResult: '' };
    case 'recovering': return { taskState: 'cleaning', taskResult: '' };
    case 'finished': return { taskState: 'finished', taskResult: 'success' };
    case 'recovered': return { taskState: 'finished', taskResult: 'cleanSuccess' };
    case 'failed': return { taskState: 'finished', taskResult: 'cleanFailure' };
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Task ids name files: the canonical lower-case UUID form only (the API accepts either case and lower-cases). */
export function checkTaskId(id: unknown): string {
  if (typeof id !== 'string' || !UUID_RE.test(id)) throw new StorageParamsError(`taskID must be a UUID, got ${JSON.stringify(id)}`, undefined, { field: 'taskID' });
  return id;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Parses a stored record; throws a plain Error saying what is wrong (the store logs and skips it). */
export function decodeRecord(text: string): TaskRecord {
  const r: unknown = JSON.parse(text);
  if (!isObj(r) || r.v !== 1) throw new Error('not a version 1 task record');
  if (typeof r.id !== 'string' || !UUID_RE.test(r.id)) throw new Error('bad id');
  if (!SPM_TASK_VERBS.includes(r.verb as SpmTaskVerb)) throw new Error(`unknown verb ${String(r.verb)}`);
  if (!TASK_STATES.includes(r.state as TaskState)) throw new Error(`unknown state ${String(r.state)}`);
  if (!isObj(r.params) || !Array.isArray(r.phases) || !Array.isArray(r.recovery)) throw new Error('missing params, phases or recovery');
  if (typeof r.code !== 'number' || typeof r.message !== 'string' || typeof r.createdAt !== 'number') throw new Error('missing code, message or createdAt');
  return r as unknown as TaskRecord;
}

/** Error text kept in a record is bounded, so a record always fits its slot. */
export function clip(s: string, max = 1000): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
