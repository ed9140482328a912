// Test helper: the real controller daemon with one real agent enrolled with a token (host h1)
// and a file storage domain in the storage lab, the agent its SPM: what the controller's image
// tests (snapshots, templates) stand on. Everything stops when the test ends.
import type { Test } from 'tap';
import { join } from 'node:path';
import { enroll } from '../../../agent/cli/enroll.js';
import { scratchDir, spawnAgent, stopChild, testConfig, type Overrides } from '../../agent/harness.js';
import type { TaskLab } from '../../agent/storage/tasks-fixture.js';
import { controllerDaemon, type ControllerDaemon } from './controller-daemon.js';
import { jobEnd, until } from './wait.js';

export interface FileDomainHost {
  ctl: ControllerDaemon;
  hostId: string;
  /** the storage domain's id and its folder's parent (the domain is `${root}/${sdId}`) */
  sdId: string;
  root: string;
}

export async function fileDomainHost(t: Test, tl: TaskLab, o: { libvirtUri: string; settings: Record<string, number>; agent?: Overrides; echo?: boolean }): Promise<FileDomainHost> {
  const ctl = await controllerDaemon({ echo: o.echo ?? false, settings: o.settings });
  t.teardown(() => ctl.stop());
  await ctl.start();
  const pkiDir = scratchDir('hv-enrolled-');
  const config = await testConfig({ ...tl.overrides, 'pki.dir': pkiDir, 'libvirt.uri': o.libvirtUri, 'storage.monitorIntervalMs': 1000, ...o.agent });
  const tok = await ctl.call('POST', '/api/v1/hosts', { body: { name: 'h1', address: 'localhost', port: config['rpc.port'] } });
  const { hostId } = await enroll({ controller: ctl.url, token: tok.body.token, pkiDir, name: 'h1' });
  const agent = await spawnAgent(config);
  t.teardown(() => stopChild(agent.child, 30_000));
  if (o.echo) agent.child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[agent] ${d.toString()}`));
  await until('the host is Up', () => ctl.call('GET', `/api/v1/hosts/${hostId}`), (a) => a.body?.status === 'Up', 60_000);
  const root = join(tl.fileRoot, 'ctl');
  const sd = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'data', spec: { type: 'file', root } } });
  t.equal((await jobEnd(ctl.call, sd.body.id, 180_000)).state, 'succeeded', 'a file storage domain');
  const sdId: string = sd.body.targetId;
  await until('an SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => a.body?.hostId === hostId, 60_000);
  return { ctl, hostId, sdId, root };
}
