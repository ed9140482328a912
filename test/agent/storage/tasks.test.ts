// SPM tasks through the API, on a real agent (in this process) that is the
// SPM of a pool whose master is a file domain in the lab: the verbs answer
// with a task at once; Task.getStatus/getInfo/clear/stop behave as VDSM's;
// a stop kills the running qemu-img and removes the half-written volume.
// Preallocation is 'full' (zeros written), so a preallocated create is a
// real operation that takes seconds. (Restarts: tasks-restart.test.ts.)
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connectClient, startAgent } from '../harness.js';
import { createLogger } from '../../../agent/log.js';
import { ERRORS } from '../../../api/errors.js';
import {
  becomeSpm, exists, GiB, MiB, pidsMentioning, rejectsWith, taskLab, waitForAllocated, watchTask,
} from './tasks-fixture.js';

t.test('SPM tasks on a file master domain', async (t) => {
  const tl = await taskLab(t, 'tasks');
  if (!tl) return;
  const lines: string[] = [];
  // The agent's errors always reach the test output; everything with HV_TEST_LOG.
  const log = createLogger({ level: 'info', sink: (l) => { lines.push(l); if (process.env.HV_TEST_LOG || l.includes('"level":"error"')) process.stderr.write(l + '\n'); } });
  const { config, stop } = await startAgent(tl.overrides, log);
  const c = await connectClient(config);
  const [sd, sp] = [randomUUID(), randomUUID()];
  t.teardown(async () => {
    for (const [what, step] of [
      ['pool disconnect', () => c.call('StoragePool.disconnect', { storagepoolID: sp })],
      ['client close', () => c.close()],
      ['agent stop', () => stop()],
    ] as const) {
      const t0 = performance.now();
      try { await step(); } catch (e) { process.stderr.write(`teardown ${what}: ${String((e as Error).stack ?? e)}\n`); }
      if (process.env.HV_TEARDOWN_DEBUG || performance.now() - t0 > 5000) process.stderr.write(`teardown ${what} took ${Math.round(performance.now() - t0)} ms\n`);
    }
  });
  const spec = { type: 'file' as const, root: tl.fileRoot };
  await becomeSpm(c, sd, sp, spec, true);
  const volPath = (img: string, vol: string) => join(tl.fileRoot, sd, 'images', img, vol);
  const tasksDir = join(tl.fileRoot, sd, 'master', 'tasks');
  const preallocated = (img: string, vol: string, size: number, taskID?: string) => c.call('Volume.create', {
    storagedomainID: sd, imageID: img, volumeID: vol, size, volFormat: 'RAW', preallocate: 'PREALLOCATED', ...(taskID ? { taskID } : {}),
  });

  await t.test('a task goes init/running -> finished with its result, is cleared, and is then unknown (401)', async (t) => {
    const [img, vol] = [randomUUID(), randomUUID()];
    const t0 = performance.now();
    const { taskID } = await preallocated(img, vol, 1 * GiB);
    const answeredMs = performance.now() - t0;
    t.match(taskID, /^[0-9a-f-]{36}$/, `Volume.create answered at once with a task (${answeredMs.toFixed(0)} ms)`);
    t.ok(await exists(join(tasksDir, `${taskID}.task`)), 'the task is persisted in the master domain\'s master/tasks/ before the answer');
    const { last, seen } = await watchTask(c, taskID, (s) => s.taskState === 'finished', 120_000);
    t.comment(`states seen: ${seen.join(' -> ')}`);
    t.ok(seen.includes('running'), 'it was seen running');
    t.same({ state: last.taskState, result: last.taskResult, code: last.code, message: last.message }, { state: 'finished', result: 'success', code: 0, message: 'OK' });
    const info = await c.call('Task.getInfo', { taskID });
    t.equal(info.verb, 'Volume.create');
    t.equal(info.state, 'finished');
    t.equal(info.params.volumeID, vol, 'the params are kept');
    const result = info.result as { uuid: string; legality: string; capacity: number; truesize: number };
    t.same({ uuid: result.uuid, legality: result.legality, capacity: result.capacity }, { uuid: vol, legality: 'LEGAL', capacity: GiB }, 'the result is the new volume\'s info');
    t.ok(result.truesize >= GiB, `preallocated in full (${result.truesize} bytes on disk)`);
    t.same(Object.keys(info.phasesMs), ['wait', 'check', 'metadata', 'format', 'commit'], `phases: ${JSON.stringify(info.phasesMs)}`);
    t.ok((info.durationMs ?? 0) > 0 && info.startedAt! >= info.createdAt && info.endedAt! >= info.startedAt!, `timings (${info.durationMs} ms)`);
    t.match(lines.find((l) => l.includes('"msg":"task finished"') && l.includes(taskID)) ?? '', /"phasesMs":\{"wait"/, 'the agent logged the task\'s phase times');
    t.ok(taskID in (await c.call('Host.getAllTasksStatuses', {})).allTasksStatus, 'Host.getAllTasksStatuses lists it');

    t.same(await c.call('Task.clear', { taskID }), {});
    t.notOk(await exists(join(tasksDir, `${taskID}.task`)), 'clear removed its record from the master domain');
    await rejectsWith(t, c.call('Task.getStatus', { taskID }), 401, 'getStatus after clear');
    await rejectsWith(t, c.call('Task.getInfo', { taskID }), 401, 'getInfo after clear');
    await rejectsWith(t, c.call('Task.clear', { taskID }), 401, 'a second clear');
    t.notOk(taskID in (await c.call('Host.getAllTasksStatuses', {})).allTasksStatus, 'Host.getAllTasksStatuses no longer lists it');
    t.equal((await c.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol })).legality, 'LEGAL', 'the volume stays');
    await c.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: img, volumeID: vol });
  });

  await t.test('Task.stop kills a long preallocation and removes the half-written volume; clear of a running task is refused (410)', async (t) => {
    const [img, vol] = [randomUUID(), randomUUID()];
    const { taskID } = await preallocated(img, vol, 4 * GiB);
    await watchTask(c, taskID, (s) => s.taskState === 'running', 30_000);
    const written = await waitForAllocated(volPath(img, vol), 64 * MiB, 60_000);
    t.ok(await exists(`${volPath(img, vol)}.meta`), `mid-create: metadata written and ${Math.round(written / MiB)} MiB of data`);
    t.ok((await pidsMentioning(volPath(img, vol))).length > 0, 'qemu-img is writing it');

    const refused = await rejectsWith(t, c.call('Task.clear', { taskID }), ERRORS.taskStateError.code, 'Task.clear of a running task');
    t.match(refused?.message ?? '', /running; only a finished task can be cleared/, 'the refusal says why');

    // A second task on the same image waits for the image lock (init); stopped there, it ends at once with nothing done.
    const queuedVol = randomUUID();
    const queued = (await c.call('Volume.create', { storagedomainID: sd, imageID: img, volumeID: queuedVol, size: 64 * MiB, volFormat: 'COW', preallocate: 'SPARSE' })).taskID;
    t.equal((await c.call('Task.getStatus', { taskID: queued })).taskState, 'init', 'a task on the same image waits for the first (init)');
    await c.call('Task.stop', { taskID: queued });
    const q = await watchTask(c, queued, (s) => s.taskState === 'finished', 5_000);
    t.same({ result: q.last.taskResult, code: q.last.code }, { result: 'cleanSuccess', code: 411 }, `stopped while waiting: ${q.last.message}`);
    t.equal((await c.call('Task.getStatus', { taskID })).taskState, 'running', 'the first task runs on');
    await c.call('Task.clear', { taskID: queued });

    const tStop = performance.now();
    t.same(await c.call('Task.stop', { taskID }), {});
    const { last, seen } = await watchTask(c, taskID, (s) => s.taskState === 'finished', 60_000);
    const stopMs = performance.now() - tStop;
    t.comment(`stopped and rolled back in ${stopMs.toFixed(0)} ms; states after stop: ${seen.join(' -> ')}`);
    t.equal(last.taskResult, 'cleanSuccess', 'it ended rolled back (cleanSuccess)');
    t.equal(last.code, ERRORS.taskAborted.code, 'with code 411 (task aborted)');
    t.match(last.message, /stopped by Task\.stop/);
    const info = await c.call('Task.getInfo', { taskID });
    t.equal(info.state, 'recovered');
    t.ok(info.stopRequested);
    t.same(info.recovery.map((s) => s.kind), ['removeVolume'], 'it had registered the undo step before writing');
    t.ok(info.recoveryLog.length === 1, `recovery: ${info.recoveryLog.join('; ')}`);
    t.notOk(await exists(volPath(img, vol)), 'the half-written data file is gone');
    t.notOk(await exists(`${volPath(img, vol)}.meta`), 'its metadata is gone');
    t.same(await pidsMentioning(volPath(img, vol)), [], 'no qemu-img left running');
    await rejectsWith(t, c.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol }), 201, 'the volume does not exist');

    t.same(await c.call('Task.stop', { taskID }), {}, 'Task.stop of a finished task is a no-op');
    t.equal((await c.call('Task.getStatus', { taskID })).taskResult, 'cleanSuccess', 'and changes nothing');
    await c.call('Task.clear', { taskID });
  });

  await t.test('bad and unknown task ids, and a caller-chosen id', async (t) => {
    const bad = await rejectsWith(t, c.callRaw('Task.getStatus', { taskID: 'not-a-uuid' }), -32602, 'a malformed taskID');
    t.same((bad?.data as { field?: string } | undefined)?.field, 'params.taskID', 'the error names the field');
    const unknown = randomUUID();
    for (const m of ['Task.getStatus', 'Task.getInfo', 'Task.clear', 'Task.stop'] as const) {
      const e = await rejectsWith(t, c.call(m, { taskID: unknown }), ERRORS.unknownTask.code, `${m} of an unknown task`);
      t.same((e?.data as { taskID?: string } | undefined)?.taskID, unknown, 'the error names the task');
    }
    await rejectsWith(t, c.callRaw('Volume.create', {
      storagedomainID: sd, imageID: randomUUID(), volumeID: randomUUID(), size: MiB, volFormat: 'COW', preallocate: 'SPARSE', taskID: 'nope',
    }), -32602, 'Volume.create with a malformed taskID');

    const mine = randomUUID().toUpperCase();
    const [img, vol] = [randomUUID(), randomUUID()];
    const r = await c.call('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol, size: 64 * MiB, volFormat: 'COW', preallocate: 'SPARSE', taskID: mine });
    t.equal(r.taskID, mine.toLowerCase(), 'the caller\'s task id is used (in canonical lower case)');
    const vol2 = randomUUID();
    await rejectsWith(t, c.call('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol2, size: 64 * MiB, volFormat: 'COW', preallocate: 'SPARSE', taskID: mine }),
      ERRORS.addTaskError.code, 'a second task with the same id');
    const done = await c.waitForTask(mine, { timeoutMs: 60_000 });
    t.equal(done.taskResult, 'success', 'the first task was not disturbed');
    await rejectsWith(t, c.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol2 }), 201, 'the refused task created nothing');
    await c.call('Task.clear', { taskID: mine });
    await rejectsWith(t, c.call('Volume.create', { storagedomainID: randomUUID(), imageID: img, volumeID: vol2, size: MiB, volFormat: 'COW', preallocate: 'SPARSE' }),
      358, 'a domain outside the pool is the call\'s error, not a task\'s');

    // A task that fails: the volume id exists (in another image). Its undo step must not touch that volume.
    const { taskID } = await c.call('Volume.create', { storagedomainID: sd, imageID: randomUUID(), volumeID: vol, size: 64 * MiB, volFormat: 'COW', preallocate: 'SPARSE' });
    const failed = await c.waitForTask(taskID, { timeoutMs: 60_000 });
    t.same({ result: failed.taskResult, code: failed.code }, { result: 'cleanSuccess', code: 212 }, `it failed with 212 volume exists: ${failed.message}`);
    t.equal((await c.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol })).legality, 'LEGAL', 'the existing volume is untouched');
    await c.call('Task.clear', { taskID });
    await c.runSpmTask('Image.delete', { storagedomainID: sd, imageID: img });
    await rejectsWith(t, c.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol }), 201, 'runSpmTask(Image.delete) waited for the deletion');
  });

  await t.test('spmStop is refused (653) while a task runs; tasks stay on the master domain across spmStop/spmStart', async (t) => {
    const [img, vol] = [randomUUID(), randomUUID()];
    const { taskID } = await preallocated(img, vol, 4 * GiB);
    await watchTask(c, taskID, (s) => s.taskState === 'running', 30_000);
    await rejectsWith(t, c.call('StoragePool.spmStop', { storagepoolID: sp }), ERRORS.spmStopError.code, 'spmStop with a running task');
    t.equal((await c.call('StoragePool.getSpmStatus', { storagepoolID: sp })).spmStatus, 'SPM', 'still SPM');
    await c.call('Task.stop', { taskID });
    await watchTask(c, taskID, (s) => s.taskState === 'finished', 60_000);
    await c.call('StoragePool.spmStop', { storagepoolID: sp });
    await rejectsWith(t, c.call('Task.getStatus', { taskID }), 401, 'a host that is not SPM has no tasks');
    t.same((await c.call('Host.getAllTasksStatuses', {})).allTasksStatus, {}, 'and lists none');
    await rejectsWith(t, c.call('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol, size: MiB, volFormat: 'COW', preallocate: 'SPARSE' }),
      ERRORS.unavailable.code, 'an SPM verb on a host that is not SPM');
    t.same(await readdir(tasksDir), [`${taskID}.task`], 'its record is still on the master domain');
    await c.call('StoragePool.spmStart', { storagepoolID: sp });
    const again = await c.call('Task.getStatus', { taskID });
    t.same({ state: again.taskState, result: again.taskResult, code: again.code }, { state: 'finished', result: 'cleanSuccess', code: 411 }, 'spmStart loaded it as it ended');
    await c.call('Task.clear', { taskID });
    t.same(await readdir(tasksDir), [], 'cleared: no record left');
  });
});
