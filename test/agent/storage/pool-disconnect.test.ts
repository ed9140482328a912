// Leaving the pool leaves nothing attached: a real agent process, a block
// master domain on a loop PV (loop activation), a real sanlock daemon. After
// StoragePool.disconnect (as plain host, after spmStop, or while still SPM)
// and after SIGTERM while SPM, no loop device backs any LV file of the VG
// (ids, leases, inbox, outbox, metadata, tasks, volumes), and no activation
// link is left. spmStop alone drops the tasks LV (the SPM's only) and keeps
// what a connected host uses (ids, leases, inbox, outbox, metadata).
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { connectClient, spawnAgent, stopChild, testConfig, waitExit } from '../harness.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { RepoStat } from '../../../api/storage.js';
import { Sanlock } from '../../../agent/storage/sanlock.js';
import { GiB, loopsBacking, taskLab, type TaskLab } from './tasks-fixture.js';

interface Env { tl: TaskLab; sd: string; sp: string; spec: { type: 'block'; devices: string[] }; vgFiles: string; links: string }

async function blockMaster(t: Test, name: string): Promise<Env | undefined> {
  const tl = await taskLab(t, name);
  if (!tl) return undefined;
  const pv = await tl.lab.makePv(4);
  const sd = randomUUID();
  const s = tl.lab.settings();
  return { tl, sd, sp: randomUUID(), spec: { type: 'block', devices: [pv] }, vgFiles: join(s.loopDataDir, sd) + '/', links: join(s.loopLinkDir, sd) };
}

async function agent(t: Test, env: Env): Promise<{ c: HostvisorClient; child: ChildProcess; logs: string[] }> {
  const config = await testConfig({ ...env.tl.overrides, 'storage.monitorIntervalMs': 300 });
  const { child, logs } = await spawnAgent(config);
  t.teardown(() => stopChild(child, 30_000));
  if (process.env['HV_TEST_LOG']) child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  const c = await connectClient(config);
  t.teardown(() => c.close().catch(() => {}));
  return { c, child, logs };
}

/** Connects as host 1 and waits (bounded) until the domain monitor holds the host id: the lockspace is joined. */
async function connect(c: HostvisorClient, env: Env): Promise<void> {
  await c.call('StoragePool.connect', { storagepoolID: env.sp, hostID: 1, masterSdUUID: env.sd, domains: { [env.sd]: env.spec } });
  const end = Date.now() + 30_000;
  let last: Record<string, RepoStat> = {};
  while (Date.now() < end) {
    last = await c.call('Host.getStorageRepoStats', {});
    if (last[env.sd]?.acquired && last[env.sd]?.valid) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`host id not acquired on ${env.sd} in 30 s: ${JSON.stringify(last)}`);
}

/** The LVs of the VG with a loop device attached right now (by backing file, whatever the agent's links say). */
async function attachedLvs(env: Env): Promise<string[]> {
  return (await loopsBacking(env.vgFiles)).map((l) => l.slice(l.indexOf(env.vgFiles) + env.vgFiles.length).replace(/\)$/, '')).sort();
}

const linksLeft = async (env: Env): Promise<string[]> => (await readdir(env.links).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();

/** The domain's lockspace as the sanlock daemon lists it (none: undefined). */
const lockspace = async (env: Env): Promise<string | undefined> => (await new Sanlock().getLockspaces()).find((l) => l.name === env.sd)?.state;

const POOL_LVS = ['ids', 'inbox', 'leases', 'metadata', 'outbox'];

t.test('disconnect, as plain host, after spmStop and while still SPM: no LV of the block master is left attached', async (t) => {
  const env = await blockMaster(t, 'pool-disconnect');
  if (!env) return;
  const { c, logs } = await agent(t, env);
  await c.call('StorageDomain.create', { storagedomainID: env.sd, spec: env.spec });

  // A host that never was SPM.
  await connect(c, env);
  t.same(await attachedLvs(env), POOL_LVS, 'connected: the lease, mailbox and metadata LVs are attached');
  await c.call('StoragePool.disconnect', { storagepoolID: env.sp });
  t.equal(await lockspace(env), undefined, 'disconnect as plain host: the host left the lockspace');
  t.same(await attachedLvs(env), [], 'disconnect as plain host: no LV attached');
  t.same(await linksLeft(env), [], 'and no activation link left');

  // SPM with a volume made, spmStop, then disconnect.
  await connect(c, env);
  await c.call('StoragePool.spmStart', { storagepoolID: env.sp });
  const [img, vol] = [randomUUID(), randomUUID()];
  await c.runSpmTask('Volume.create', { storagedomainID: env.sd, imageID: img, volumeID: vol, size: GiB, volFormat: 'COW', preallocate: 'SPARSE' }, { timeoutMs: 60_000 });
  t.ok((await attachedLvs(env)).includes('tasks'), 'as SPM the tasks LV is attached');
  await c.call('StoragePool.spmStop', { storagepoolID: env.sp });
  t.same(await attachedLvs(env), POOL_LVS, 'after spmStop only what a connected host uses stays attached (no tasks LV, no volume)');
  t.equal((await c.call('StoragePool.getSpmStatus', { storagepoolID: env.sp })).spmStatus, 'Free', 'and the lease is still readable');
  await c.call('StoragePool.disconnect', { storagepoolID: env.sp });
  t.equal(await lockspace(env), undefined, 'disconnect after spmStop: the host left the lockspace');
  t.same(await attachedLvs(env), [], 'disconnect after spmStop: no LV attached');
  t.same(await linksLeft(env), [], 'and no activation link left');

  // Disconnect while still SPM (the pool stops the role itself, then leaves the lockspace).
  await connect(c, env);
  await c.call('StoragePool.spmStart', { storagepoolID: env.sp });
  await c.call('StoragePool.disconnect', { storagepoolID: env.sp });
  t.equal(await lockspace(env), undefined, 'disconnect while SPM: the host left the lockspace');
  t.same(await attachedLvs(env), [], 'disconnect while SPM: no LV attached');
  t.same(await linksLeft(env), [], 'and no activation link left');
  t.same(logs.filter((l) => l.includes('"level":"error"')), [], 'the agent logged no error (sanlock never lost a device under a joined lockspace)');
});

t.test('SIGTERM while SPM: the agent exits with no LV of the block master attached', async (t) => {
  const env = await blockMaster(t, 'pool-sigterm');
  if (!env) return;
  const { c, child, logs } = await agent(t, env);
  await c.call('StorageDomain.create', { storagedomainID: env.sd, spec: env.spec });
  await connect(c, env);
  await c.call('StoragePool.spmStart', { storagepoolID: env.sp });
  await c.runSpmTask('Volume.create', { storagedomainID: env.sd, imageID: randomUUID(), volumeID: randomUUID(), size: GiB, volFormat: 'COW', preallocate: 'SPARSE' }, { timeoutMs: 60_000 });
  t.same(await attachedLvs(env), [...POOL_LVS, 'tasks'].sort(), 'as SPM: the pool\'s LVs and the tasks LV are attached');
  await c.close();
  child.kill('SIGTERM');
  t.ok(await waitExit(child, 60_000), 'the agent exited on SIGTERM');
  t.equal(await lockspace(env), undefined, 'the host left the lockspace');
  t.same(await attachedLvs(env), [], 'no LV attached after the agent stopped');
  t.same(await linksLeft(env), [], 'and no activation link left');
  t.same(logs.filter((l) => l.includes('"level":"error"')), [], 'the agent logged no error');
});
