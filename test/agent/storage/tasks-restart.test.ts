// SPM tasks survive the agent: a real agent (a child process) is killed with
// SIGKILL in the middle of a task and started again; after spmStart the
// task is still reported, recovered (its half-made volume removed) with code
// 1011, and a task that had finished before the kill keeps its result.
// File master domain (tasks in master/tasks/) and block master domain (tasks
// in the tasks LV's slots). The killed agent's qemu-img is left running, as
// systemd's KillMode=process leaves it; recovery must cope with that.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { connectClient, spawnAgent, testConfig } from '../harness.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { Config } from '../../../agent/config/settings.js';
import { ERRORS } from '../../../api/errors.js';
import { run } from '../../../agent/storage/exec.js';
import {
  becomeSpm, exists, GiB, killPids, loopsBacking, MiB, pidsMentioning, rejectsWith, taskLab, waitForAllocated, watchTask, type DomainSpecParam,
} from './tasks-fixture.js';

/** One agent process at a time, restartable; teardown leaves none running. */
function agentProcess(t: Test, config: Config) {
  let child: ChildProcess | undefined;
  let logs: string[] = [];
  const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));
  const api = {
    get logs() { return logs; },
    async start(): Promise<HostvisorClient> {
      ({ child, logs } = await spawnAgent(config));
      return connectClient(config);
    },
    async kill9(): Promise<void> {
      if (!child) return;
      const c = child;
      child = undefined;
      c.kill('SIGKILL');
      await exited(c);
    },
    async stop(): Promise<void> {
      if (!child) return;
      const c = child;
      child = undefined;
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
      await exited(c);
      clearTimeout(timer);
    },
  };
  t.teardown(() => api.stop());
  // A failure shows what the agent logged at warn and above (an internal error's cause is only there).
  t.teardown(() => {
    if (t.passing()) return;
    for (const l of logs.filter((x) => /"level":"(warn|error)"/.test(x)).slice(-20)) t.comment(`agent: ${l.slice(0, 2000)}`);
  });
  return api;
}

t.test('kill -9 in the middle of a create on a file master: after a restart the task is recovered and the partial volume is gone; a finished task keeps its result', async (t) => {
  const tl = await taskLab(t, 'tasks-restart-file');
  if (!tl) return;
  const config = await testConfig(tl.overrides);
  const agent = agentProcess(t, config);
  const orphans: number[] = [];
  t.teardown(() => killPids(orphans));
  const [sd, sp] = [randomUUID(), randomUUID()];
  const spec: DomainSpecParam = { type: 'file', root: tl.fileRoot };
  const tasksDir = join(tl.fileRoot, sd, 'master', 'tasks');
  const volPath = (img: string, vol: string) => join(tl.fileRoot, sd, 'images', img, vol);

  let c = await agent.start();
  await becomeSpm(c, sd, sp, spec, true);
  // A task that finishes before the kill, and is not cleared.
  const [imgF, volF] = [randomUUID(), randomUUID()];
  const { taskID: finished } = await c.call('Volume.create', { storagedomainID: sd, imageID: imgF, volumeID: volF, size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE' });
  t.equal((await c.waitForTask(finished, { timeoutMs: 60_000 })).taskResult, 'success', 'a first task finished');

  // A long one: 3 GiB written in full; killed once it is well under way.
  const [img, vol] = [randomUUID(), randomUUID()];
  const { taskID: cut } = await c.call('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol, size: 3 * GiB, volFormat: 'RAW', preallocate: 'PREALLOCATED' });
  await watchTask(c, cut, (s) => s.taskState === 'running', 30_000);
  const written = await waitForAllocated(volPath(img, vol), 64 * MiB, 60_000);
  const before = JSON.parse(await readFile(join(tasksDir, `${cut}.task`), 'utf8')) as { state: string; recovery: Array<{ kind: string }> };
  t.same({ state: before.state, steps: before.recovery.map((s) => s.kind) }, { state: 'running', steps: ['removeVolume'] },
    'on disk before the kill: the task is running, with its undo step registered');
  await c.close();
  await agent.kill9();
  const tKilled = performance.now();
  orphans.push(...await pidsMentioning(volPath(img, vol)));
  // Held where the kill left them, so that recovery surely finds them running (on an idle machine
  // a qemu-img may otherwise finish its write first), and the disk is not saturated meanwhile.
  for (const pid of orphans) { try { process.kill(pid, 'SIGSTOP'); } catch { /* already gone */ } }
  t.comment(`killed with ${Math.round(written / MiB)} MiB written; ${orphans.length} qemu-img left running (KillMode=process leaves children)`);
  t.ok(await exists(`${volPath(img, vol)}.meta`), 'the half-made volume is there after the kill (metadata, ILLEGAL)');

  c = await agent.start();
  const tUp = performance.now();
  await becomeSpm(c, sd, sp, spec, false, (why) => t.comment(`spmStart retried: ${why}`));
  const tSpm = performance.now();

  const f = await c.call('Task.getStatus', { taskID: finished });
  t.same({ state: f.taskState, result: f.taskResult, code: f.code }, { state: 'finished', result: 'success', code: 0 }, 'the finished task is reported as it ended');
  const fInfo = await c.call('Task.getInfo', { taskID: finished });
  t.same((fInfo.result as { uuid: string; legality: string }).uuid, volF, 'with its result (the volume\'s info)');
  t.notOk(fInfo.interrupted, 'and was not touched by recovery');

  const { last, seen } = await watchTask(c, cut, (s) => s.taskState === 'finished', 60_000);
  const tRecovered = performance.now();
  t.comment(`restart: agent up ${((tUp - tKilled) / 1000).toFixed(1)} s after the kill, SPM after ${((tSpm - tUp) / 1000).toFixed(1)} s more, task recovered ${(tRecovered - tSpm).toFixed(0)} ms after spmStart; states seen ${seen.join(' -> ')}`);
  t.equal(last.taskResult, 'cleanSuccess', 'the interrupted task ended rolled back (cleanSuccess)');
  t.equal(last.code, ERRORS.taskInterrupted.code, 'with code 1011 (interrupted by a restart)');
  t.match(last.message, /interrupted by an agent restart while running Volume\.create; recovered at spmStart: removed the partly created volume/, `message: ${last.message}`);
  const info = await c.call('Task.getInfo', { taskID: cut });
  t.ok(info.interrupted, 'getInfo says it was interrupted');
  t.equal(info.state, 'recovered');
  t.notOk(await exists(volPath(img, vol)), 'the partial data file is gone');
  t.same(await pidsMentioning(volPath(img, vol)), [], 'the qemu-img the dead agent left writing it is gone');
  if (orphans.length) t.match(last.message, /after killing 1 helper\(s\) the dead agent left running on it/, 'recovery killed it first');
  t.notOk(await exists(`${volPath(img, vol)}.meta`), 'its metadata is gone');
  await rejectsWith(t, c.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol }), 201, 'the volume does not exist');
  t.equal((await c.call('Volume.getInfo', { storagedomainID: sd, imageID: imgF, volumeID: volF })).legality, 'LEGAL', 'the finished task\'s volume is intact');
  t.same(Object.keys((await c.call('Host.getAllTasksStatuses', {})).allTasksStatus).sort(), [finished, cut].sort(), 'both tasks are listed until cleared');
  t.ok(agent.logs.some((l) => l.includes('"msg":"tasks loaded"') && l.includes('"recovering":1')), 'the agent logged loading 2 tasks, 1 to recover');
  const ended = agent.logs.find((l) => l.includes('"msg":"task ended without success"') && l.includes(cut));
  t.ok(ended, 'the agent logged how the task ended');
  if (ended) t.comment(`recovered task's phases (ms): ${JSON.stringify((JSON.parse(ended) as { phasesMs: unknown }).phasesMs)}`);

  await c.call('Task.clear', { taskID: finished });
  await c.call('Task.clear', { taskID: cut });
  t.same(await readdir(tasksDir), [], 'both cleared from the master domain');
  await c.call('StoragePool.disconnect', { storagepoolID: sp });
  await c.close();
  await agent.stop();
});

/** A task lab with a block master domain on an 8 GiB loop PV, and an agent process that is its SPM. */
async function blockMasterSpm(t: Test, tag: string) {
  const tl = await taskLab(t, tag);
  if (!tl) return undefined;
  const pv = await tl.lab.makePv(8);
  const agent = agentProcess(t, await testConfig(tl.overrides));
  const [sd, sp] = [randomUUID(), randomUUID()];
  const spec: DomainSpecParam = { type: 'block', devices: [pv] };
  const client = await agent.start();
  await becomeSpm(client, sd, sp, spec, true);
  return { tl, agent, sd, sp, spec, client };
}

t.test('kill -9 during image deletions and size extensions on a block master: after a restart no image is left with a half-deleted volume, and every extended volume agrees with its image', async (t) => {
  const lab = await blockMasterSpm(t, 'tasks-restart-delete');
  if (!lab) return;
  const { agent, sd, sp, spec } = lab;
  let c = lab.client;
  // Three images with a chain of three volumes each (a base and two snapshots), and two lone volumes to extend.
  const chains = await Promise.all(Array.from({ length: 3 }, async () => {
    const img = randomUUID();
    const vols = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, vol] of vols.entries()) {
      await c.runSpmTask('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol, size: 512 * MiB, volFormat: 'COW', preallocate: 'SPARSE', ...(i ? { srcVolUUID: vols[i - 1]! } : {}) });
    }
    return { img, vols, taskID: '' };
  }));
  const grows = await Promise.all(Array.from({ length: 2 }, async () => {
    const [img, vol] = [randomUUID(), randomUUID()];
    await c.runSpmTask('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol, size: 512 * MiB, volFormat: 'COW', preallocate: 'SPARSE' });
    return { img, vol, taskID: '' };
  }));
  for (const g of grows) g.taskID = (await c.call('Volume.extendSize', { storagedomainID: sd, imageID: g.img, volumeID: g.vol, newSize: GiB })).taskID;
  for (const ch of chains) ch.taskID = (await c.call('Image.delete', { storagedomainID: sd, imageID: ch.img })).taskID;
  await new Promise((r) => setTimeout(r, 150));
  const atKill = await Promise.all([...chains, ...grows].map((x) => c.call('Task.getStatus', { taskID: x.taskID }).then((s) => s.taskState)));
  // (The states are read after the pause; the kill comes a few ms later still.)
  await c.close();
  await agent.kill9();
  t.comment(`killed with the deletions ${atKill.slice(0, 3).join(', ')} and the extensions ${atKill.slice(3).join(', ')}`);

  c = await agent.start();
  await becomeSpm(c, sd, sp, spec, false, (why) => t.comment(`spmStart retried: ${why}`));
  const tally: string[] = [];
  for (const ch of chains) {
    const { last } = await watchTask(c, ch.taskID, (s) => s.taskState === 'finished', 120_000);
    const left = (await c.call('StorageDomain.getVolumes', { storagedomainID: sd, imageID: ch.img })).volumes;
    if (last.taskResult === 'success') {
      t.same(left, [], `${ch.img.slice(0, 8)}: deleted before the kill, nothing left`);
      tally.push('deleted');
      continue;
    }
    t.same({ result: last.taskResult, code: last.code }, { result: 'cleanSuccess', code: ERRORS.taskInterrupted.code }, `${ch.img.slice(0, 8)} interrupted and recovered: ${last.message}`);
    // Deletion goes children first: what is left is the base of the chain, whole and usable.
    t.same(left.sort(), ch.vols.slice(0, left.length).sort(), `${ch.img.slice(0, 8)}: ${left.length} of 3 volumes left, the base of the chain`);
    for (const vol of left) t.equal((await c.call('Volume.getInfo', { storagedomainID: sd, imageID: ch.img, volumeID: vol })).legality, 'LEGAL', `${vol.slice(0, 8)} is LEGAL`);
    tally.push(`recovered with ${left.length} left`);
  }
  for (const g of grows) {
    const { last } = await watchTask(c, g.taskID, (s) => s.taskState === 'finished', 120_000);
    t.ok(last.taskResult === 'success' || (last.taskResult === 'cleanSuccess' && last.code === ERRORS.taskInterrupted.code), `extension ${g.vol.slice(0, 8)}: ${last.taskResult} ${last.message}`);
    const info = await c.call('Volume.getInfo', { storagedomainID: sd, imageID: g.img, volumeID: g.vol });
    t.equal(info.capacity, GiB, 'the metadata says the new size (completed on recovery if it was cut short)');
    const prepared = await c.call('Image.prepare', { storagedomainID: sd, imageID: g.img, volumeID: g.vol });
    const qi = JSON.parse((await run(['qemu-img', 'info', '-U', '--output', 'json', prepared.path], { timeoutMs: 30_000 })).stdout) as { 'virtual-size': number };
    t.equal(qi['virtual-size'], GiB, 'and so does the qcow2 image');
    await c.call('Image.teardown', { storagedomainID: sd, imageID: g.img });
    tally.push(`extension ${last.taskResult}`);
  }
  t.comment(`after the restart: ${tally.join('; ')}`);
  for (const x of [...chains, ...grows]) await c.call('Task.clear', { taskID: x.taskID });
  await c.call('StoragePool.disconnect', { storagepoolID: sp });
  await c.close();
  await agent.stop();
});

t.test('kill -9 during a burst of creates on a block master: after a restart every task either finished (its volume LEGAL) or was recovered (its volume gone); none is left half-made', async (t) => {
  const lab = await blockMasterSpm(t, 'tasks-restart-block');
  if (!lab) return;
  const { tl, agent, sd, sp, spec } = lab;
  let c = lab.client;
  const [imgF, volF] = [randomUUID(), randomUUID()];
  const { taskID: finished } = await c.call('Volume.create', { storagedomainID: sd, imageID: imgF, volumeID: volF, size: GiB, volFormat: 'COW', preallocate: 'SPARSE' });
  t.equal((await c.waitForTask(finished, { timeoutMs: 60_000 })).taskResult, 'success', 'a first task finished (kept in the tasks LV)');

  const burst = Array.from({ length: 6 }, () => ({ img: randomUUID(), vol: randomUUID(), taskID: '' }));
  for (const b of burst) {
    b.taskID = (await c.call('Volume.create', { storagedomainID: sd, imageID: b.img, volumeID: b.vol, size: GiB, volFormat: 'COW', preallocate: 'PREALLOCATED' })).taskID;
  }
  await new Promise((r) => setTimeout(r, 300));
  const atKill = await Promise.all(burst.map((b) => c.call('Task.getStatus', { taskID: b.taskID }).then((s) => s.taskState)));
  await c.close();
  await agent.kill9();
  t.comment(`killed with the burst's tasks ${atKill.join(', ')}`);

  c = await agent.start();
  await becomeSpm(c, sd, sp, spec, false, (why) => t.comment(`spmStart retried: ${why}`));
  const f = await c.call('Task.getInfo', { taskID: finished });
  t.same({ result: f.taskResult, uuid: (f.result as { uuid: string }).uuid }, { result: 'success', uuid: volF }, 'the finished task kept its result across the restart');
  let done = 0;
  let recovered = 0;
  for (const b of burst) {
    const { last } = await watchTask(c, b.taskID, (s) => s.taskState === 'finished', 120_000);
    if (last.taskResult === 'success') {
      done++;
      t.equal((await c.call('Volume.getInfo', { storagedomainID: sd, imageID: b.img, volumeID: b.vol })).legality, 'LEGAL', `${b.taskID.slice(0, 8)} finished: its volume is LEGAL`);
    } else {
      recovered++;
      t.same({ result: last.taskResult, code: last.code }, { result: 'cleanSuccess', code: ERRORS.taskInterrupted.code }, `${b.taskID.slice(0, 8)} was interrupted and recovered: ${last.message}`);
      await rejectsWith(t, c.call('Volume.getInfo', { storagedomainID: sd, imageID: b.img, volumeID: b.vol }), 201, `${b.taskID.slice(0, 8)}: its volume is gone`);
      t.same(await loopsBacking(join(tl.lab.settings().loopDataDir, sd, b.vol)), [], `${b.taskID.slice(0, 8)}: no loop device left on its data`);
    }
    await c.call('Task.clear', { taskID: b.taskID });
  }
  const strays = agent.logs.filter((l) => l.includes('stray loop device of a removed LV detached')).length;
  const killed = agent.logs.filter((l) => l.includes('killed storage helpers a previous agent left running')).length;
  t.comment(`after the restart: ${done} finished before the kill, ${recovered} recovered (${killed} with helpers killed, ${strays} unlinked loop devices detached)`);
  const left = (await c.call('StorageDomain.getVolumes', { storagedomainID: sd })).volumes;
  const expected = [volF, ...burst.filter((b) => left.includes(b.vol)).map((b) => b.vol)];
  t.equal(left.length, 1 + done, 'the domain holds exactly the volumes of the tasks that finished');
  t.same(left.sort(), expected.sort());
  for (const vol of left) {
    const img = vol === volF ? imgF : burst.find((b) => b.vol === vol)!.img;
    t.equal((await c.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol })).legality, 'LEGAL', `${vol.slice(0, 8)} is LEGAL`);
  }
  await c.call('Task.clear', { taskID: finished });
  t.same((await c.call('Host.getAllTasksStatuses', {})).allTasksStatus, {}, 'every task cleared');
  await c.call('StoragePool.disconnect', { storagepoolID: sp });
  await c.close();
  await agent.stop();
});
