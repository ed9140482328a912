// Volume.merge (the cold merge) survives the agent: a real agent (a child
// process) is killed with SIGKILL while qemu-img commit writes the top into
// the base, its qemu-img left running (as systemd's KillMode=process leaves
// it). After a restart and spmStart the task is recovered (1011): the
// leftover qemu-img is killed, the base is LEGAL again, the chain reads what
// it read before (qemu-img compare against a copy made first) and is clean;
// a new Volume.merge then finishes the merge.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { connectClient, spawnAgent, stopChild, testConfig } from '../harness.js';
import { ERRORS } from '../../../api/errors.js';
import { run } from '../../../agent/storage/exec.js';
import { becomeSpm, GiB, killPids, pidsMentioning, taskLab, watchTask, type DomainSpecParam } from './tasks-fixture.js';

const QEMU_MS = 120_000;

t.test('kill -9 during a cold merge\'s commit: after a restart the chain is as before and a new merge finishes it', async (t) => {
  const tl = await taskLab(t, 'coldmerge-restart');
  if (!tl) return;
  const config = await testConfig(tl.overrides);
  let child: ChildProcess | undefined;
  t.teardown(() => stopChild(child, 30_000));
  const orphans: number[] = [];
  t.teardown(() => killPids(orphans));
  const start = async () => { child = (await spawnAgent(config)).child; return connectClient(config); };
  const [sd, sp, img, base, top] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const spec: DomainSpecParam = { type: 'file', root: tl.fileRoot };
  const path = (v: string) => join(tl.fileRoot, sd, 'images', img, v);
  const ref = join(tl.fileRoot, 'ref.qcow2');

  let c = await start();
  await becomeSpm(c, sd, sp, spec, true);
  const create = (vol: string, parent?: string) => c.runSpmTask('Volume.create', {
    storagedomainID: sd, imageID: img, volumeID: vol, size: 2 * GiB, volFormat: 'COW', preallocate: 'SPARSE', ...(parent ? { srcVolUUID: parent } : {}),
  });
  await create(base);
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x01 0 64M', path(base)], { timeoutMs: QEMU_MS });
  await create(top, base);
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x02 32M 1536M', path(top)], { timeoutMs: QEMU_MS });
  await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'qcow2', path(top), ref], { timeoutMs: QEMU_MS });

  const { taskID } = await c.call('Volume.merge', { storagedomainID: sd, imageID: img, baseVolUUID: base, topVolUUID: top });
  await watchTask(c, taskID, (s) => (s.progress ?? 0) > 0 || s.taskState === 'finished', 60_000);
  const info = (v: string) => c.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: v });
  const mid = await c.call('Task.getStatus', { taskID });
  if (mid.taskState === 'finished') {
    t.comment('the commit ended before the kill could reach it on this machine; nothing to prove');
    return;
  }
  t.equal((await info(base)).legality, 'ILLEGAL', `mid-commit (${mid.progress ?? 0} %): the base is ILLEGAL while it is written`);
  await c.close();
  child!.kill('SIGKILL');
  await new Promise<void>((r) => (child!.exitCode !== null || child!.signalCode !== null ? r() : child!.once('exit', () => r())));
  orphans.push(...await pidsMentioning(path(top)));
  for (const pid of orphans) { try { process.kill(pid, 'SIGSTOP'); } catch { /* gone already */ } } // held: recovery must find it running
  t.ok(orphans.length >= 1, `the killed agent left ${orphans.length} qemu-img commit running`);

  c = await start();
  await becomeSpm(c, sd, sp, spec, false, (why) => t.comment(`spmStart retried: ${why}`));
  const { last } = await watchTask(c, taskID, (s) => s.taskState === 'finished', 60_000);
  t.same({ result: last.taskResult, code: last.code }, { result: 'cleanSuccess', code: ERRORS.taskInterrupted.code }, `recovered at spmStart: ${last.message}`);
  t.match(last.message, /had not ended: the chain is as before/, 'recovery rolled back (the commit point was not reached)');
  t.same(await pidsMentioning(path(top)), [], 'the qemu-img the dead agent left is gone');
  await c.call('Task.clear', { taskID });
  t.same([(await info(base)).legality, (await info(top)).legality, (await info(top)).parent], ['LEGAL', 'LEGAL', base], 'base and top LEGAL, the chain base <- top');
  const cmp = await run(['qemu-img', 'compare', '-f', 'qcow2', '-F', 'qcow2', ref, path(top)], { timeoutMs: QEMU_MS, okCodes: [0, 1] });
  t.equal(cmp.rc, 0, `the chain reads what it read before: ${cmp.stdout.trim()}`);
  for (const v of [base, top]) {
    const chk = await run(['qemu-img', 'check', '-f', 'qcow2', path(v)], { timeoutMs: QEMU_MS, okCodes: [0, 2, 3] });
    t.equal(chk.rc, 0, `qemu-img check clean on ${v === base ? 'the base (its leaked clusters freed by recovery)' : 'the top'}${chk.rc ? `: ${chk.stdout.trim().slice(-300)}` : ''}`);
  }

  const again = await c.runSpmTask('Volume.merge', { storagedomainID: sd, imageID: img, baseVolUUID: base, topVolUUID: top }, { timeoutMs: 300_000 });
  t.equal(again.legality, 'LEGAL', 'a new Volume.merge finishes the merge');
  await c.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: img, volumeID: top });
  const cmp2 = await run(['qemu-img', 'compare', '-f', 'qcow2', '-F', 'qcow2', ref, path(base)], { timeoutMs: QEMU_MS, okCodes: [0, 1] });
  t.equal(cmp2.rc, 0, `the base alone now holds all the data: ${cmp2.stdout.trim()}`);
  await c.call('StoragePool.disconnect', { storagepoolID: sp });
  await c.close();
});
