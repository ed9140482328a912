// Fixture for the copy, template and move tests: an agent (in this process)
// that is the SPM of a pool with a file domain (the master) and a block
// domain on a loop PV of the task lab. Teardown destroys the VMs the test
// registered, disconnects, stops the agent.
import { randomUUID } from 'node:crypto';
import type { Test } from 'tap';
import type { HostvisorClient } from '../../../api/client/client.js';
import { createLogger } from '../../../agent/log.js';
import { connectClient, startAgent } from '../harness.js';
import type { TaskLab } from './tasks-fixture.js';

export interface CopyPool {
  c: HostvisorClient;
  fsd: string;
  bsd: string;
  sp: string;
  /** VMs to destroy at teardown (remove them once destroyed). */
  vms: Set<string>;
}

export async function fileAndBlockPool(t: Test, tl: TaskLab, o: { logMatch?: string } = {}): Promise<CopyPool> {
  const log = createLogger({
    level: 'info',
    sink: (l) => { if (process.env.HV_TEST_LOG || l.includes('"level":"error"') || (o.logMatch && l.includes(o.logMatch))) process.stderr.write(l + '\n'); },
  });
  const { config, stop } = await startAgent(tl.overrides, log);
  const c = await connectClient(config);
  const [fsd, bsd, sp] = [randomUUID(), randomUUID(), randomUUID()];
  const vms = new Set<string>();
  t.teardown(async () => {
    for (const vmID of vms) await c.call('VM.destroy', { vmID }).catch((e: unknown) => process.stderr.write(`teardown VM.destroy: ${String(e)}\n`));
    for (const [what, step] of [
      ['pool disconnect', () => c.call('StoragePool.disconnect', { storagepoolID: sp })], ['client close', () => c.close()], ['agent stop', () => stop()],
    ] as const) {
      try { await step(); } catch (e) { process.stderr.write(`teardown ${what}: ${String(e)}\n`); }
    }
  });
  const pv = await tl.lab.makePv(8);
  const fileSpec = { type: 'file' as const, root: tl.fileRoot };
  const blockSpec = { type: 'block' as const, devices: [pv] };
  await c.call('StorageDomain.create', { storagedomainID: fsd, spec: fileSpec });
  await c.call('StorageDomain.create', { storagedomainID: bsd, spec: blockSpec });
  await c.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: fsd, domains: { [fsd]: fileSpec, [bsd]: blockSpec } });
  await c.call('StoragePool.spmStart', { storagepoolID: sp });
  return { c, fsd, bsd, sp, vms };
}
