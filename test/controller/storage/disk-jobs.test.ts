// Storage through the real controller daemon (a child process, its REST API) and a real agent
// enrolled with a token (its own sanlock lockspace, a file storage domain in the storage lab):
// the first storage domain becomes the pool master, the host is connected to the pool and
// elected SPM; a thin disk is created (a qcow2 file on storage) and deleted (gone) through jobs;
// a second domain joins the pool; and the controller killed with kill -9 while a preallocated
// disk's Volume.create task runs follows the same task after its restart: one task, one volume.
import t from 'tap';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { enroll } from '../../../agent/cli/enroll.js';
import { scratchDir, spawnAgent, stopChild, testConfig } from '../../agent/harness.js';
import { run } from '../../../agent/storage/exec.js';
import { GiB, MiB, taskLab } from '../../agent/storage/tasks-fixture.js';
import { controllerDaemon } from './controller-daemon.js';
import { jobEnd, jobSummary, until } from './wait.js';

const echo = !!process.env['HV_TEST_LOG'];

t.test('one enrolled host, file domains, disks through the controller daemon', async (t) => {
  const tl = await taskLab(t, 'ctl-disks');
  if (!tl) return;
  // Polls every second, not every 3 s: the waits below for the host, its domains and the SPM end sooner.
  const ctl = await controllerDaemon({ echo, settings: { pollIntervalMs: 1_000, pollTimeoutMs: 1_000 } });
  t.teardown(() => ctl.stop());
  await ctl.start();

  // Enrolment with a token, then the agent on the pki.dir it wrote.
  const pkiDir = scratchDir('hv-enrolled-');
  const config = await testConfig({ ...tl.overrides, 'pki.dir': pkiDir, 'libvirt.uri': 'test:///default', 'storage.monitorIntervalMs': 1000, 'storage.filePreallocation': 'full' });
  const tok = await ctl.call('POST', '/api/v1/hosts', { body: { name: 'h1', address: 'localhost', port: config['rpc.port'] } });
  t.equal(tok.status, 201, 'an enrollment token');
  const { hostId } = await enroll({ controller: ctl.url, token: tok.body.token, pkiDir, name: 'h1' });
  const agent = await spawnAgent(config);
  t.teardown(() => stopChild(agent.child, 30_000));
  if (echo) agent.child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[agent] ${d.toString()}`));
  await until('the host is Up', () => ctl.call('GET', `/api/v1/hosts/${hostId}`), (a) => a.body?.status === 'Up', 60_000);
  t.pass('the enrolled host is Up');

  const root = join(tl.fileRoot, 'ctl');
  const sdA = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'data-a', spec: { type: 'file', root } } });
  t.equal(sdA.status, 202, 'storage domain accepted as a job');
  const sdJob = await jobEnd(ctl.call, sdA.body.id, 180_000);
  t.equal(sdJob.state, 'succeeded', `storage-domain.create: ${jobSummary(sdJob)}`);
  const sdId: string = sdA.body.targetId;
  t.ok(existsSync(join(root, sdId, 'dom_md', 'metadata')), 'the domain is on storage (dom_md/metadata)');
  const cluster = (await ctl.call('GET', '/api/v1/clusters/default')).body;
  t.match(cluster.poolId, /^[0-9a-f-]{36}$/, 'the cluster has a pool id');
  const domain = await until('the domain is active on the host', () => ctl.call('GET', `/api/v1/storage-domains/${sdId}`),
    (a) => a.body?.status === 'active' && a.body?.hosts?.[hostId] === 'active' && a.body?.sizeBytes > 0, 60_000);
  t.ok(domain.body.master, 'the first domain is the pool master');
  t.comment(`domain: ${domain.body.sizeBytes} bytes, ${domain.body.freeBytes} free; per host: ${JSON.stringify(domain.body.hosts)}`);
  const spm = await until('an SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => a.body?.hostId === hostId, 60_000);
  t.ok(spm.body.lver >= 1, `the host is SPM (lver ${spm.body.lver}), shown by GET /clusters/default/spm`);
  t.equal((await ctl.call('GET', `/api/v1/hosts/${hostId}`)).body.spm, true, 'and by GET /hosts/{id}');

  await t.test('a thin disk is created (a qcow2 file) and deleted (gone) through jobs', async (t) => {
    const made = await ctl.call('POST', '/api/v1/disks', { body: { name: 'thin1', storageDomainId: sdId, sizeBytes: GiB, provisioning: 'thin' } });
    t.equal(made.status, 202, 'disk.create accepted');
    const job = await jobEnd(ctl.call, made.body.id, 120_000);
    t.equal(job.state, 'succeeded', `disk.create: ${jobSummary(job)}`);
    const disk = (await ctl.call('GET', `/api/v1/disks/${made.body.targetId}`)).body;
    t.equal(disk.status, 'ready', 'the disk is ready');
    const file = join(root, sdId, 'images', disk.imageId, disk.volumeId);
    t.ok(existsSync(file), 'its volume is on storage');
    const info = JSON.parse((await run(['qemu-img', 'info', '--output=json', '-U', file], { timeoutMs: 30_000 })).stdout) as { format: string; 'virtual-size': number };
    t.same([info.format, info['virtual-size']], ['qcow2', GiB], 'a qcow2 of 1 GiB virtual size');

    const del = await ctl.call('DELETE', `/api/v1/disks/${disk.id}`);
    t.equal(del.status, 202, 'disk.delete accepted');
    const dj = await jobEnd(ctl.call, del.body.id, 120_000);
    t.equal(dj.state, 'succeeded', `disk.delete: ${jobSummary(dj)}`);
    t.equal((await ctl.call('GET', `/api/v1/disks/${disk.id}`)).status, 404, 'the disk is gone from the API');
    t.notOk(existsSync(file), 'and its volume from storage');
  });

  await t.test('a second domain joins the pool', async (t) => {
    const b = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'data-b', spec: { type: 'file', root: join(tl.fileRoot, 'ctl-b') } } });
    const job = await jobEnd(ctl.call, b.body.id, 180_000);
    t.equal(job.state, 'succeeded', `storage-domain.create: ${jobSummary(job)}`);
    const d = (await until('its host id acquired on it', () => ctl.call('GET', `/api/v1/storage-domains/${b.body.targetId}`), (a) => a.body?.hosts?.[hostId] === 'active', 60_000)).body;
    t.same([d.master, d.status, d.hosts[hostId]], [false, 'active', 'active'], 'not the master; active on the host, its host id acquired in its lockspace');
  });

  await t.test('kill -9 of the controller while a Volume.create task runs: the restarted controller follows that task, no second one', async (t) => {
    const size = 3 * GiB;
    const logFrom = agent.logs.length;
    const made = await ctl.call('POST', '/api/v1/disks', { body: { name: 'prealloc1', storageDomainId: sdId, sizeBytes: size, provisioning: 'preallocated' } });
    const jobId: string = made.body.id;
    const withTask = await until('the job remembers its task id', () => ctl.call('GET', `/api/v1/jobs/${jobId}`), (a) => typeof a.body?.params?.memo?.taskId === 'string', 60_000, 100);
    const taskID: string = withTask.body.params.memo.taskId;
    const started = (l: string) => l.includes('"msg":"task started"') && l.includes('"verb":"Volume.create"');
    await until('the agent started the task', async () => agent.logs.some((l) => started(l) && l.includes(taskID)), (x) => x, 30_000, 50);
    await ctl.kill9();
    const runningAtKill = !agent.logs.some((l) => l.includes('"msg":"task finished"') && l.includes(taskID));
    t.ok(runningAtKill, `the controller was killed while task ${taskID} ran`);
    const jobAtKill = (await ctl.start().then(() => ctl.call('GET', `/api/v1/jobs/${jobId}`))).body;
    t.comment(`job when the new controller started: ${jobSummary(jobAtKill)}; task still running then: ${!agent.logs.some((l) => l.includes('"msg":"task finished"') && l.includes(taskID))}`);
    const job = await jobEnd(ctl.call, jobId, 300_000);
    t.equal(job.state, 'succeeded', `disk.create after the restart: ${jobSummary(job)}`);
    t.equal(job.params.memo.taskId, taskID, 'the same task id all along');
    t.ok(ctl.logs.some((l) => l.includes('"msg":"job resumed"') && l.includes(jobId)), 'the restarted controller resumed the job');
    const creates = agent.logs.slice(logFrom).filter(started);
    t.equal(creates.length, 1, `the agent started one Volume.create task for the disk, before and after the restart (${creates.length})`);
    const disk = (await ctl.call('GET', `/api/v1/disks/${made.body.targetId}`)).body;
    t.equal(disk.status, 'ready', 'the disk is ready');
    const file = join(root, sdId, 'images', disk.imageId, disk.volumeId);
    const st = statSync(file);
    t.ok(st.size === size && st.blocks * 512 >= size, `one RAW volume, ${size / GiB} GiB, fully allocated (${Math.round(st.blocks * 512 / MiB)} MiB on disk)`);
    const vols = (await run(['ls', join(root, sdId, 'images', disk.imageId)], { timeoutMs: 10_000 })).stdout.split('\n').filter((n) => n && !n.endsWith('.meta') && !n.endsWith('.lease'));
    t.same(vols, [disk.volumeId], 'the image holds that one volume');
  });
});
