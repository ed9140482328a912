// Test helper: the real controller daemon with one real agent enrolled with a token (host h1,
// daemon-agent.ts) and a file storage domain in the storage lab, the agent its SPM: what the
// controller's image tests (snapshots, templates) stand on. Everything stops when the test ends.
import type { Test } from 'tap';
import { join } from 'node:path';
import type { Overrides } from '../../agent/harness.js';
import type { TaskLab } from '../../agent/storage/tasks-fixture.js';
import type { ControllerDaemon } from './controller-daemon.js';
import { daemonWithAgent, type DaemonAndAgent } from './daemon-agent.js';
import { jobEnd, until } from './wait.js';

export interface FileDomainHost {
  ctl: ControllerDaemon;
  hostId: string;
  /** the storage domain's id and its folder's parent (the domain is `${root}/${sdId}`) */
  sdId: string;
  root: string;
  /** the agent's process and settings */
  agent: DaemonAndAgent['agent'];
  config: DaemonAndAgent['config'];
}

export async function fileDomainHost(t: Test, tl: TaskLab, o: { libvirtUri: string; settings: Record<string, number>; agent?: Overrides; echo?: boolean }): Promise<FileDomainHost> {
  const { ctl, hostId, agent, config } = await daemonWithAgent(t, tl, { echo: o.echo ?? false, libvirtUri: o.libvirtUri, settings: o.settings, ...(o.agent ? { agent: o.agent } : {}) });
  const root = join(tl.fileRoot, 'ctl');
  const sd = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'data', spec: { type: 'file', root } } });
  t.equal((await jobEnd(ctl.call, sd.body.id, 180_000)).state, 'succeeded', 'a file storage domain');
  const sdId: string = sd.body.targetId;
  await until('an SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => a.body?.hostId === hostId, 60_000);
  return { ctl, hostId, sdId, root, agent, config };
}
