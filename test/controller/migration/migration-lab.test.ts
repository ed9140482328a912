// Issue 12, must-shows 1 and 7, on two multi-host lab hosts (each its own libvirtd with QEMU/TCG
// and its own sanlock), agents enrolled in a real controller (in this process, every part
// installed as main.ts does, REST over mTLS), a block storage domain on the shared LUN (so one
// host is the SPM and both are connected to the pool), guests the tiny lab guest.
//   1: a guest dirtying memory at a set rate and ticking every 100 ms on its serial console is
//      migrated A -> B by POST /vms/{id}/migrate; its console keeps counting on B with no boot
//      marker, the job reports libvirt's downtime, the source was Down with "migration succeeded".
//   7: the SPM host S runs 3 VMs: a VM pinned to S makes POST /hosts/{S}/maintenance answer 409
//      naming it; once it is stopped, maintenance hands the SPM role to the other host first (the
//      job's steps and the SPM events in that order), moves all 3 VMs there, and S is Maintenance,
//      disconnected from the pool (its agent answers 309 to StoragePool.getInfo). Then a VM whose migration
//      B's before_vm_migrate_destination hook refuses (custom property refuse_migration=yes: an
//      honest "the destination lacks what the VM needs") makes A MaintenanceFailed naming it after
//      the bounded tries, and cancel returns it to Up.
import t from 'tap';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { bounded, scratchDir } from '../../agent/harness.js';
import { addHook } from '../../agent/hooks/hook-fixtures.js';
import type { LabAgent } from '../../agent/storage/lab-agents.js';
import { GUEST_DIR } from '../../lab/guest.js';
import { labDown, labUp, LAB_MAIN_ADDRESS, type LabHost } from '../../lab/multihost/lab.js';
import { dirtyRateIn, dirtyTickerScript, labShWord, ticksIn } from '../../lab/workloads.js';
import { inProcessController } from '../storage/lab-controller.js';
import { enrollLabAgents } from '../storage/lab-enrolment.js';
import { jobEnd, jobSummary, until } from '../storage/wait.js';
import { storageLab } from '../../agent/storage/storage-lab.js';
import { THINP_LAB_SETTINGS } from '../../agent/storage/two-host-pool.js';
import { sanlockUnavailable } from '../../agent/storage/sanlock-daemon.js';

const echo = !!process.env['HV_TEST_LOG'];
const PORT = 54321;
const SERIAL_DIR = '/var/log/libvirt/qemu';
const DIRTY_MIBS = 8;
t.setTimeout(900_000);

const why = await sanlockUnavailable();

t.test('migration and maintenance through the controller on two lab hosts', { skip: why ?? false }, async (t) => {
  const undo: Array<{ what: string; ms: number; fn: () => Promise<unknown> }> = [];
  t.teardown(async () => { for (const u of undo.splice(0).reverse()) await bounded(u.what, u.fn(), u.ms); });
  undo.push({ what: 'labDown', ms: 120_000, fn: () => labDown() });
  const labs = await labUp(2);
  const settings = resolveDecisionSettings({ pollIntervalMs: 1_000, pollTimeoutMs: 1_000, vmListIntervalMs: 2_000, migrationStatusPollMs: 500, maintenanceMigrationAttempts: 2 });
  const ctl = await inProcessController({ listen: LAB_MAIN_ADDRESS, settings, echo, allParts: true });
  undo.push({ what: 'controller close', ms: 60_000, fn: () => ctl.close() });
  const lab = await storageLab('ctl-mig');
  undo.push({ what: 'storage lab cleanup', ms: 120_000, fn: () => { lab.driver('hostA'); lab.driver('hostB'); return lab.cleanup(); } });
  const pv = await lab.makePv(8);
  const agents: LabAgent[] = [];
  undo.push({ what: 'agents stop', ms: 90_000, fn: async () => { for (const a of agents) await a.stop(30_000); } });
  const hooks = scratchDir('hv-mig-hooks-');
  addHook(hooks, 'before_vm_migrate_destination', '50_refuse', '[ "$refuse_migration" = yes ] && { echo "this host does not take VMs marked refuse_migration" >&2; exit 2; }\nexit 0');
  const ids = await enrollLabAgents({
    url: ctl.url, call: ctl.call, labs, agents, port: PORT, pkiPrefix: 'hv-mig', serialDir: SERIAL_DIR, echo,
    config: (i, pkiDir) => ({
      ...THINP_LAB_SETTINGS, 'storage.activation': 'loop', 'storage.loopDataDir': lab.settings().loopDataDir, 'storage.loopLinkDir': lab.settings(i === 0 ? 'hostA' : 'hostB').loopLinkDir,
      'rpc.host': '0.0.0.0', 'rpc.port': PORT, 'pki.dir': pkiDir, 'virt.domainType': 'qemu', 'hooks.dir': hooks,
      'migration.libvirtTransport': 'tcp', 'migration.monitorIntervalMs': 250, 'migration.retryIntervalMs': 1_000,
    }),
  });
  const [A, B] = ids as [string, string];
  const [labA, labB] = labs as [LabHost, LabHost];
  for (const id of ids) await until(`host ${id} Up`, () => ctl.call('GET', `/api/v1/hosts/${id}`), (a) => a.body?.status === 'Up', 60_000);
  t.pass('both lab hosts enrolled and Up');
  const made = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'san', spec: { type: 'block', devices: [pv] } } });
  const sdJob = await jobEnd(ctl.call, made.body.id, 240_000);
  t.equal(sdJob.state, 'succeeded', `a block storage domain on the shared LUN: ${jobSummary(sdJob)}`);
  const sdId: string = made.body.targetId;
  await until('both hosts see the domain', () => ctl.call('GET', `/api/v1/storage-domains/${sdId}`), (a) => ids.every((id) => a.body?.hosts?.[id] === 'active'), 120_000, 500);
  const spm0 = await until('an SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => ids.includes(a.body?.hostId), 120_000);
  t.pass(`both hosts connected to the pool; SPM ${spm0.body.hostName}`);

  const serialOn = (h: LabHost, name: string): string => join(h.dir, 'log', 'libvirt', 'qemu', `${name}.serial`);
  const serial = (h: LabHost, name: string): string => (existsSync(serialOn(h, name)) ? readFileSync(serialOn(h, name), 'latin1') : '');
  const define = async (name: string, o: { script?: string; extra?: Record<string, unknown>; props?: Record<string, string> } = {}): Promise<string> => {
    const spec: Record<string, unknown> = {
      memoryMiB: 128, vcpus: 1, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
      cmdline: ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', labShWord(o.script ?? dirtyTickerScript({ dirtyMiBs: 0 }))].join(' '),
      serialLog: join(SERIAL_DIR, `${name}.serial`), ...(o.props && { customProperties: o.props }),
    };
    const r = await ctl.call('POST', '/api/v1/vms', { body: { name, spec, ...o.extra } });
    if (r.status !== 201) throw new Error(`define ${name}: ${r.status} ${r.text}`);
    return r.body.id;
  };
  const startOn = async (id: string, host: string): Promise<void> => {
    const r = await ctl.call('POST', `/api/v1/vms/${id}/start`, { body: { host } });
    if (r.status !== 202) throw new Error(`start on ${host}: ${r.status} ${r.text}`);
    const j = await jobEnd(ctl.call, r.body.id, 120_000);
    if (j.state !== 'succeeded') throw new Error(`start: ${jobSummary(j)}`);
  };
  const vmOf = async (id: string) => (await ctl.call('GET', `/api/v1/vms/${id}`)).body;

  await t.test('must-show 1: a guest dirtying memory migrates A -> B through the REST API and keeps counting with no restart', async (t) => {
    const id = await define('mig-load', { script: dirtyTickerScript({ dirtyMiBs: DIRTY_MIBS, regionMiB: 32 }) });
    await startOn(id, labA.name);
    await until('the guest ticks and dirties', async () => serial(labA, 'mig-load'), (s) => /LAB-DIRTY mib=\d+[\s\S]*LAB-DIRTY mib=\d+[\s\S]*LAB-DIRTY mib=/.test(s), 180_000, 500);
    const rate = dirtyRateIn(serial(labA, 'mig-load'));
    const t0 = performance.now();
    const r = await ctl.call('POST', `/api/v1/vms/${id}/migrate`, { body: {} });
    t.same([r.status, r.body.kind, r.body.params.placement?.hostId], [202, 'vm.migrate', B], '202, a vm.migrate job, B chosen and reserved by the scheduler');
    const seen: number[] = [];
    const job = await until('the job ends', async () => {
      const j = (await ctl.call('GET', `/api/v1/jobs/${r.body.id}`)).body;
      if (seen.at(-1) !== j.progress) seen.push(j.progress);
      return j;
    }, (j) => ['succeeded', 'failed'].includes(j.state), 300_000, 200);
    const ms = performance.now() - t0;
    t.equal(job.state, 'succeeded', `migrated in ${(ms / 1000).toFixed(1)} s: ${jobSummary(job)}`);
    const out = job.params.memo?.outcome;
    t.comment(`MIGRATION: dirty rate ${rate?.toFixed(1) ?? '?'} MiB/s, downtime ${out?.downtimeMs} ms (libvirt), agent total ${out?.totalMs} ms, job progress seen ${seen.join(',')}`);
    t.ok(typeof out?.downtimeMs === 'number' && out.downtimeMs >= 0, `the job reports the downtime: ${out?.downtimeMs} ms`);
    t.same([out?.sourceStatus, out?.sourceExitMessage], ['Down', 'migration succeeded'], 'the source was Down with "migration succeeded" (then destroyed)');
    t.ok(seen.every((p, i) => i === 0 || p >= seen[i - 1]!), 'the job\'s progress never went down');
    const vm = await vmOf(id);
    t.same([vm.status, vm.hostId], ['Up', B], 'GET /vms/{id}: Up on B');
    const lastA = Math.max(...ticksIn(serial(labA, 'mig-load')));
    await new Promise((res) => setTimeout(res, 2_000));
    const b1 = ticksIn(serial(labB, 'mig-load'));
    await new Promise((res) => setTimeout(res, 1_500));
    const b2 = ticksIn(serial(labB, 'mig-load'));
    t.ok(b1.length > 0 && b1[0]! > lastA - 5 && b1[0]! <= lastA + 50, `the counter continues on B (last on A ${lastA}, first on B ${b1[0]})`);
    t.ok(b2.at(-1)! > b1.at(-1)!, `and keeps counting (${b1.at(-1)} -> ${b2.at(-1)})`);
    t.notMatch(serial(labB, 'mig-load'), /LAB-BOOT-OK/, 'no boot marker on B: the guest did not restart');
    const s = await ctl.call('POST', `/api/v1/vms/${id}/stop`);
    await jobEnd(ctl.call, s.body.id, 60_000);
  });

  await t.test('must-show 7: the SPM host with 3 VMs: a pinned VM answers 409 naming it; the SPM moves first, the 3 VMs run on the other host, the host is Maintenance with the pool disconnected; an unmovable VM ends MaintenanceFailed and cancel returns it to Up', async (t) => {
    const S: string = (await ctl.call('GET', '/api/v1/clusters/default/spm')).body.hostId;
    const O = S === A ? B : A;
    const labS = S === A ? labA : labB;
    const poolId: string = (await ctl.store.clusters.get('default')).poolId!;
    const seq0 = await ctl.store.eventLog.latestSeq();
    const vms = [await define('mt-1', { extra: { priority: 1 } }), await define('mt-2', { extra: { priority: 9 } }), await define('mt-3', { extra: { priority: 5 } })];
    const pinned = await define('mt-pinned', { extra: { pinnedHost: labS.name } });
    for (const id of [...vms, pinned]) await startOn(id, labS.name);
    const r = await ctl.call('POST', `/api/v1/hosts/${S}/maintenance`, { body: {} });
    t.same([r.status, r.body.details?.blockers?.map((b: { vmId?: string }) => b.vmId)], [409, [pinned]], `409 naming the pinned VM: ${r.body.message}`);
    const st = await ctl.call('POST', `/api/v1/vms/${pinned}/stop`);
    await jobEnd(ctl.call, st.body.id, 60_000);

    const m = await ctl.call('POST', `/api/v1/hosts/${S}/maintenance`, { body: { reason: 'lab' } });
    t.equal(m.status, 202, 'maintenance accepted');
    const job = await jobEnd(ctl.call, m.body.id, 400_000);
    t.equal(job.state, 'succeeded', `maintenance: ${jobSummary(job)}`);
    const order = job.steps.filter((s: { name: string }) => s.name.startsWith('migrate VM mt-')).map((s: { name: string }) => s.name.split(' ')[2]);
    t.same(order.slice(0, 2).sort(), ['mt-2', 'mt-3'], `the two highest priorities went first (${order.join(', ')})`);
    for (const id of vms) t.same([(await vmOf(id)).status, (await vmOf(id)).hostId], ['Up', O], `VM ${id} Up on the other host`);
    t.equal((await ctl.call('GET', `/api/v1/hosts/${S}`)).body.status, 'Maintenance', 'the host is Maintenance');
    const names = job.steps.map((s: { name: string }) => s.name);
    t.ok(names.indexOf('hand the SPM role over') >= 0 && names.indexOf('hand the SPM role over') < names.findIndex((n: string) => n.startsWith('migrate VM')), `the SPM role moved before any VM: ${names.join(', ')}`);
    t.equal((await ctl.call('GET', '/api/v1/clusters/default/spm')).body.hostId, O, 'the other host is the SPM');
    const evs = ((await ctl.call('GET', `/api/v1/events?since=${seq0}&limit=1000`)).body.events as Array<{ kind: string; message: string; createdAt?: number; seq?: number }>);
    const spmElected = evs.findIndex((e) => e.kind === 'spm.elected' || (e.kind === 'spm.contend' && e.message.includes(O)));
    const firstMigrated = evs.findIndex((e) => e.kind === 'vm.migrated');
    t.ok(spmElected >= 0 && spmElected < firstMigrated, `the SPM events come before the first VM migrated (${evs.filter((e) => e.kind.startsWith('spm.') || e.kind === 'vm.migrated').map((e) => e.kind).join(', ')})`);
    t.ok(job.steps.some((s: { name: string; state: string }) => s.name === 'disconnect the storage pool' && s.state === 'succeeded'), 'the job saw the pool disconnected');
    const info = await ctl.runtime.links.call(S, 'StoragePool.getInfo', { storagepoolID: poolId }).then(() => 'connected', (e: { code?: number }) => `error ${e.code}`);
    t.equal(info, 'error 309', 'the agent on the host in Maintenance is not connected to the pool (309), and stays connected to the controller');
    t.match((await ctl.call('GET', `/api/v1/storage-domains/${sdId}`)).body.hosts[S], /not connected: .*Maintenance/, 'GET /storage-domains: not connected on that host, because it is in Maintenance');
    t.equal((await ctl.call('POST', `/api/v1/hosts/${S}/activate`, { body: {} })).status, 200, 'activate');
    await until('the host Up', () => ctl.call('GET', `/api/v1/hosts/${S}`), (a) => a.body?.status === 'Up', 60_000);
    await until('the host back in the pool', () => ctl.call('GET', `/api/v1/storage-domains/${sdId}`), (a) => a.body?.hosts?.[S] === 'active', 120_000, 500);
    t.pass('activated: Up and connected to the pool again');

    const stuck = await define('mt-stuck', { props: { refuse_migration: 'yes' } });
    await startOn(stuck, labS.name);
    const f = await ctl.call('POST', `/api/v1/hosts/${S}/maintenance`, { body: {} });
    t.equal(f.status, 202, 'maintenance accepted (the other host has room: the refusal is only known by trying)');
    const fj = await jobEnd(ctl.call, f.body.id, 300_000);
    t.same([fj.state, fj.error?.code], ['failed', 'MaintenanceFailed'], `the job: ${fj.error?.message}`);
    const h = (await ctl.call('GET', `/api/v1/hosts/${S}`)).body;
    t.equal(h.status, 'MaintenanceFailed', 'the host is MaintenanceFailed');
    t.match(h.reasons.join(' | '), /VM mt-stuck could not be migrated after 2 tries: .*migrationCreate/, `with its reason: ${h.reasons.join(' | ')}`);
    t.equal((await vmOf(stuck)).hostId, S, 'the VM still runs on the host');
    t.equal((await ctl.call('POST', `/api/v1/hosts/${S}/maintenance/cancel`, { body: {} })).status, 200, 'cancel');
    await until('the host Up', () => ctl.call('GET', `/api/v1/hosts/${S}`), (a) => a.body?.status === 'Up', 60_000);
    t.pass('cancel returned the host to Up');
    for (const id of [...vms, stuck]) { const s = await ctl.call('POST', `/api/v1/vms/${id}/stop`); await jobEnd(ctl.call, s.body.id, 60_000); }
  });
});
