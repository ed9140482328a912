// Shapes (TypeBox) of the Task verbs' results, used by api/methods/
// and, as static types, by the handlers and the client. Task.getStatus is
// VDSM's TaskStatus; Task.getInfo is VDSM's {id, verb} with the detail VDSM
// keeps in its task files (state, result, recovery) and the phase timings.
import { Type, type Static } from '@sinclair/typebox';
import { Uuid } from './types.js';

export const SPM_TASK_VERBS = ['Volume.create', 'Volume.delete', 'Volume.extendSize', 'Image.delete', 'Volume.copy', 'Image.move', 'Volume.merge'] as const;
export type SpmTaskVerb = (typeof SPM_TASK_VERBS)[number];

export const TASK_STATES = ['init', 'running', 'aborting', 'recovering', 'finished', 'recovered', 'failed'] as const;
export type TaskState = (typeof TASK_STATES)[number];

const lit = <T extends string>(xs: readonly T[]) => Type.Union(xs.map((x) => Type.Literal(x)));

export const TaskID = Type.Object({ taskID: Uuid }, { description: 'the task running the verb: poll Task.getStatus, then Task.clear' });

/** What an SPM verb takes besides its own params: the caller may name the task (VDSM's engine does). */
export const TaskIdParam = { taskID: Type.Optional(Type.String({ pattern: Uuid.pattern, description: 'the id the task gets (default: a new UUID); 405 if a task already has it' })) };

export const TaskStatus = Type.Object({
  taskID: Uuid,
  taskState: lit(['init', 'running', 'aborting', 'cleaning', 'finished'] as const),
  taskResult: Type.Union([Type.Literal(''), Type.Literal('success'), Type.Literal('cleanSuccess'), Type.Literal('cleanFailure')], {
    description: "'' until finished; success; cleanSuccess: it failed or was stopped and was rolled back; cleanFailure: the rollback failed too",
  }),
  code: Type.Integer({ description: '0, or the error code it failed with (411 stopped, 1011 interrupted by a restart, or the verb\'s own)' }),
  message: Type.String(),
  progress: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'tasks that copy data (Volume.copy, Image.move): percent done, from qemu-img convert -p' })),
}, { description: "VDSM's task status" });
export type TaskStatus = Static<typeof TaskStatus>;

export const TaskInfo = Type.Object({
  id: Uuid,
  verb: lit(SPM_TASK_VERBS),
  state: lit(TASK_STATES),
  ...TaskStatus.properties,
  error: Type.Optional(Type.String({ description: 'the error name, when it failed' })),
  params: Type.Record(Type.String(), Type.Unknown(), { description: "the verb's params" }),
  result: Type.Optional(Type.Unknown({ description: "on success, the verb's result: Volume.create and Volume.extendSize the volume's info (as Volume.getInfo), the others {}" })),
  hostId: Type.Integer({ description: 'host id of the SPM that ran it' }),
  lver: Type.Integer({ description: 'SPM lease version it ran under' }),
  createdAt: Type.Number({ description: 'epoch ms' }),
  startedAt: Type.Optional(Type.Number()),
  endedAt: Type.Optional(Type.Number()),
  durationMs: Type.Optional(Type.Number()),
  phasesMs: Type.Record(Type.String(), Type.Number(), { description: 'ms per phase, in order: wait (for its locks), the verb\'s phases, recovery steps' }),
  recovery: Type.Array(Type.Record(Type.String(), Type.Unknown()), { description: 'the recovery steps it registered (run last first if it does not finish)' }),
  recoveryLog: Type.Array(Type.String(), { description: 'what recovery did' }),
  interrupted: Type.Boolean({ description: 'found unfinished at spmStart (the agent or host died under it) and recovered then' }),
  stopRequested: Type.Boolean(),
});
export type TaskInfo = Static<typeof TaskInfo>;
