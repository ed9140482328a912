// The storage setup that two-host tests and bench:thinp share: two lab hosts
// (test/lab/multihost), one agent in each, a block storage domain on a loop PV
// in the shared "SAN", and a pool both hosts are connected to (host ids 1 and
// 2). The SPM is not started here: callers decide who starts it. close()
// undoes everything that was set up, in reverse order and each step bounded,
// also when setup failed half-way.
import { randomUUID } from 'node:crypto';
import type { ParamsOf, ResultOf } from '../../../api/schema.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { labUp, labDown, type LabHost } from '../../lab/multihost/lab.js';
import { bounded, testConfig, type Overrides, type VmSpecParam } from '../harness.js';
import { spawnLabAgent, connectLabClient, type LabAgent } from './lab-agents.js';
import { storageLab, type StorageLab } from './storage-lab.js';

export const MiB = 1024 * 1024;

/** Lab thin-provisioning settings: small chunk, extend at 25 % used, fast poll. */
export const THINP_LAB_SETTINGS = {
  'storage.extentSizeMiB': 4, 'storage.thinInitialSizeMiB': 256, 'storage.sanlockIoTimeoutSec': 1,
  'thinp.chunkMiB': 512, 'thinp.percent': 25, 'thinp.pollMs': 1000, 'thinp.retryAfterMs': 2000,
  'virt.domainType': 'qemu',
} as const satisfies Overrides;

export type VmDisk = NonNullable<VmSpecParam['disks']>[number];

export interface TwoHostPool {
  hosts: LabHost[];
  lab: StorageLab;
  pv: string;
  /** agents[i] runs in hosts[i] and has host id i + 1 in the pool; clients[i] talks to it. */
  agents: LabAgent[];
  clients: HostvisorClient[];
  sd: string;
  sp: string;
  /** A block qcow2 disk `vda` of the pool. */
  disk(imageID: string, volumeID: string): VmDisk;
  /** Destroyed by close() unless marked destroyed. */
  trackVm(client: HostvisorClient, vmID: string): { destroyed: boolean };
  /**
   * After agents[i] died: starts a new agent in hosts[i] with the same config,
   * and puts it and a new client in agents[i] and clients[i] (tracked VMs move
   * to the new client).
   */
  respawn(i: number): Promise<{ agent: LabAgent; client: HostvisorClient }>;
  /** What an engine does after an agent restart: StoragePool.connect on clients[i] again, with the same parameters. */
  reconnectPool(i: number): Promise<void>;
  /** Bounded, never rejects: VMs, pool disconnect, clients, agents, storage lab, labDown. */
  close(): Promise<void>;
}

export async function twoHostPool(o: { name: string; pvGiB: number; settings?: Overrides; echo?: boolean }): Promise<TwoHostPool> {
  const undo: Array<{ what: string; ms: number; fn: () => Promise<unknown> }> = [];
  const vms: Array<{ client: HostvisorClient; vmID: string; destroyed: boolean }> = [];
  const agents: LabAgent[] = [];
  const clients: HostvisorClient[] = [];
  const [sd, sp] = [randomUUID(), randomUUID()];
  const close = async (): Promise<void> => {
    for (const u of undo.splice(0).reverse()) await bounded(u.what, u.fn(), u.ms);
  };
  try {
    undo.push({ what: 'labDown', ms: 120_000, fn: () => labDown() });
    const hosts = await labUp(2);
    const lab = await storageLab(o.name);
    undo.push({
      what: 'storage lab cleanup', ms: 120_000, fn: () => {
        // Make the lab's drivers know both hosts' link dirs, so cleanup detaches the agents' LV loops.
        lab.driver('hostA'); lab.driver('hostB');
        return lab.cleanup();
      },
    });
    const pv = await lab.makePv(o.pvGiB);
    undo.push({ what: 'agents stop', ms: 60_000, fn: async () => { for (const a of agents) await a.stop(); } });
    const start = async (host: LabHost, name: 'hostA' | 'hostB'): Promise<LabAgent> => {
      const config = await testConfig({
        'rpc.host': '0.0.0.0', 'rpc.port': 54321,
        'storage.activation': 'loop', 'storage.loopDataDir': lab.settings().loopDataDir, 'storage.loopLinkDir': lab.settings(name).loopLinkDir,
        ...THINP_LAB_SETTINGS, ...o.settings,
      });
      const a = await spawnLabAgent(host, config, { echo: !!o.echo });
      agents.push(a);
      return a;
    };
    const [a0, a1] = await Promise.all([start(hosts[0]!, 'hostA'), start(hosts[1]!, 'hostB')]);
    agents.splice(0, agents.length, a0, a1); // in host order, whichever came up first
    undo.push({
      what: 'pool disconnect, clients close', ms: 60_000, fn: async () => {
        for (const v of vms) if (!v.destroyed) await bounded(`VM.destroy ${v.vmID}`, v.client.call('VM.destroy', { vmID: v.vmID }));
        for (const c of clients) await bounded('pool disconnect', c.call('StoragePool.disconnect', { storagepoolID: sp }), 20_000);
        for (const c of clients) await bounded('client close', c.close(), 10_000);
      },
    });
    clients.push(...await Promise.all([connectLabClient(a0), connectLabClient(a1)]));
    const domains = { [sd]: { type: 'block' as const, devices: [pv] } };
    const connectPool = async (i: number): Promise<void> => {
      await clients[i]!.call('StoragePool.connect', { storagepoolID: sp, hostID: i + 1, masterSdUUID: sd, domains });
    };
    await clients[0]!.call('StorageDomain.create', { storagedomainID: sd, spec: { type: 'block', devices: [pv] } });
    await Promise.all(clients.map((_c, i) => connectPool(i)));
    return {
      hosts, lab, pv, agents, clients, sd, sp, close,
      reconnectPool: connectPool,
      async respawn(i) {
        const old = agents[i]!;
        if (!old.exited()) throw new Error(`the agent in ${old.host.name} is still running`);
        const agent = await spawnLabAgent(old.host, old.config, { echo: !!o.echo });
        agents[i] = agent;
        const oldClient = clients[i]!;
        await bounded('old client close', oldClient.close(), 5_000);
        const client = await connectLabClient(agent);
        clients[i] = client;
        for (const v of vms) if (v.client === oldClient) v.client = client;
        return { agent, client };
      },
      disk: (imageID, volumeID) => ({ name: 'vda', storage: { poolID: sp, domainID: sd, imageID, volumeID }, type: 'block', format: 'qcow2' }),
      trackVm(client, vmID) {
        const rec = { client, vmID, destroyed: false };
        vms.push(rec);
        return rec;
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Creates a volume on the SPM (an SPM task: run, waited for and cleared) and returns its info.
 * The one place the two-host tests and bench:thinp create volumes.
 */
export async function createVolume(spm: HostvisorClient, p: ParamsOf<'Volume.create'>): Promise<ResultOf<'Volume.getInfo'>> {
  return spm.runSpmTask('Volume.create', p, { timeoutMs: 120_000 });
}

/** Deletes an image on the SPM (likewise an SPM task, waited for). */
export async function deleteImage(spm: HostvisorClient, storagedomainID: string, imageID: string): Promise<void> {
  await spm.runSpmTask('Image.delete', { storagedomainID, imageID }, { timeoutMs: 120_000 });
}

// ---------- the agents' JSON log lines ----------

export const parseLogLine = (l: string): Record<string, unknown> => {
  try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; }
};

/** The records of an agent's log lines with this msg (from line `from` on). */
export function logRecords(logs: readonly string[], msg: string, from = 0): Array<Record<string, unknown>> {
  const needle = `"msg":${JSON.stringify(msg)}`;
  return logs.slice(from).filter((l) => l.includes(needle)).map(parseLogLine);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `pred` holds for some line of `logs` from line `from` on (polling), bounded. */
export async function waitLog(logs: string[], pred: (l: string) => boolean, ms: number, what: string, from = 0): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const hit = logs.slice(from).find(pred);
    if (hit) return hit;
    if (Date.now() > until) throw new Error(`no log line within ${ms} ms: ${what}`);
    await sleep(200);
  }
}
