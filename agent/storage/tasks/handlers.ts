// The SPM verbs that run as tasks, and the Task verbs, over the pool.
import type { Handler } from '../../rpc/dispatcher.js';
import type { StoragePool } from '../pool.js';
import type { TaskInfo } from '../../../api/tasks.js';
import type { TaskRecord } from './record.js';
import { legacyStatus } from './record.js';
import { VolumeBusyError } from '../errors.js';
import { checkMerge, mergeSpec } from './merge-operation.js';

type TaskMethod = 'Volume.create' | 'Volume.delete' | 'Volume.extendSize' | 'Image.delete' | 'Volume.copy' | 'Image.move' | 'Volume.merge'
  | 'Task.getStatus' | 'Task.getInfo' | 'Task.clear' | 'Task.stop' | 'Host.getAllTasksStatuses';

export type TaskHandlers = { [M in TaskMethod]: Handler<M> };

const id = (taskID: string) => taskID.toLowerCase();

export function taskInfo(r: TaskRecord & { progress?: number }): TaskInfo {
  // Phase names may repeat (a recovery step after the same step name): keep every one.
  const phasesMs: Record<string, number> = {};
  for (const [name, ms] of r.phases) phasesMs[name in phasesMs ? `${name} #${Object.keys(phasesMs).length}` : name] = ms;
  return {
    id: r.id, verb: r.verb, state: r.state, taskID: r.id, ...legacyStatus(r),
    code: r.code, message: r.message, ...(r.error ? { error: r.error } : {}), params: r.params,
    ...(r.result !== undefined ? { result: r.result } : {}), hostId: r.hostId, lver: r.lver, createdAt: r.createdAt,
    ...(r.startedAt ? { startedAt: r.startedAt } : {}), ...(r.endedAt ? { endedAt: r.endedAt, durationMs: r.endedAt - r.createdAt } : {}),
    phasesMs, recovery: r.recovery.map((s) => ({ ...s })), recoveryLog: r.recoveryLog ?? [],
    interrupted: r.interrupted ?? false, stopRequested: r.stopRequested ?? false, ...(r.progress !== undefined ? { progress: r.progress } : {}),
  };
}

export function createTaskHandlers(pool: StoragePool): TaskHandlers {
  // The domain is looked up before the task starts, so a wrong domain is the call's error (358), not the task's.
  const submit = async (verb: TaskMethod & `${'Volume' | 'Image'}.${string}`, p: { storagedomainID: string; taskID?: string; dstSdUUID?: string }) => {
    await pool.domain(p.storagedomainID);
    if (p.dstSdUUID) await pool.domain(p.dstSdUUID);
    return { taskID: await pool.submitSpmTask(verb, p as unknown as Record<string, unknown>, p.taskID) };
  };
  return {
    'Volume.create': (p) => submit('Volume.create', p),
    'Volume.delete': (p) => submit('Volume.delete', p),
    'Volume.extendSize': (p) => submit('Volume.extendSize', p),
    'Image.delete': (p) => submit('Image.delete', p),
    'Volume.copy': (p) => submit('Volume.copy', p),
    'Image.move': (p) => {
      // Refused at once (the task checks again when it runs): live storage migration is not supported.
      const users = pool.imageUsers(p.storagedomainID, p.imageID);
      if (users.length) throw new VolumeBusyError(p.storagedomainID, p.imageID, users, 'a disk under a running VM is not moved (live storage migration is not supported); stop the VM or copy the disk');
      return submit('Image.move', p);
    },
    // Refused at once when it would touch a template or a running VM's image (the task checks again when it runs).
    'Volume.merge': async (p) => {
      await coldMergeRefusal(pool, p);
      return submit('Volume.merge', p);
    },
    'Task.getStatus': (p) => pool.tasks.status(id(p.taskID)),
    'Task.getInfo': (p) => taskInfo(pool.tasks.info(id(p.taskID))),
    'Task.clear': async (p) => { await pool.tasks.clear(id(p.taskID)); return {}; },
    'Task.stop': (p) => { pool.tasks.stop(id(p.taskID)); return {}; },
    'Host.getAllTasksStatuses': () => ({ allTasksStatus: pool.tasks.all() }),
  };
}

/** Volume.merge's checks before its task is made: a wrong chain, a template base or a running VM's image is the call's error. */
async function coldMergeRefusal(pool: StoragePool, p: Record<string, unknown>): Promise<void> {
  const m = mergeSpec(p);
  await checkMerge(pool, await pool.domain(m.sd), m);
}
