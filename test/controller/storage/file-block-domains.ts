// Test helper: the real controller daemon with one real agent (daemon-agent.ts), a file domain
// `fd` (the pool master) and a block domain `bd` on a loop PV of the storage lab, both active, the
// agent their SPM; and a client of the agent with the controller's admin certificate, to prepare
// block volumes for qemu-img and list what is on storage. What the disk copy and move tests stand on.
import type { Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostvisorClient } from '../../../api/client/client.js';
import { run } from '../../../agent/storage/exec.js';
import type { TaskLab } from '../../agent/storage/tasks-fixture.js';
import { daemonWithAgent, type DaemonAndAgent } from './daemon-agent.js';
import { jobEnd, jobSummary, until } from './wait.js';

export interface FileAndBlockDomains extends Omit<DaemonAndAgent, 'agent'> {
  /** a client of the agent (its process is not needed by the copy tests) */
  agent: HostvisorClient;
  fd: string;
  bd: string;
  /** the file domain is `${root}/${fd}` */
  root: string;
  /** a volume's file on the file domain */
  volFile(imageId: string, volumeId: string): string;
  /** the block domain's volumes, sorted */
  blockVolumes(): Promise<string[]>;
  /** `qemu-img compare` (rc 0: identical) */
  compare(a: string, af: string, b: string, bf: string): Promise<{ rc: number; stdout: string }>;
  /** runs fn with a block image's leaf path while it is prepared (then torn down) */
  withBlock<T>(imageID: string, fn: (path: string) => Promise<T>): Promise<T>;
}

export async function fileAndBlockDomains(t: Test, tl: TaskLab, o: { echo: boolean }): Promise<FileAndBlockDomains> {
  const da = await daemonWithAgent(t, tl, { echo: o.echo, libvirtUri: 'qemu:///system', settings: { pollIntervalMs: 1_000, pollTimeoutMs: 1_000, vmListIntervalMs: 1_000, hostFactsRefreshMs: 2_000 } });
  const { ctl, hostId, config } = da;
  const agent = await HostvisorClient.connect({
    url: `wss://localhost:${config['rpc.port']}/`, ca: readFileSync(join(ctl.dir, 'pki', 'ca.pem')),
    cert: readFileSync(join(ctl.dir, 'admin', 'cert.pem')), key: readFileSync(join(ctl.dir, 'admin', 'key.pem')), timeoutMs: 60_000,
  });
  t.teardown(() => agent.close());
  const root = join(tl.fileRoot, 'ctl');
  const fdj = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'fd', spec: { type: 'file', root } } });
  t.equal((await jobEnd(ctl.call, fdj.body.id, 180_000)).state, 'succeeded', 'file domain made (the master)');
  const fd: string = fdj.body.targetId;
  await until('an SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => a.body?.hostId === hostId, 60_000);
  const bdj = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'bd', spec: { type: 'block', devices: [await tl.lab.makePv(8)] } } });
  const bdJob = await jobEnd(ctl.call, bdj.body.id, 180_000);
  t.equal(bdJob.state, 'succeeded', `block domain made: ${jobSummary(bdJob)}`);
  const bd: string = bdj.body.targetId;
  await until('the block domain is active', () => ctl.call('GET', `/api/v1/storage-domains/${bd}`), (a) => a.body?.status === 'active', 60_000);
  return {
    ...da, agent, fd, bd, root,
    volFile: (imageId, volumeId) => join(root, fd, 'images', imageId, volumeId),
    blockVolumes: async () => (await agent.call('StorageDomain.getVolumes', { storagedomainID: bd })).volumes.slice().sort(),
    compare: (a, af, b, bf) => run(['qemu-img', 'compare', '-f', af, '-F', bf, a, b], { timeoutMs: 120_000, okCodes: [0, 1] }),
    async withBlock(imageID, fn) {
      const prep = await agent.call('Image.prepare', { storagedomainID: bd, imageID });
      try { return await fn(prep.path); } finally { await agent.call('Image.teardown', { storagedomainID: bd, imageID }); }
    },
  };
}
