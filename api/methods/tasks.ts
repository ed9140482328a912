// The SPM's task verbs (VDSM's Task.*), and the typed result of each task verb.
import { Type, type Static } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Empty, Uuid } from '../types.js';
import { TaskInfo, TaskStatus } from '../tasks.js';
import { VolumeInfoT } from './storage.js';

// The SPM's tasks (VDSM's Task verbs). Tasks live on the SPM: another host answers 401.
const TaskParams = Type.Object({ taskID: Uuid });
export const TASK_METHODS = {
  'Task.getStatus': method({
    summary: "A task's state (init, running, aborting, cleaning, finished) and result (success, cleanSuccess: failed or stopped and rolled back, cleanFailure), with code and message.",
    params: TaskParams, result: TaskStatus, errors: ['unknownTask'], since: '0.4', mutating: false,
  }),
  'Task.getInfo': method({
    summary: "A task in detail: verb and params, its detailed state, the verb's result on success, timings and the time of each phase, recovery steps and what they did.",
    params: TaskParams, result: TaskInfo, errors: ['unknownTask'], since: '0.4', mutating: false,
  }),
  'Task.clear': method({
    summary: 'Forgets a finished task, here and on the master domain. A task not finished is refused with 410.',
    params: TaskParams, result: Empty, errors: ['unknownTask', 'taskStateError', 'taskPersistError'], since: '0.4', mutating: true,
  }),
  'Task.stop': method({
    summary: "Stops a task: a waiting one ends at once, a running one is aborted (its commands killed) and rolled back (it ends with 411 and taskResult cleanSuccess). A finished task, or one already rolling back, is left as it is.",
    params: TaskParams, result: Empty, errors: ['unknownTask'], since: '0.4', mutating: true,
  }),
  'Host.getAllTasksStatuses': method({
    summary: "Every task this host (the SPM) keeps: taskID -> Task.getStatus. {} on a host that is not the SPM.",
    params: Empty, result: Type.Object({ allTasksStatus: Type.Record(Uuid, TaskStatus) }), errors: [], since: '0.4', mutating: false,
  }),
} as const satisfies Record<string, MethodDef>;

/** The result each SPM task verb leaves in Task.getInfo().result on success (the client's runSpmTask returns it typed). */
export const SpmTaskResults = {
  'Volume.create': VolumeInfoT, 'Volume.delete': Empty, 'Volume.extendSize': VolumeInfoT, 'Image.delete': Empty,
  'Volume.copy': VolumeInfoT, 'Image.move': VolumeInfoT, 'Volume.merge': VolumeInfoT,
} as const;
export type SpmTaskMethod = keyof typeof SpmTaskResults;
export type SpmTaskResultOf<M extends SpmTaskMethod> = Static<(typeof SpmTaskResults)[M]>;

