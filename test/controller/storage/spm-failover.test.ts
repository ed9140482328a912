// Issue 11, must-show 2, on two lab hosts (their own network, libvirtd and sanlock daemon; a
// shared LUN): both agents enrolled with one-time tokens (`hostvisor enroll`, run inside each
// host, to the controller on the lab network); a cluster with a block storage domain on the
// shared LUN; both hosts connected to the pool and exactly one SPM (the agents' own lease
// reports agree); a thin disk made and removed by the SPM through jobs (its LV on the LUN, then
// gone); then the SPM host's agent is killed (kill -9) and the other host becomes SPM once the
// lease frees: the seconds are printed. The killed agent, started again, is connected to the
// pool again by the controller and stays a plain host: still exactly one SPM. Last, the new
// SPM's whole host is cut off (every process in it killed, its sanlock too, so its lease stays
// on disk): the surviving host becomes SPM once the old one is NonResponsive and the lease
// frees, without fencing; those seconds are printed too.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labUp, labDown, LAB_MAIN_ADDRESS, assertLabRoute, type LabHost } from '../../lab/multihost/lab.js';
import { repoRoot } from '../../lab/guest.js';
import { bounded, scratchDir, testConfig } from '../../agent/harness.js';
import { spawnLabAgent, type LabAgent } from '../../agent/storage/lab-agents.js';
import { storageLab, type StorageLab } from '../../agent/storage/storage-lab.js';
import { THINP_LAB_SETTINGS } from '../../agent/storage/two-host-pool.js';
import { sanlockUnavailable } from '../../agent/storage/sanlock-daemon.js';
import { Lvm } from '../../../agent/storage/lvm.js';
import type { Config } from '../../../agent/config/settings.js';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { inProcessController, type InProcessController } from './lab-controller.js';
import { jobEnd, jobSummary, until } from './wait.js';

const echo = !!process.env['HV_TEST_LOG'];
const GiB = 1024 ** 3;
const HOSTVISOR_JS = join(repoRoot(), 'dist', 'agent', 'cli', 'hostvisor.js');
const why = await sanlockUnavailable();
// The power cut waits for the old SPM to be NonResponsive AND for its lease to free. The lease frees
// sanlock's host_dead_seconds (8 x io_timeout + 60 s = 68 s with the lab's 1 s) after its last renewal,
// whatever the controller does; the default grace (60 s + 20 s for the SPM) would add ~12 s on top.
// A shorter grace (still far longer than the kill -9 case's agent restart, so that host never turns
// NonResponsive) makes the host NonResponsive first, and a short retry finds the lease free soon after.
const settings = resolveDecisionSettings({ nonResponsiveGraceMs: 30_000, spmExtraGraceMs: 5_000, spmRetryIntervalMs: 2_000 });

t.test('two enrolled lab hosts, a block domain on the shared LUN: one SPM, and the other takes over when its agent is killed', { skip: why ?? false }, async (t) => {
  const undo: Array<{ what: string; ms: number; fn: () => Promise<unknown> }> = [];
  t.teardown(async () => { for (const u of undo.splice(0).reverse()) await bounded(u.what, u.fn(), u.ms); });
  undo.push({ what: 'labDown', ms: 120_000, fn: () => labDown() });
  const hosts = await labUp(2);
  const lab: StorageLab = await storageLab('ctl-spm');
  undo.push({ what: 'storage lab cleanup', ms: 120_000, fn: () => { lab.driver('hostA'); lab.driver('hostB'); return lab.cleanup(); } });
  const pv = await lab.makePv(8);

  const ctl: InProcessController = await inProcessController({ listen: LAB_MAIN_ADDRESS, settings, echo });
  undo.push({ what: 'controller close', ms: 60_000, fn: () => ctl.close() });
  const agents: LabAgent[] = [];
  undo.push({ what: 'agents stop', ms: 90_000, fn: async () => { for (const a of agents) await a.stop(30_000); } });

  // Each host enrolls itself with a token, then its agent starts on the pki.dir enroll wrote.
  const enrolled = async (host: LabHost, name: 'hostA' | 'hostB'): Promise<{ hostId: string; config: Config }> => {
    await assertLabRoute(host.address);
    const config = await testConfig({
      'rpc.host': '0.0.0.0', 'rpc.port': 54321, 'pki.dir': scratchDir('hv-enrolled-'),
      'storage.activation': 'loop', 'storage.loopDataDir': lab.settings().loopDataDir, 'storage.loopLinkDir': lab.settings(name).loopLinkDir,
      ...THINP_LAB_SETTINGS,
    });
    const file = join(scratchDir('hv-enroll-cfg-'), 'agent.toml');
    writeFileSync(file, Object.entries(config).map(([k, v]) => `"${k}" = ${JSON.stringify(v)}`).join('\n') + '\n');
    const tok = await ctl.call('POST', '/api/v1/hosts', { body: { name: host.name, address: host.address, port: 54321 } });
    if (tok.status !== 201) throw new Error(`POST /hosts: ${tok.status} ${tok.text}`);
    const r = await host.exec([process.execPath, HOSTVISOR_JS, 'enroll', '--controller', ctl.url, '--token', tok.body.token, '--name', host.name, '--config', file], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`hostvisor enroll in ${host.name} exited ${r.code}: ${r.stderr}`);
    return { hostId: (JSON.parse(r.stdout) as { hostId: string }).hostId, config };
  };
  const [ea, eb] = [await enrolled(hosts[0]!, 'hostA'), await enrolled(hosts[1]!, 'hostB')];
  t.pass(`both hosts enrolled with tokens by \`hostvisor enroll\` inside them (${ea.hostId}, ${eb.hostId})`);
  const ids = [ea.hostId, eb.hostId];
  const configs = [ea.config, eb.config];
  agents.push(...await Promise.all([spawnLabAgent(hosts[0]!, ea.config, { echo }), spawnLabAgent(hosts[1]!, eb.config, { echo })]));
  for (const id of ids) await until(`host ${id} Up`, () => ctl.call('GET', `/api/v1/hosts/${id}`), (a) => a.body?.status === 'Up', 60_000);
  t.pass('the controller reaches both agents with its client certificate: both hosts Up');

  const tSd = performance.now();
  const made = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'san', spec: { type: 'block', devices: [pv] } } });
  t.equal(made.status, 202, 'a block storage domain on the shared LUN, accepted as a job');
  const sdJob = await jobEnd(ctl.call, made.body.id, 240_000);
  t.equal(sdJob.state, 'succeeded', `storage-domain.create: ${jobSummary(sdJob)}`);
  const sdId: string = made.body.targetId;
  const domain = await until('both hosts see the domain', () => ctl.call('GET', `/api/v1/storage-domains/${sdId}`),
    (a) => ids.every((id) => a.body?.hosts?.[id] === 'active'), 120_000, 500);
  t.comment(`both hosts connected ${((performance.now() - tSd) / 1000).toFixed(1)} s after the request; domain ${domain.body.sizeBytes} bytes, ${domain.body.freeBytes} free`);
  t.same([domain.body.master, domain.body.status], [true, 'active'], 'the pool master, active; GET /storage-domains/{id}: active on both hosts');

  /** What each agent itself says of the lease, through the controller's links. */
  const leaseViews = async () => {
    const poolId = (await ctl.store.clusters.get('default')).poolId!;
    return Promise.all(ids.map((id) => ctl.runtime.links.call(id, 'StoragePool.getSpmStatus', { storagepoolID: poolId }).catch((e: unknown) => ({ spmStatus: `error ${String(e)}`, spmId: -1, spmLver: -1 }))));
  };
  const exactlyOne = async (t: Test, spmId: string) => {
    const hostsView = (await ctl.call('GET', '/api/v1/hosts')).body as Array<{ id: string; spm: boolean; poolHostId: number }>;
    t.same(hostsView.filter((h) => h.spm).map((h) => h.id), [spmId], 'GET /hosts: exactly one host is SPM');
    const views = await leaseViews();
    const spmNo = hostsView.find((h) => h.id === spmId)!.poolHostId;
    t.same(views.map((v) => v.spmStatus).sort(), ['Free', 'SPM'], `the agents agree: one says SPM, the other Free (${views.map((v) => `${v.spmStatus}/${v.spmId}/${v.spmLver}`).join(', ')})`);
    t.ok(views.every((v) => v.spmId === spmNo), `both read the lease held by pool host ${spmNo}`);
    t.ok(ctl.runtime.hostContext.isSpm(spmId) && ids.filter((id) => id !== spmId).every((id) => !ctl.runtime.hostContext.isSpm(id)), 'the health monitor is told which host is SPM (its longer grace)');
  };
  const spm0 = await until('an SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => ids.includes(a.body?.hostId), 120_000);
  const spmId: string = spm0.body.hostId;
  const otherId = ids.find((id) => id !== spmId)!;
  t.comment(`SPM: ${spm0.body.hostName} (lver ${spm0.body.lver})`);
  await exactlyOne(t, spmId);

  await t.test('a thin disk: its COW volume is made on the LUN by the SPM, then removed', async (t) => {
    const d = await ctl.call('POST', '/api/v1/disks', { body: { name: 'thin-san', storageDomainId: sdId, sizeBytes: 2 * GiB, provisioning: 'thin' } });
    const job = await jobEnd(ctl.call, d.body.id, 180_000);
    t.equal(job.state, 'succeeded', `disk.create: ${jobSummary(job)}`);
    t.ok(job.steps.some((s: { name: string; hostId?: string }) => s.name === 'Volume.create' && s.hostId === spmId), 'Volume.create ran on the SPM');
    const disk = (await ctl.call('GET', `/api/v1/disks/${d.body.targetId}`)).body;
    t.equal(disk.status, 'ready', 'the disk is ready');
    const lvm = new Lvm([pv], { activation: false, timeoutMs: 30_000 });
    const lvs = await lvm.lvs(sdId, disk.volumeId);
    t.equal(lvs.length, 1, 'its LV is in the domain\'s VG on the LUN');
    t.ok(lvs[0]!.tags.includes(`IU_${disk.imageId}`) && lvs[0]!.size < 2 * GiB, `tagged with its image, thin: ${lvs[0]!.size / 2 ** 20} MiB for 2 GiB`);
    const del = await ctl.call('DELETE', `/api/v1/disks/${disk.id}`);
    const dj = await jobEnd(ctl.call, del.body.id, 180_000);
    t.equal(dj.state, 'succeeded', `disk.delete: ${jobSummary(dj)}`);
    t.same(await lvm.lvs(sdId, disk.volumeId), [], 'the LV is gone');
    t.equal((await ctl.call('GET', `/api/v1/disks/${disk.id}`)).status, 404, 'and the disk');
  });

  await t.test('kill -9 of the SPM host\'s agent: the other host becomes SPM once the lease frees', async (t) => {
    const i = ids.indexOf(spmId);
    const before = (await ctl.call('GET', '/api/v1/clusters/default/spm')).body;
    const seqBefore = await ctl.store.eventLog.latestSeq();
    await agents[i]!.kill();
    const tKill = performance.now();
    const after = await until('the other host is SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => a.body?.hostId === otherId, 300_000, 200);
    const secs = (performance.now() - tKill) / 1000;
    t.comment(`SPM FAILOVER: ${after.body.hostName} is SPM (lver ${after.body.lver}, was ${before.lver}) ${secs.toFixed(1)} s after the SPM agent was killed`);
    t.ok(after.body.lver > before.lver, `a new lease version (${before.lver} -> ${after.body.lver})`);
    const page = (await ctl.call('GET', `/api/v1/events?since=${seqBefore}&limit=1000`)).body as { events: Array<{ kind: string; message: string }> };
    const spmEvents = page.events.filter((e) => e.kind.startsWith('spm.'));
    t.ok(spmEvents.some((e) => e.kind === 'spm.elected' && e.message.includes(otherId)), `the election is an event: ${spmEvents.slice(-4).map((e) => `${e.kind}: ${e.message}`).join(' | ')}`);
    const views = await leaseViews();
    t.equal(views[1 - i]!.spmStatus, 'SPM', 'the other agent says it holds the lease');

    // The killed agent comes back: the controller connects it to the pool again; it stays a plain host.
    agents[i] = await spawnLabAgent(hosts[i]!, configs[i]!, { echo });
    await until('the restarted host sees the domain again', () => ctl.call('GET', `/api/v1/storage-domains/${sdId}`), (a) => a.body?.hosts?.[spmId] === 'active', 120_000, 500);
    t.pass('the restarted agent was connected to the pool again by the controller (the domain active on it)');
    await until('the restarted host reads the lease', leaseViews, (v) => v[i]!.spmStatus === 'Free', 30_000, 500);
    await exactlyOne(t, otherId);
  });

  await t.test('power cut of the SPM host (its sanlock too; no fencing): the other host becomes SPM once the host is NonResponsive and the lease frees', async (t) => {
    const j = ids.indexOf(otherId);
    const survivor = ids[1 - j]!;
    const before = (await ctl.call('GET', '/api/v1/clusters/default/spm')).body;
    const seqBefore = await ctl.store.eventLog.latestSeq();
    await labDown([hosts[j]!.index], { kill: true });
    const tCut = performance.now();
    const cutAt = Date.now();
    const after = await until('the surviving host is SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => a.body?.hostId === survivor, 400_000, 500);
    const secs = (performance.now() - tCut) / 1000;
    const page = (await ctl.call('GET', `/api/v1/events?since=${seqBefore}&limit=1000`)).body as { events: Array<{ kind: string; message: string; time: number; details: Record<string, unknown> }> };
    const at = (pred: (e: { kind: string; details: Record<string, unknown> }) => boolean) => page.events.find(pred)?.time;
    const nonResponsive = at((e) => e.kind === 'host.status' && e.details['to'] === 'NonResponsive' && e.details['hostId'] === otherId);
    const failedStarts = page.events.filter((e) => e.kind === 'spm.start-failed').length;
    t.comment(`SPM FAILOVER after a power cut: ${after.body.hostName} is SPM (lver ${before.lver} -> ${after.body.lver}) ${secs.toFixed(1)} s after the cut; `
      + `the old SPM NonResponsive ${nonResponsive ? `${((nonResponsive - cutAt) / 1000).toFixed(1)} s after the cut` : 'not seen'}; ${failedStarts} spmStart(s) refused while the lease was held`);
    t.ok(after.body.lver > before.lver, 'a new lease version');
    t.ok(nonResponsive !== undefined, 'the old SPM host turned NonResponsive first (its grace, not a guess)');
    const views = await Promise.all([survivor].map((id) => ctl.runtime.links.call(id, 'StoragePool.getSpmStatus', { storagepoolID: after.body.poolId })));
    t.equal(views[0]!.spmStatus, 'SPM', 'the surviving agent says it holds the lease');
  });
});
