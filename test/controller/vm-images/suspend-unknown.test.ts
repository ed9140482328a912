// A suspend whose outcome is unknown, end to end: the real controller daemon (its REST API only),
// one real agent enrolled with a token on the main libvirtd, a file storage domain, tiny guests
// ticking on their consoles. The agent is killed (kill -9) in the middle of a suspend, so the
// vm.suspend job ends SuspendTimeout and leaves its hibernation record `saving`; then:
// (1) while the agent is dead the record stays `saving`, GET /vms/{id} says why the VM cannot
//     start (its host does not answer), DELETE /vms/{id}/hibernation is 409 HostsUnknown (and
//     `hostvisor-ctl vms discard-hibernation` is refused);
//     the agent back with the VM still running (the save never began): the record and its
//     state volume are dropped, and the guest never stopped;
// (2) the VM destroyed while the agent was dead (nothing saved): the record stays `saving` with
//     the reason (nothing was written), a start is refused (409 SuspendOutcomeUnknown), DELETE
//     discards it and a start boots the VM afresh;
// (3) the agent frozen once libvirt began writing the save, killed once it finished: the record
//     becomes `suspended` (the save image is complete) and a start resumes the guest where it was.
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir, spawnAgent, stopChild } from '../../agent/harness.js';
import { addHook } from '../../agent/hooks/hook-fixtures.js';
import { taskLab } from '../../agent/storage/tasks-fixture.js';
import { GUEST_DIR, serialPathFor } from '../../lab/guest.js';
import { dirtyTickerScript, labShWord, ticksIn } from '../../lab/workloads.js';
import { fileDomainHost } from '../storage/file-domain-host.js';
import { jobEnd, jobSummary, until } from '../storage/wait.js';

t.setTimeout(900_000);
const CTL = join(import.meta.dirname, '..', '..', '..', '..', 'bin', 'hostvisor-ctl');
const echo = !!process.env['HV_TEST_LOG'];

t.test('a suspend left saving by a killed agent: kept unknown with the reason, resolved from what the hosts and the state volume say, or discarded by DELETE', async (t) => {
  const tl = await taskLab(t, 'ctl-hib-unk');
  if (!tl) return;
  const hooks = scratchDir('hv-hib-unk-hooks-');
  const marks = scratchDir('hv-hib-unk-marks-');
  // A hibernate of a VM with slow_hibernate=<mark> waits here: the agent is killed before the save begins.
  addHook(hooks, 'before_vm_hibernate', '50_slow', `[ -n "$slow_hibernate" ] || exit 0\ntouch "${marks}/$slow_hibernate"\nsleep 30\nexit 0`);
  const fh = await fileDomainHost(t, tl, { echo, libvirtUri: 'qemu:///system', agent: { 'hooks.dir': hooks },
    settings: { pollIntervalMs: 1_000, pollTimeoutMs: 1_000, vmListIntervalMs: 1_000, hostFactsRefreshMs: 2_000, vmSuspendTimeoutMs: 2_000, vmStatePollMs: 4_000, hibernationReconcileMs: 1_000 } });
  const { ctl, hostId, sdId, root, config } = fh;
  let agent = fh.agent;
  t.teardown(() => stopChild(agent.child, 30_000));
  const kill9 = async (): Promise<void> => {
    const gone = new Promise((res) => agent.child.once('exit', res));
    agent.child.kill('SIGKILL');
    await gone;
  };
  const restartAgent = async (): Promise<void> => {
    agent = await spawnAgent(config);
    if (echo) agent.child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[agent] ${d.toString()}`));
    await until('the host is Up again', () => ctl.call('GET', `/api/v1/hosts/${hostId}`), (a) => a.body?.status === 'Up', 120_000);
  };

  const running: string[] = [];
  t.teardown(async () => {
    for (const id of running) {
      const r = await ctl.call('POST', `/api/v1/vms/${id}/stop`).catch(() => undefined);
      if (r?.status === 202) await jobEnd(ctl.call, r.body.id, 60_000).catch(() => undefined);
    }
  });
  const serial = (name: string): string => (existsSync(serialPathFor(name)) ? readFileSync(serialPathFor(name), 'latin1') : '');
  const define = async (name: string, props?: Record<string, string>): Promise<string> => {
    const r = await ctl.call('POST', '/api/v1/vms', { body: { name, spec: {
      memoryMiB: 128, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
      cmdline: ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', labShWord(dirtyTickerScript({ dirtyMiBs: 0 }))].join(' '),
      serialLog: serialPathFor(name), ...(props && { customProperties: props }),
    } } });
    if (r.status !== 201) throw new Error(`define ${name}: ${r.status} ${r.text}`);
    return r.body.id;
  };
  const start = async (id: string): Promise<Record<string, any>> => { // eslint-disable-line @typescript-eslint/no-explicit-any -- a job as JSON
    const r = await ctl.call('POST', `/api/v1/vms/${id}/start`);
    if (r.status !== 202) throw new Error(`start: ${r.status} ${r.text}`);
    const job = await jobEnd(ctl.call, r.body.id, 180_000);
    if (job.state === 'succeeded' && !running.includes(id)) running.push(id);
    return job;
  };
  const vmOf = async (id: string) => (await ctl.call('GET', `/api/v1/vms/${id}`)).body;
  const hibernation = (id: string) => ctl.call('GET', `/api/v1/vms/${id}/hibernation`);
  const imageDir = (v: { imageId: string }): string => join(root, sdId, 'images', v.imageId);
  const header = (v: { imageId: string; volumeId: string }): string => {
    const file = join(imageDir(v), v.volumeId);
    if (!existsSync(file)) return '';
    const fd = openSync(file, 'r');
    try { const b = Buffer.alloc(16); const n = readSync(fd, b, 0, 16, 0); return b.subarray(0, n).toString('latin1'); } finally { closeSync(fd); }
  };

  const hvctl = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(CTL, ['--url', ctl.url, '--creds', join(ctl.dir, 'admin'), ...args], { timeout: 60_000 },
      (e, stdout, stderr) => resolve({ code: e ? (e as { code?: number }).code ?? -1 : 0, stdout, stderr }));
  });

  const runId = await define('unk-run', { slow_hibernate: 'unk-run' });
  const deadId = await define('unk-dead', { slow_hibernate: 'unk-dead' });
  for (const [id, name] of [[runId, 'unk-run'], [deadId, 'unk-dead']] as const) {
    const s = await start(id);
    t.equal(s.state, 'succeeded', `${name} started: ${jobSummary(s)}`);
    await until(`${name} ticks`, async () => ticksIn(serial(name)), (n) => n.length >= 3, 180_000, 500);
  }

  await t.test('(1) the agent killed before the save began: unknown while it is dead (reason, 409), then dropped since the VM runs', async (t) => {
    const jobs = await Promise.all([runId, deadId].map(async (id) => (await ctl.call('POST', `/api/v1/vms/${id}/suspend`)).body.id as string));
    await until('both hibernates wait in the hook', async () => ['unk-run', 'unk-dead'].every((m) => existsSync(join(marks, m))), (ok) => ok, 120_000, 100);
    await kill9();
    // The second VM dies with nothing saved while its agent is away (case 2).
    const d = spawnSync('virsh', ['-c', 'qemu:///system', 'destroy', deadId], { encoding: 'utf8', timeout: 60_000 });
    t.equal(d.status, 0, `virsh destroy unk-dead while the agent is dead: ${d.stderr.trim()}`);
    for (const j of jobs) {
      const job = await jobEnd(ctl.call, j, 120_000);
      t.same([job.state, job.error?.code], ['failed', 'SuspendTimeout'], `the suspend job: ${jobSummary(job)}`);
    }
    const hib = (await hibernation(runId)).body;
    t.equal(hib.state, 'saving', 'the record stays saving: the outcome is unknown');
    t.ok(existsSync(imageDir(hib.stateVolume)), 'its state volume is kept');
    const vm = await until('GET /vms/{id} says why it cannot start', () => vmOf(runId), (v) => /did not answer/.test(v.startBlocked?.reason ?? ''), 60_000, 500);
    t.equal(vm.startBlocked.code, 'SuspendOutcomeUnknown', `startBlocked: ${vm.startBlocked.reason}`);
    const del = await ctl.call('DELETE', `/api/v1/vms/${runId}/hibernation`);
    t.same([del.status, del.body.code], [409, 'HostsUnknown'], `DELETE while the host is unknown: 409 ${del.body.message}`);
    const cli = await hvctl('vms', 'discard-hibernation', 'unk-run');
    t.same([cli.code !== 0, /HostsUnknown/.test(cli.stderr + cli.stdout)], [true, true], `hostvisor-ctl vms discard-hibernation is refused too: ${cli.stderr.trim()}`);
    t.equal((await hibernation(runId)).body.state, 'saving', 'still saving after the refused DELETEs');

    const lastBefore = Math.max(...ticksIn(serial('unk-run')));
    await restartAgent();
    await until('the saving record of the running VM is dropped', () => hibernation(runId), (r) => r.status === 404, 120_000, 500);
    await until('its state volume deleted', async () => existsSync(imageDir(hib.stateVolume)), (x) => !x, 60_000, 500);
    t.pass('the record and its state volume are gone');
    const after = await until('the VM Up, nothing blocking a start', () => vmOf(runId), (v) => v.status === 'Up' && v.startBlocked === undefined, 60_000, 500);
    t.same([after.status, after.hostId], ['Up', hostId], 'the VM runs on its host');
    const ticks = await until('the guest goes on ticking', async () => ticksIn(serial('unk-run')), (n) => Math.max(...n) > lastBefore + 3, 60_000, 500);
    t.ok(ticks.every((v, i) => i === 0 || v > ticks[i - 1]!), `the guest was never restarted or rewound: its counter only grew, ${ticks[0]}..${ticks.at(-1)}`);
    const events: Array<{ kind: string; subjectId: string; message: string }> = [];
    for (let since = 0, page = 0; page < 100; page++) { // the audit log, oldest first, a page at a time
      const b = (await ctl.call('GET', `/api/v1/events?since=${since}&limit=1000`)).body as { events: typeof events; last: number };
      events.push(...b.events);
      if (b.events.length < 1000) break;
      since = b.last;
    }
    const discarded = events.find((e) => e.kind === 'vm.hibernation.discarded' && e.subjectId === runId);
    t.match(discarded?.message ?? '', /runs on/, `the event says why: ${discarded?.message}`);
  });

  await t.test('(2) the VM destroyed with nothing saved: kept saving with the reason, a start refused; DELETE discards it and a start boots it afresh', async (t) => {
    const vm = await until('the reason for the dead VM', () => vmOf(deadId), (v) => /nothing was written/.test(v.startBlocked?.reason ?? ''), 120_000, 500);
    t.same([vm.status, vm.startBlocked.code], ['Down', 'SuspendOutcomeUnknown'], `Down, startBlocked: ${vm.startBlocked.reason}`);
    const hib = (await hibernation(deadId)).body;
    t.equal(hib.state, 'saving', 'still saving: an empty volume is not taken for a save, nor thrown away unasked');
    const sr = await ctl.call('POST', `/api/v1/vms/${deadId}/start`);
    t.same([sr.status, sr.body.code], [409, 'SuspendOutcomeUnknown'], `a start meanwhile is refused, with the reason: ${sr.body.message}`);
    const del = await ctl.call('DELETE', `/api/v1/vms/${deadId}/hibernation`);
    t.same([del.status, del.body.kind], [202, 'vm.hibernation.discard'], 'DELETE: 202, a discard job');
    const dj = await jobEnd(ctl.call, del.body.id, 120_000);
    t.equal(dj.state, 'succeeded', `discarded: ${jobSummary(dj)}`);
    t.equal((await hibernation(deadId)).status, 404, 'the record is gone');
    t.notOk(existsSync(imageDir(hib.stateVolume)), 'its state volume is deleted');
    const s = await start(deadId);
    t.equal(s.state, 'succeeded', `a start now works: ${jobSummary(s)}`);
    t.notOk(s.steps.some((x: { name: string }) => x.name === 'VM.create from the saved state'), 'no resume: a plain start');
    const ticks = await until('the guest ticks', async () => ticksIn(serial('unk-dead')), (n) => n.length >= 3, 180_000, 500);
    t.ok(ticks[0]! <= 2, `a fresh boot: the counter starts again (${ticks[0]}..${ticks.at(-1)})`);
  });

  await t.test('(3) the agent frozen while libvirt saved, then killed: the complete save image makes it suspended, and a start resumes the guest', async (t) => {
    const name = 'unk-saved';
    const id = await define(name);
    t.equal((await start(id)).state, 'succeeded', 'started');
    await until('the guest ticks', async () => ticksIn(serial(name)), (n) => n.length >= 10, 180_000, 500);
    const r = await ctl.call('POST', `/api/v1/vms/${id}/suspend`);
    t.equal(r.status, 202, 'suspend accepted');
    const hib = (await until('the hibernation record', () => hibernation(id), (x) => x.status === 200, 60_000, 50)).body;
    const begun = await until('libvirt begins the save', async () => header(hib.stateVolume), (h) => h.startsWith('LibvirtQemud'), 120_000, 10);
    agent.child.kill('SIGSTOP');
    const done = await until('libvirt ends the save', async () => header(hib.stateVolume), (h) => h === 'LibvirtQemudSave', 120_000, 100);
    await kill9();
    t.pass(`the agent frozen at header ${begun}, killed at ${done}`);
    const job = await jobEnd(ctl.call, r.body.id, 120_000);
    t.same([job.state, job.error?.code], ['failed', 'SuspendTimeout'], `the suspend job did not see the end: ${jobSummary(job)}`);
    t.equal((await hibernation(id)).body.state, 'saving', 'the record stays saving while the host is dead');
    const lastBefore = Math.max(...ticksIn(serial(name)));
    await restartAgent();
    const now = await until('the record becomes suspended', () => hibernation(id), (x) => x.body?.state === 'suspended', 120_000, 500);
    t.same([now.body.state, now.body.stateVolume.volumeId], ['suspended', hib.stateVolume.volumeId], 'suspended, on the same state volume');
    const vm = await vmOf(id);
    t.same([vm.status, vm.desiredState, vm.startBlocked], ['Down', 'down', undefined], 'Down, desired down, nothing blocks a start');
    const s = await start(id);
    t.equal(s.state, 'succeeded', `started: ${jobSummary(s)}`);
    t.ok(s.steps.some((x: { name: string }) => x.name === 'VM.create from the saved state'), 'resumed from the saved state');
    const ticks = await until('the guest ticks again', async () => ticksIn(serial(name)), (n) => n.length >= 3, 60_000, 500);
    t.ok(ticks[0]! >= lastBefore - 2 && ticks[0]! <= lastBefore + 20, `the counter goes on from ${lastBefore}: ${ticks[0]}..${ticks.at(-1)}`);
    t.notMatch(serial(name), /LAB-BOOT-OK/, 'no boot: the guest did not restart');
    await until('the state volume deleted after the resume', async () => existsSync(imageDir(hib.stateVolume)), (x) => !x, 60_000, 500);
    t.pass('the state volume is deleted once resumed');
  });
});
