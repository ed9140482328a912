// power_saving's host requests through the maintenance flow: a park checks the blockers through
// the maintenance service and then makes and submits a host.maintenance job (with its event); a
// refusal (409 from the service, or a maintenance job already under way) answers false and makes
// no job; an activation goes to the service's activate; any other failure is thrown, not hidden.
import t from 'tap';
import { join } from 'node:path';
import { maintenanceRequests } from '../../../controller/balancing/host-requests.js';
import type { HostMaintenanceApi } from '../../../controller/migration/maintenance-service.js';
import type { Job } from '../../../controller/model/jobs.js';
import { ConflictError } from '../../../controller/store/errors.js';
import { Store } from '../../../controller/store/store.js';
import { scratchDir } from '../../agent/harness.js';

t.test('park and activate through the maintenance service; refusals answer false', async (t) => {
  const store = await Store.open({ engine: 'sqlite', path: join(scratchDir('hv-hreq-'), 'c.db') });
  t.teardown(() => store.close());
  const cluster = await store.clusters.get('default');
  const host = await store.hosts.create({ name: 'h1', address: 'localhost', port: 50_001, clusterId: cluster.id, certFingerprint: 'test' });
  const calls: string[] = [];
  let refuse: Error | undefined;
  const maintenance = {
    async prepare(hostId: string, why: string) { calls.push(`prepare ${hostId} ${why}`); if (refuse) throw refuse; return {} as never; },
    async activate(hostId: string, why: string) { calls.push(`activate ${hostId} ${why}`); if (refuse) throw refuse; return {} as never; },
    async cancel() { throw new Error('not used'); },
  } satisfies HostMaintenanceApi;
  const submitted: Job[] = [];
  const logs: string[] = [];
  const request = maintenanceRequests({ store, maintenance, submit: (j) => submitted.push(j), log: (_l, msg) => logs.push(msg) });

  t.equal(await request('maintenance', host.id, 'host idle', 'corr-1'), true, 'a park is carried out');
  t.same(calls, [`prepare ${host.id} balancing: host idle`], 'after the service checked the blockers and moved the host');
  t.equal(submitted.length, 1, 'one job submitted');
  t.same([submitted[0]!.kind, submitted[0]!.targetId, submitted[0]!.correlationId], ['host.maintenance', host.id, 'corr-1'], 'a host.maintenance job for the host, with the cycle\'s correlation id');
  const events = await store.eventLog.list(0, 100);
  t.ok(events.some((e) => e.kind === 'job.created' && e.subjectId === submitted[0]!.id), 'and its job.created event');

  t.equal(await request('maintenance', host.id, 'host idle', 'corr-2'), false, 'a second park while that job is unfinished: refused');
  t.equal(submitted.length, 1, 'no second job');

  refuse = new ConflictError('host h1 cannot enter maintenance: VM x is pinned');
  const other = await store.hosts.create({ name: 'h2', address: 'localhost', port: 50_002, clusterId: cluster.id, certFingerprint: 'test' });
  t.equal(await request('maintenance', other.id, 'host idle', 'corr-3'), false, 'a 409 from the service is a refusal');
  t.ok(logs.some((m) => /maintenance of host .* was refused/.test(m)), 'logged at info, as the loop\'s answer');
  t.equal(submitted.length, 1, 'and makes no job');

  refuse = undefined;
  t.equal(await request('activate', other.id, 'others over', 'corr-4'), true, 'an activation is carried out');
  t.match(calls.at(-1), `activate ${other.id} balancing: others over`);

  refuse = new Error('store down');
  await t.rejects(request('activate', other.id, 'others over', 'corr-5'), /store down/, 'any other failure is thrown');
});
