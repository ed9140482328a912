// A domain created after the pool was connected joins it: StoragePool.connect again, with the
// new domain among the pool's, attaches it on a host that is connected already (opened,
// monitored, this host's id acquired in its lockspace), and the SPM can make volumes on it.
// Connecting to another pool while connected is still refused (40). A real agent process and
// a real sanlock daemon; two file domains.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { connectClient, spawnAgent, stopChild, testConfig } from '../harness.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { RepoStat } from '../../../api/storage.js';
import { RpcCallError } from '../../../api/client/errors.js';
import { becomeSpm, MiB, taskLab } from './tasks-fixture.js';

async function waitAcquired(c: HostvisorClient, sd: string): Promise<RepoStat> {
  const end = Date.now() + 30_000;
  let last: Record<string, RepoStat> = {};
  while (Date.now() < end) {
    last = await c.call('Host.getStorageRepoStats', {});
    if (last[sd]?.acquired && last[sd]?.valid && last[sd]?.actual) return last[sd]!;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${sd} not monitored with the host id acquired in 30 s: ${JSON.stringify(last)}`);
}

t.test('connect again with a new domain attaches it to the connected pool; another pool is refused', async (t) => {
  const tl = await taskLab(t, 'pool-attach');
  if (!tl) return;
  const config = await testConfig({ ...tl.overrides, 'storage.monitorIntervalMs': 300 });
  const { child } = await spawnAgent(config);
  t.teardown(() => stopChild(child, 30_000));
  const c = await connectClient(config);
  t.teardown(() => c.close().catch(() => {}));

  const [sp, master, second] = [randomUUID(), randomUUID(), randomUUID()];
  const masterSpec = { type: 'file' as const, root: join(tl.fileRoot, 'a') };
  const secondSpec = { type: 'file' as const, root: join(tl.fileRoot, 'b') };
  await becomeSpm(c, master, sp, masterSpec, true);
  t.teardown(() => c.call('StoragePool.disconnect', { storagepoolID: sp }).catch(() => {}));
  await c.call('StorageDomain.create', { storagedomainID: second, spec: secondSpec });
  t.notOk((await c.call('StoragePool.getInfo', { storagepoolID: sp })).dominfo[second], 'a domain created after the connect is not in the pool yet');

  await c.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: master, domains: { [master]: masterSpec, [second]: secondSpec } });
  const info = await c.call('StoragePool.getInfo', { storagepoolID: sp });
  t.match(info.dominfo[second], { role: 'Regular', type: 'file' }, 'connect again with it: the pool has the new domain, as a regular one');
  t.equal(info.info.master_uuid, master, 'the master is still the master');
  const stat = await waitAcquired(c, second);
  t.ok(stat.valid && stat.acquired, 'its monitor reads it and this host\'s id is acquired in its lockspace');

  const [img, vol] = [randomUUID(), randomUUID()];
  const v = await c.runSpmTask('Volume.create', { storagedomainID: second, imageID: img, volumeID: vol, size: 64 * MiB, volFormat: 'COW', preallocate: 'SPARSE' }, { timeoutMs: 60_000 });
  t.equal(v.domain, second, 'the SPM makes a volume on the attached domain');

  const refused = await c.call('StoragePool.connect', { storagepoolID: randomUUID(), hostID: 1, masterSdUUID: master, domains: { [master]: masterSpec } }).then(() => 'connected', (e: unknown) => e);
  t.ok(refused instanceof RpcCallError && refused.code === 40, 'connecting to another pool while connected is refused with 40');
});
