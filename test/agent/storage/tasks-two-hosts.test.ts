// SPM tasks live on the master domain, not on the SPM host: two lab hosts
// (test/lab/multihost), a block master domain. A is SPM and its agent is
// killed (SIGKILL) during a burst of creates; B becomes SPM and finds A's
// tasks: the one A finished keeps its result, the ones A was running are
// recovered by B (their half-made volumes removed), and every volume left
// is LEGAL.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { ERRORS } from '../../../api/errors.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { sanlockUnavailable } from './sanlock-daemon.js';
import { twoHostPool, MiB } from './two-host-pool.js';
import { rejectsWith, watchTask } from './tasks-fixture.js';

const GiB = 1024 * MiB;

async function spmStartRetrying(c: HostvisorClient, sp: string, timeoutMs: number): Promise<{ lver: number; attempts: number }> {
  const end = Date.now() + timeoutMs;
  for (let attempts = 1; ; attempts++) {
    try {
      return { lver: (await c.call('StoragePool.spmStart', { storagepoolID: sp })).spmLver, attempts };
    } catch (e) {
      // 40 while sanlock still shows the dead agent's lease: an engine retries.
      if ((e as { code?: number }).code !== 40 || Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

const why = await sanlockUnavailable();

t.test('a new SPM on another host finds the dead SPM\'s tasks on the master domain: finished ones with their result, unfinished ones recovered', { skip: why ? `sanlock cannot run here: ${why}` : false }, async (t) => {
  const pool = await twoHostPool({ name: 'tasks-2h', pvGiB: 8 });
  t.teardown(() => pool.close());
  const { sd, sp } = pool;
  const [cA, cB] = pool.clients as [HostvisorClient, HostvisorClient];
  await cA.call('StoragePool.spmStart', { storagepoolID: sp });

  const [imgF, volF] = [randomUUID(), randomUUID()];
  const { taskID: finished } = await cA.call('Volume.create', { storagedomainID: sd, imageID: imgF, volumeID: volF, size: GiB, volFormat: 'COW', preallocate: 'SPARSE' });
  t.equal((await cA.waitForTask(finished, { timeoutMs: 60_000 })).taskResult, 'success', 'A finished a first task (not cleared)');
  const burst = Array.from({ length: 4 }, () => ({ img: randomUUID(), vol: randomUUID(), taskID: '' }));
  for (const b of burst) {
    b.taskID = (await cA.call('Volume.create', { storagedomainID: sd, imageID: b.img, volumeID: b.vol, size: GiB, volFormat: 'COW', preallocate: 'PREALLOCATED' })).taskID;
  }
  await new Promise((r) => setTimeout(r, 300));
  await pool.agents[0]!.kill();
  const tKill = performance.now();
  await rejectsWith(t, cB.call('Task.getStatus', { taskID: finished }), ERRORS.unknownTask.code, 'B, not SPM, knows no tasks');

  const { lver, attempts } = await spmStartRetrying(cB, sp, 90_000);
  t.comment(`B became SPM (lver ${lver}) ${((performance.now() - tKill) / 1000).toFixed(1)} s after A's agent was killed, ${attempts} attempt(s)`);
  const f = await cB.call('Task.getInfo', { taskID: finished });
  t.same({ result: f.taskResult, hostId: f.hostId, uuid: (f.result as { uuid: string }).uuid }, { result: 'success', hostId: 1, uuid: volF },
    'B reports the task A finished (host id 1), with its result');
  let recovered = 0;
  for (const b of burst) {
    const { last } = await watchTask(cB, b.taskID, (s) => s.taskState === 'finished', 120_000);
    if (last.taskResult === 'success') {
      t.equal((await cB.call('Volume.getInfo', { storagedomainID: sd, imageID: b.img, volumeID: b.vol })).legality, 'LEGAL', `${b.taskID.slice(0, 8)}: finished by A, its volume is LEGAL`);
    } else {
      recovered++;
      t.same({ result: last.taskResult, code: last.code }, { result: 'cleanSuccess', code: ERRORS.taskInterrupted.code }, `${b.taskID.slice(0, 8)}: recovered by B: ${last.message}`);
      t.match(last.message, /interrupted by the loss of its SPM \(host 1\); recovered by host 2 while running Volume\.create; recovered at spmStart/, 'the message says whose task B recovered');
      await rejectsWith(t, cB.call('Volume.getInfo', { storagedomainID: sd, imageID: b.img, volumeID: b.vol }), 201, `${b.taskID.slice(0, 8)}: its volume is gone`);
    }
    await cB.call('Task.clear', { taskID: b.taskID });
  }
  t.comment(`${burst.length - recovered} of A's burst finished before the kill, ${recovered} recovered by B`);
  for (const vol of (await cB.call('StorageDomain.getVolumes', { storagedomainID: sd })).volumes) {
    const img = vol === volF ? imgF : burst.find((b) => b.vol === vol)?.img;
    t.ok(img, `${vol.slice(0, 8)} belongs to a task`);
    if (img) t.equal((await cB.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol })).legality, 'LEGAL', `${vol.slice(0, 8)} is LEGAL`);
  }
  await cB.call('Task.clear', { taskID: finished });
  t.same((await cB.call('Host.getAllTasksStatuses', {})).allTasksStatus, {}, 'all cleared');
});
