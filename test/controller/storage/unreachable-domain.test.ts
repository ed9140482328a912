// A host that cannot reach a pool domain is unfit: its domain monitor's failed reads reach the
// controller (Host.getStorageRepoStats), the domain's record shows it unreachable from the
// host, and after storageUnreachableGraceMs the host is NonOperational with that reason; once
// the domain is readable again the host is Up. A controller in this process (the runtime with
// installStorage and the REST server), a real agent enrolled with a token, two file domains;
// the second one's folder is moved away and back (the master, with the SPM lease, is left alone).
import t from 'tap';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { enroll } from '../../../agent/cli/enroll.js';
import { scratchDir, spawnAgent, stopChild, testConfig } from '../../agent/harness.js';
import { taskLab } from '../../agent/storage/tasks-fixture.js';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { inProcessController } from './lab-controller.js';
import { jobEnd, jobSummary, until } from './wait.js';

const GRACE_MS = 5_000;

t.test('a pool domain unreachable from the host makes it NonOperational with the reason, and Up again once it is back', async (t) => {
  const tl = await taskLab(t, 'ctl-unreach');
  if (!tl) return;
  const settings = resolveDecisionSettings({ pollIntervalMs: 1_000, pollTimeoutMs: 1_000, storageUnreachableGraceMs: GRACE_MS });
  const ctl = await inProcessController({ listen: '127.0.0.1', settings, echo: !!process.env['HV_TEST_LOG'] });
  t.teardown(() => ctl.close());
  const pkiDir = scratchDir('hv-enrolled-');
  const config = await testConfig({ ...tl.overrides, 'pki.dir': pkiDir, 'libvirt.uri': 'test:///default', 'storage.monitorIntervalMs': 500, 'storage.monitorReadTimeoutMs': 2_000 });
  const tok = await ctl.call('POST', '/api/v1/hosts', { body: { name: 'h1', address: 'localhost', port: config['rpc.port'] } });
  const { hostId } = await enroll({ controller: ctl.url, token: tok.body.token, pkiDir, name: 'h1' });
  const agent = await spawnAgent(config);
  t.teardown(() => stopChild(agent.child, 30_000));
  await until('the host is Up', () => ctl.call('GET', `/api/v1/hosts/${hostId}`), (a) => a.body?.status === 'Up', 60_000);

  const domains: string[] = [];
  for (const name of ['master', 'second']) {
    const r = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name, spec: { type: 'file', root: join(tl.fileRoot, name) } } });
    const job = await jobEnd(ctl.call, r.body.id, 180_000);
    t.equal(job.state, 'succeeded', `storage-domain.create ${name}: ${jobSummary(job)}`);
    domains.push(r.body.targetId);
  }
  const second = domains[1]!;
  await until('the second domain active on the host', () => ctl.call('GET', `/api/v1/storage-domains/${second}`), (a) => a.body?.hosts?.[hostId] === 'active', 60_000);

  const folder = join(tl.fileRoot, 'second', second);
  await rename(folder, `${folder}.away`);
  const tAway = performance.now();
  let moved = true;
  t.teardown(async () => { if (moved) await rename(`${folder}.away`, folder).catch(() => {}); });
  const seen = await until('the record shows it unreachable', () => ctl.call('GET', `/api/v1/storage-domains/${second}`), (a) => /^unreachable/.test(a.body?.hosts?.[hostId] ?? ''), 30_000);
  t.pass(`GET /storage-domains/{id}: "${seen.body.hosts[hostId]}" (${((performance.now() - tAway) / 1000).toFixed(1)} s after it was moved)`);
  const unfit = await until('NonOperational', () => ctl.call('GET', `/api/v1/hosts/${hostId}`), (a) => a.body?.status === 'NonOperational', GRACE_MS + 30_000);
  const secs = (performance.now() - tAway) / 1000;
  t.ok(secs * 1000 >= GRACE_MS, `NonOperational ${secs.toFixed(1)} s after the domain went away (not before the ${GRACE_MS / 1000} s grace)`);
  t.match(unfit.body.reasons, [/pool storage domain second unreachable/], `with the reason: ${unfit.body.reasons.join('; ')}`);

  await rename(`${folder}.away`, folder);
  moved = false;
  await until('Up again', () => ctl.call('GET', `/api/v1/hosts/${hostId}`), (a) => a.body?.status === 'Up', 60_000);
  t.pass('Up again once the domain is readable');
  const back = await until('the domain active again', () => ctl.call('GET', `/api/v1/storage-domains/${second}`), (a) => a.body?.hosts?.[hostId] === 'active', 60_000);
  t.equal(back.body.status, 'active', 'and the domain active on it');
});
