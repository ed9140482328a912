// The real controller daemon with one real agent on this host, enrolled with a token
// (`hostvisor enroll`) and Up: the set-up of the controller tests that run on the main host's
// libvirtd and the storage lab of taskLab. Both are stopped at the test's end.
import type { Test } from 'tap';
import { enroll } from '../../../agent/cli/enroll.js';
import { scratchDir, spawnAgent, stopChild, testConfig, type Overrides } from '../../agent/harness.js';
import type { TaskLab } from '../../agent/storage/tasks-fixture.js';
import { controllerDaemon, type ControllerDaemon } from './controller-daemon.js';
import { until } from './wait.js';

export interface DaemonAndAgent {
  ctl: ControllerDaemon;
  hostId: string;
  /** the agent's settings (its RPC port, PKI directory) */
  config: Awaited<ReturnType<typeof testConfig>>;
  /** the agent's process (a test that kills it starts another with the same config) */
  agent: Awaited<ReturnType<typeof spawnAgent>>;
}

export async function daemonWithAgent(t: Test, tl: TaskLab, o: { echo: boolean; libvirtUri: string; settings: Record<string, number>; agent?: Overrides }): Promise<DaemonAndAgent> {
  const ctl = await controllerDaemon({ echo: o.echo, settings: o.settings });
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
  return { ctl, hostId, config, agent };
}
