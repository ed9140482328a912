// Issue 13's hibernate through the controller, on two multi-host lab hosts (each its own
// libvirtd with QEMU/TCG and its own sanlock), agents enrolled in a real controller (in this
// process, every part installed as main.ts does, REST over mTLS), a block storage domain on the
// shared LUN. A guest ticking on its serial console is suspended on host A by POST
// /vms/{id}/suspend (its state on a RAW volume the SPM made), started again on host B by POST
// /vms/{id}/start, and goes on counting from where it stopped with no boot; the state volume is
// gone afterwards. A hibernate a hook refuses leaves the VM running and its unused volume deleted.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { bounded, scratchDir } from '../../agent/harness.js';
import { addHook } from '../../agent/hooks/hook-fixtures.js';
import type { LabAgent } from '../../agent/storage/lab-agents.js';
import { GUEST_DIR } from '../../lab/guest.js';
import { labDown, labUp, LAB_MAIN_ADDRESS, type LabHost } from '../../lab/multihost/lab.js';
import { dirtyTickerScript, labShWord, ticksIn } from '../../lab/workloads.js';
import { inProcessController } from '../storage/lab-controller.js';
import { enrollLabAgents } from '../storage/lab-enrolment.js';
import { jobEnd, jobSummary, until } from '../storage/wait.js';
import { storageLab } from '../../agent/storage/storage-lab.js';
import { THINP_LAB_SETTINGS } from '../../agent/storage/two-host-pool.js';
import { sanlockUnavailable } from '../../agent/storage/sanlock-daemon.js';

const echo = !!process.env['HV_TEST_LOG'];
const PORT = 54321;
const SERIAL_DIR = '/var/log/libvirt/qemu';
t.setTimeout(900_000);

const why = await sanlockUnavailable();

t.test('suspend and resume through the controller on two lab hosts', { skip: why ?? false }, async (t) => {
  const undo: Array<{ what: string; ms: number; fn: () => Promise<unknown> }> = [];
  t.teardown(async () => { for (const u of undo.splice(0).reverse()) await bounded(u.what, u.fn(), u.ms); });
  undo.push({ what: 'labDown', ms: 120_000, fn: () => labDown() });
  const labs = await labUp(2);
  const settings = resolveDecisionSettings({ pollIntervalMs: 1_000, pollTimeoutMs: 1_000, vmListIntervalMs: 2_000 });
  const ctl = await inProcessController({ listen: LAB_MAIN_ADDRESS, settings, echo, allParts: true });
  undo.push({ what: 'controller close', ms: 60_000, fn: () => ctl.close() });
  const lab = await storageLab('ctl-hib');
  undo.push({ what: 'storage lab cleanup', ms: 120_000, fn: () => { lab.driver('hostA'); lab.driver('hostB'); return lab.cleanup(); } });
  const pv = await lab.makePv(4);
  const agents: LabAgent[] = [];
  undo.push({ what: 'agents stop', ms: 90_000, fn: async () => { for (const a of agents) await a.stop(30_000); } });
  const hooks = scratchDir('hv-hib-hooks-');
  addHook(hooks, 'before_vm_hibernate', '50_refuse', '[ "$refuse_hibernate" = yes ] && { echo "this VM is not to be hibernated" >&2; exit 2; }\nexit 0');
  const ids = await enrollLabAgents({
    url: ctl.url, call: ctl.call, labs, agents, port: PORT, pkiPrefix: 'hv-hib', serialDir: SERIAL_DIR, echo,
    config: (i, pkiDir) => ({
      ...THINP_LAB_SETTINGS, 'storage.activation': 'loop', 'storage.loopDataDir': lab.settings().loopDataDir, 'storage.loopLinkDir': lab.settings(i === 0 ? 'hostA' : 'hostB').loopLinkDir,
      'rpc.host': '0.0.0.0', 'rpc.port': PORT, 'pki.dir': pkiDir, 'virt.domainType': 'qemu', 'hooks.dir': hooks,
    }),
  });
  const [A, B] = ids as [string, string];
  const [labA, labB] = labs as [LabHost, LabHost];
  for (const id of ids) await until(`host ${id} Up`, () => ctl.call('GET', `/api/v1/hosts/${id}`), (a) => a.body?.status === 'Up', 60_000);
  const made = await ctl.call('POST', '/api/v1/clusters/default/storage-domains', { body: { name: 'san', spec: { type: 'block', devices: [pv] } } });
  const sdJob = await jobEnd(ctl.call, made.body.id, 240_000);
  t.equal(sdJob.state, 'succeeded', `a block storage domain on the shared LUN: ${jobSummary(sdJob)}`);
  const sdId: string = made.body.targetId;
  await until('both hosts see the domain', () => ctl.call('GET', `/api/v1/storage-domains/${sdId}`), (a) => ids.every((id) => a.body?.hosts?.[id] === 'active'), 120_000, 500);
  await until('an SPM', () => ctl.call('GET', '/api/v1/clusters/default/spm'), (a) => ids.includes(a.body?.hostId), 120_000);

  const serialOn = (h: LabHost, name: string): string => join(h.dir, 'log', 'libvirt', 'qemu', `${name}.serial`);
  const serial = (h: LabHost, name: string): string => (existsSync(serialOn(h, name)) ? readFileSync(serialOn(h, name), 'latin1') : '');
  const define = async (name: string, props?: Record<string, string>): Promise<string> => {
    const spec: Record<string, unknown> = {
      memoryMiB: 128, vcpus: 1, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
      cmdline: ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', labShWord(dirtyTickerScript({ dirtyMiBs: 0 }))].join(' '),
      serialLog: join(SERIAL_DIR, `${name}.serial`), ...(props && { customProperties: props }),
    };
    const r = await ctl.call('POST', '/api/v1/vms', { body: { name, spec } });
    if (r.status !== 201) throw new Error(`define ${name}: ${r.status} ${r.text}`);
    return r.body.id;
  };
  const startOn = async (id: string, host?: string): Promise<Record<string, any>> => { // eslint-disable-line @typescript-eslint/no-explicit-any -- a job as JSON
    const r = await ctl.call('POST', `/api/v1/vms/${id}/start`, { body: host ? { host } : {} });
    if (r.status !== 202) throw new Error(`start: ${r.status} ${r.text}`);
    return jobEnd(ctl.call, r.body.id, 180_000);
  };
  const vmOf = async (id: string) => (await ctl.call('GET', `/api/v1/vms/${id}`)).body;
  const volumeOnStorage = async (v: { domainId: string; imageId: string; volumeId: string }): Promise<string> => {
    const spm: string = (await ctl.call('GET', '/api/v1/clusters/default/spm')).body.hostId;
    return ctl.runtime.links.call(spm, 'Volume.getInfo', { storagedomainID: v.domainId, imageID: v.imageId, volumeID: v.volumeId })
      .then((i) => `${i.format} ${i.legality}`, (e: { code?: number }) => `error ${e.code}`);
  };

  await t.test('suspended on A, started again (on B): the guest goes on counting; the state volume is gone', async (t) => {
    const name = 'hib-ctl';
    const id = await define(name);
    const s0 = await startOn(id, labA.name);
    t.equal(s0.state, 'succeeded', `started on A: ${jobSummary(s0)}`);
    await until('the guest ticks on A', async () => serial(labA, name), (s) => ticksIn(s).some((n) => n >= 10), 180_000, 500);
    t.equal((await ctl.call('DELETE', `/api/v1/vms/${id}`)).status, 409, 'a running VM is not deleted');

    const r = await ctl.call('POST', `/api/v1/vms/${id}/suspend`);
    t.same([r.status, r.body.kind], [202, 'vm.suspend'], '202, a vm.suspend job');
    const again = await ctl.call('POST', `/api/v1/vms/${id}/suspend`);
    t.same([again.status, again.body.code], [409, 'VmBusy'], `a second suspend meanwhile: 409 ${again.body.message}`);
    const job = await jobEnd(ctl.call, r.body.id, 300_000);
    t.equal(job.state, 'succeeded', `suspended: ${jobSummary(job)}`);
    const stepNames: string[] = job.steps.map((s: { name: string }) => s.name);
    t.ok(stepNames.indexOf('create the state volume') >= 0 && stepNames.indexOf('create the state volume') < stepNames.indexOf('VM.hibernate'), `the state volume was made (an SPM task) before VM.hibernate: ${stepNames.join(', ')}`);
    const lastA = Math.max(...ticksIn(serial(labA, name)));
    const down = await until('the VM Down', () => vmOf(id), (v) => v.status === 'Down', 30_000);
    t.same([down.status, down.desiredState, down.hostId], ['Down', 'down', null], 'GET /vms/{id}: Down, desired down, on no host');
    const hib = (await ctl.call('GET', `/api/v1/vms/${id}/hibernation`)).body;
    t.same([hib.state, hib.hostId, hib.stateVolume?.domainId], ['suspended', A, sdId], 'GET /vms/{id}/hibernation: suspended on A, its state on the pool\'s domain');
    t.equal(hib.stateVolume.sizeBytes, (Math.ceil(128 * 1.1) + 64) * 1024 * 1024, 'the state volume is the VM\'s memory + 10 % + 64 MiB');
    t.equal(await volumeOnStorage(hib.stateVolume), 'RAW LEGAL', 'the state volume is on storage: RAW, LEGAL');
    t.notOk((await ctl.runtime.links.call(A, 'Host.getVMList', {})).vmList.some((v) => v.vmId === id), 'A no longer has the VM');
    const notUp = await ctl.call('POST', `/api/v1/vms/${id}/suspend`);
    t.same([notUp.status, notUp.body.code], [409, 'VmNotRunning'], 'a suspended VM is not suspended again: 409 VmNotRunning');
    t.equal((await ctl.call('DELETE', `/api/v1/vms/${id}`)).status, 409, 'a suspended VM is not deleted (its state would be lost)');
    await new Promise((res) => setTimeout(res, 1_500));
    t.equal(Math.max(...ticksIn(serial(labA, name))), lastA, `the guest stopped counting at ${lastA}`);

    const s1 = await startOn(id, labB.name);
    t.equal(s1.state, 'succeeded', `started again on B: ${jobSummary(s1)}`);
    const names1: string[] = s1.steps.map((s: { name: string }) => s.name);
    t.ok(names1.includes('VM.create from the saved state') && names1.indexOf('delete the state volume') > names1.indexOf('wait for Up'),
      `VM.create with restoreState, then the state volume deleted once Up: ${names1.join(', ')}`);
    const onB = await until('the guest ticks on B', async () => ticksIn(serial(labB, name)), (n) => n.length >= 3, 60_000, 500);
    t.ok(onB[0]! > lastA && onB[0]! <= lastA + 20, `B's counter goes on from A's ${lastA}: ${onB[0]}..${onB.at(-1)}`);
    t.notMatch(serial(labB, name), /LAB-BOOT-OK/, 'no boot on B: the guest did not restart');
    const vm = await vmOf(id);
    t.same([vm.status, vm.hostId, vm.desiredState], ['Up', B, 'up'], 'GET /vms/{id}: Up on B');
    t.equal((await ctl.call('GET', `/api/v1/vms/${id}/hibernation`)).status, 404, 'no longer suspended');
    t.match(await volumeOnStorage(hib.stateVolume), /^error (201|268)$/, 'the state volume is gone from storage');
    const st = await ctl.call('POST', `/api/v1/vms/${id}/stop`);
    await jobEnd(ctl.call, st.body.id, 60_000);
  });

  await t.test('a hibernate the agent refuses (a before_vm_hibernate hook) leaves the VM running and deletes the unused volume', async (t) => {
    const name = 'hib-refused';
    const id = await define(name, { refuse_hibernate: 'yes' });
    const s0 = await startOn(id, labA.name);
    t.equal(s0.state, 'succeeded', 'started on A');
    const images = async (): Promise<string[]> => {
      const spm: string = (await ctl.call('GET', '/api/v1/clusters/default/spm')).body.hostId;
      return (await ctl.runtime.links.call(spm, 'StorageDomain.getImages', { storagedomainID: sdId })).images.sort();
    };
    const imagesBefore = await images();
    const r = await ctl.call('POST', `/api/v1/vms/${id}/suspend`);
    const job = await jobEnd(ctl.call, r.body.id, 300_000);
    t.same([job.state, job.error?.code], ['failed', 'HibernateRefused'], `the job: ${job.error?.message}`);
    t.same(await images(), imagesBefore, 'the domain has the images it had before: the unused state volume is deleted');
    const stepNames: string[] = job.steps.map((s: { name: string }) => s.name);
    t.ok(stepNames.includes('create the state volume') && stepNames.includes('delete the unused state volume'), `the volume was made, then deleted: ${stepNames.join(', ')}`);
    const vm = await until('the VM Up on A', () => vmOf(id), (v) => v.status === 'Up', 30_000);
    t.same([vm.status, vm.hostId, vm.desiredState], ['Up', A, 'up'], 'the VM still runs on A, desired up');
    t.equal((await ctl.call('GET', `/api/v1/vms/${id}/hibernation`)).status, 404, 'not suspended');
    const before = ticksIn(serial(labA, name)).length;
    await until('the guest still ticks', async () => ticksIn(serial(labA, name)).length, (n) => n > before + 3, 30_000, 500);
    const st = await ctl.call('POST', `/api/v1/vms/${id}/stop`);
    await jobEnd(ctl.call, st.body.id, 60_000);
  });
});
