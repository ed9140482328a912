// Snapshots of a RUNNING VM through the real controller daemon (its REST API only) and a real
// agent enrolled with a token on the real libvirtd, a file storage domain in the storage lab, one
// tiny guest that ticks on its console and writes to its disk all along:
// (a) a live disk-only snapshot: the job ends, `frozen` is reported, the VM stays Up, the list
//     has it, and on storage the chain is base <- leaf;
// (b) a memory snapshot, then stop, restore to it, start: the guest's serial counter goes on
//     from the value at the snapshot (not from 0, not from where it was stopped);
// (c) DELETE of both snapshots on the running VM: live merges (an internal one, then an active
//     one), each removed volume gone from storage, the chain one volume again, the VM Up with
//     no pause (libvirt's lifecycle events for the domain are counted).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../agent/storage/exec.js';
import { MiB, taskLab } from '../../agent/storage/tasks-fixture.js';
import { GUEST_DIR, serialPathFor, waitForSerialMarker } from '../../lab/guest.js';
import { dirtyTickerScript, labShWord, ticksIn } from '../../lab/workloads.js';
import { fileDomainHost } from '../storage/file-domain-host.js';
import { jobEnd, jobSummary, until } from '../storage/wait.js';

t.setTimeout(600_000);
const echo = !!process.env['HV_TEST_LOG'];
const NO_PARENT = '00000000-0000-0000-0000-000000000000';

/** 1 MiB of random data to /dev/vda every 0.2 s, over its first 32 MiB (O_DIRECT, so it reaches the volume), while the ticker ticks. */
const WRITER_AND_TICKER = `(
  i=0
  while :; do dd if=/dev/urandom of=/dev/vda bs=1M count=1 seek=$((i % 32)) oflag=direct 2>/dev/null; i=$((i+1)); echo "LAB-W $i"; sleep 0.2; done
) &
${dirtyTickerScript({ dirtyMiBs: 0 })}`;

/** libvirt's lifecycle events of one domain, from `virsh event --loop`, until stop(). */
function lifecycleEvents(domain: string): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  const c = spawn('virsh', ['-c', 'qemu:///system', 'event', '--domain', domain, '--event', 'lifecycle', '--loop'], { stdio: ['ignore', 'pipe', 'ignore'] });
  c.stdout.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter((l) => l.includes('lifecycle'))));
  const timer = setTimeout(() => c.kill(), 300_000); // bounded even if a stop() is missed
  return { lines, stop: () => { clearTimeout(timer); c.kill(); } };
}

t.test('live snapshots, a memory snapshot restored and live merges through the controller daemon', async (t) => {
  const tl = await taskLab(t, 'ctl-live-snap');
  if (!tl) return;
  const { ctl, sdId, root } = await fileDomainHost(t, tl, { echo, libvirtUri: 'qemu:///system', agent: { 'vm.snapshotFreezeTimeoutMs': 5000 },
    settings: { pollIntervalMs: 1_000, pollTimeoutMs: 1_000, vmListIntervalMs: 1_000, hostFactsRefreshMs: 2_000 } });
  const made = await ctl.call('POST', '/api/v1/disks', { body: { name: 'root', storageDomainId: sdId, sizeBytes: 256 * MiB, provisioning: 'thin' } });
  t.equal((await jobEnd(ctl.call, made.body.id, 120_000)).state, 'succeeded', 'a thin 256 MiB disk');
  const diskId: string = made.body.targetId;
  const disk0 = (await ctl.call('GET', `/api/v1/disks/${diskId}`)).body;
  const serial = serialPathFor('live-snap');
  const vm = await ctl.call('POST', '/api/v1/vms', { body: { name: 'live-snap', spec: {
    memoryMiB: 128, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
    cmdline: `console=ttyS0 quiet panic=-1 lab.end=wait ${labShWord(WRITER_AND_TICKER)}`, serialLog: serial, disks: [{ name: 'vda', diskId }] } } });
  t.equal(vm.status, 201, 'a VM on the disk');
  const vmId: string = vm.body.id;
  const base = `/api/v1/vms/${vmId}`;
  let running = false;
  t.teardown(async () => {
    if (!running) return;
    const r = await ctl.call('POST', `${base}/stop`).catch(() => undefined);
    if (r?.status === 202) await jobEnd(ctl.call, r.body.id, 60_000).catch(() => undefined);
  });

  const imageDir = join(root, sdId, 'images', disk0.imageId);
  const volFile = (vol: string) => join(imageDir, vol);
  const parentOf = (vol: string): string | undefined => /^PUUID=(.*)$/m.exec(readFileSync(`${volFile(vol)}.meta`, 'utf8'))?.[1];
  const leaf = async (): Promise<string> => (await ctl.call('GET', `/api/v1/disks/${diskId}`)).body.volumeId;
  const vmStatus = async (): Promise<string> => (await ctl.call('GET', base)).body.status;
  const ticks = (): number[] => (existsSync(serial) ? ticksIn(readFileSync(serial, 'latin1')) : []);
  const lastTick = (): number => Math.max(-1, ...ticks());
  const start = async (what: string) => {
    const r = await ctl.call('POST', `${base}/start`);
    running = true;
    const job = await jobEnd(ctl.call, r.body.id, 180_000);
    t.equal(job.state, 'succeeded', `${what}: ${jobSummary(job)}`);
    await until('the VM is Up', vmStatus, (s) => s === 'Up', 60_000);
  };
  const V0 = disk0.volumeId as string;

  rmSync(serial, { force: true });
  await start('the VM started');
  await waitForSerialMarker(serial, /^LAB-W 3$/, 180_000);
  const qga = spawnSync('virsh', ['-c', 'qemu:///system', 'qemu-agent-command', '--timeout', '5', vmId, '{"execute":"guest-ping"}'], { encoding: 'utf8', timeout: 30_000 }).status === 0;

  let s1: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any -- a snapshot as JSON
  await t.test('(a) a live disk-only snapshot: frozen reported, the VM stays Up, listed, base <- leaf on storage', async (t) => {
    const r = await ctl.call('POST', `${base}/snapshots`, { body: { description: 'live' } });
    t.same([r.status, r.body.kind], [202, 'vm.snapshot'], 'a vm.snapshot job');
    const job = await jobEnd(ctl.call, r.body.id, 120_000);
    t.equal(job.state, 'succeeded', `taken: ${jobSummary(job)}`);
    t.ok(job.steps.some((s: { name: string }) => s.name === 'VM.snapshot'), 'it called VM.snapshot on the host');
    s1 = (await ctl.call('GET', `${base}/snapshots/${r.body.params.snapshotId}`)).body;
    t.same([s1.status, s1.vmRunning, s1.memory], ['ready', true, false], 'ready, taken live, disk only');
    if (qga) t.equal(s1.frozen, true, 'the guest agent answers a ping: frozen is true (the guest-agent branch ran)');
    else t.same([s1.frozen, /not frozen/.test(s1.warnings.join('\n'))], [false, true], 'no guest agent answers: frozen is false, with a warning (the no-agent branch ran)');
    t.equal(await vmStatus(), 'Up', 'the VM is still Up');
    const list = (await ctl.call('GET', `${base}/snapshots`)).body;
    t.same(list.map((s: { id: string }) => s.id), [s1.id], 'GET /snapshots lists it');
    const V1 = s1.disks[0].childId as string;
    t.same([s1.disks[0].volumeId, await leaf()], [V0, V1], 'the snapshot keeps V0; the disk is on the new leaf V1');
    t.same([parentOf(V1), parentOf(V0)], [V0, NO_PARENT], 'on storage: V0 <- V1');
    const at = lastTick();
    await waitForSerialMarker(serial, `LAB-TICK ${at + 10}`, 60_000);
    const w = Math.max(...[...readFileSync(serial, 'latin1').matchAll(/LAB-W (\d+)/g)].map((m) => Number(m[1])));
    await waitForSerialMarker(serial, `LAB-W ${w + 3}`, 60_000);
    t.pass(`the guest goes on ticking (past ${at + 10}) and writing (past LAB-W ${w + 3}) on the new leaf`);
  });
  if (!s1['id']) return;

  const events = lifecycleEvents(vmId);
  t.teardown(() => events.stop());
  let s2: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any -- a snapshot as JSON
  await t.test('(b) a memory snapshot restored: stop, restore, start; the counter goes on from the snapshot', async (t) => {
    const before = lastTick();
    const r = await ctl.call('POST', `${base}/snapshots`, { body: { description: 'with RAM', memory: true } });
    t.equal(r.status, 202, 'a vm.snapshot job with memory');
    const job = await jobEnd(ctl.call, r.body.id, 300_000);
    const after = lastTick();
    t.equal(job.state, 'succeeded', `taken: ${jobSummary(job)}`);
    s2 = (await ctl.call('GET', `${base}/snapshots/${r.body.params.snapshotId}`)).body;
    t.same([s2.status, s2.memory, s2.vmRunning, s2.memoryVolume !== null], ['ready', true, true, true], 'ready, with a memory volume');
    t.equal(await vmStatus(), 'Up', 'the VM is still Up after the memory snapshot');
    t.comment(`libvirt lifecycle events during the memory snapshot: ${JSON.stringify(events.lines)}`);
    await waitForSerialMarker(serial, `LAB-TICK ${after + 50}`, 60_000);
    const stop = await ctl.call('POST', `${base}/stop`);
    t.equal((await jobEnd(ctl.call, stop.body.id, 60_000)).state, 'succeeded', 'stopped');
    await until('the VM is Down', () => ctl.call('GET', base), (a) => a.body?.status === 'Down' && a.body?.desiredState === 'down', 30_000);
    running = false;
    const stoppedAt = lastTick();

    const rs = await ctl.call('POST', `${base}/snapshots/${s2.id}/restore`);
    t.same([rs.status, rs.body.kind], [202, 'vm.snapshot.restore'], 'restore: a job');
    const rj = await jobEnd(ctl.call, rs.body.id, 120_000);
    t.equal(rj.state, 'succeeded', `restored: ${jobSummary(rj)}`);
    const V1 = s1.disks[0].childId as string;
    const N = await leaf();
    t.same([parentOf(N), existsSync(volFile(s2.disks[0].childId))], [V1, false], 'on storage: a new leaf on V1, the leaf made after the snapshot gone');
    t.equal((await ctl.call('GET', `${base}/hibernation`)).status, 200, 'a RAM state to resume is recorded');

    rmSync(serial, { force: true });
    await start('started from the snapshot\'s RAM state');
    const resumed = await until('ticks after the resume', async () => ticks(), (n) => n.length >= 3, 60_000);
    t.ok(resumed[0]! >= before && resumed[0]! <= after + 20,
      `the counter goes on from the snapshot's ${before}..${after}: ${resumed[0]}..${resumed.at(-1)} (not 0, not ${stoppedAt} where it was stopped)`);
    t.notMatch(readFileSync(serial, 'latin1'), /LAB-BOOT-OK/, 'no new boot');
    t.ok(events.lines.some((l) => /Stopped/.test(l)) && events.lines.some((l) => /Started/.test(l)), `the lifecycle watcher saw the stop and the start (${events.lines.length} events)`);
    t.equal((await ctl.call('GET', `${base}/hibernation`)).status, 404, 'the RAM state is consumed (the snapshot keeps its volume)');
  });
  if (!s2['id']) return;

  await t.test('(c) DELETE of both snapshots on the running VM: live merges, the chain one volume again, no pause', async (t) => {
    const seenBefore = events.lines.length;
    const statuses: string[] = [];
    const V1 = s1.disks[0].childId as string;
    const N = await leaf();
    const merge = async (s: Record<string, any>, kind: string, removed: string) => { // eslint-disable-line @typescript-eslint/no-explicit-any -- a snapshot as JSON
      const r = await ctl.call('DELETE', `${base}/snapshots/${s.id}`);
      t.same([r.status, r.body.kind], [202, 'vm.snapshot.delete'], `DELETE "${s.description}": a job`);
      let job: Record<string, any> | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any -- a job as JSON
      while (!job) { // the VM's status all along the merge
        statuses.push(await vmStatus());
        const j = (await ctl.call('GET', `/api/v1/jobs/${r.body.id}`)).body;
        if (['succeeded', 'failed'].includes(j.state)) job = j;
        else if (statuses.length > 1200) throw new Error(`the merge did not end: ${jobSummary(j)}`);
        else await new Promise((res) => setTimeout(res, 250));
      }
      t.equal(job.state, 'succeeded', `merged: ${jobSummary(job)}`);
      const mergeStep = job.steps.find((x: { name: string }) => x.name.startsWith('VM.merge'));
      t.match(mergeStep?.detail ?? '', new RegExp(`^${kind} commit of ${removed}`), `an ${kind} commit of ${removed}`);
      t.notOk(existsSync(volFile(removed)), `the merged volume ${removed} is gone from storage`);
      t.equal((await ctl.call('GET', `${base}/snapshots/${s.id}`)).status, 404, 'the snapshot is gone');
    };
    await merge(s1, 'internal', V1);
    t.same([await leaf(), parentOf(N)], [N, V0], 'the disk stays on its leaf, now on V0: V0 <- N');
    const s2now = (await ctl.call('GET', `${base}/snapshots/${s2.id}`)).body;
    t.equal(s2now.disks[0].volumeId, V0, 'the memory snapshot now keeps V0 (which holds what V1 held)');
    await merge(s2now, 'active', N);
    t.equal(await leaf(), V0, 'the disk is on V0');
    t.equal(parentOf(V0), NO_PARENT, 'on storage: one volume, V0, with no parent');
    t.equal((await run(['qemu-img', 'info', '--output=json', '-U', volFile(V0)], { timeoutMs: 30_000 })).stdout.includes('backing-filename'), false, 'qemu-img: V0 has no backing file');
    const blk = spawnSync('virsh', ['-c', 'qemu:///system', 'domblklist', vmId], { encoding: 'utf8', timeout: 30_000 }).stdout;
    t.match(blk, new RegExp(`vda\\s+\\S*${V0}`), 'libvirt: vda runs on V0');
    t.notOk(existsSync(join(root, sdId, 'images', s2.memoryVolume.imageId, s2.memoryVolume.volumeId)), 'the memory volume is gone');
    t.same((await ctl.call('GET', `${base}/snapshots`)).body, [], 'no snapshots left');
    const at = lastTick();
    await waitForSerialMarker(serial, `LAB-TICK ${at + 10}`, 60_000);
    const during = events.lines.slice(seenBefore);
    events.stop();
    t.same([...new Set(statuses)], ['Up'], `the VM was Up at each of ${statuses.length} reads during the merges`);
    t.same(during.filter((l) => /Suspended|Stopped|Shutdown/.test(l)), [], `libvirt: no pause or stop during the merges (${during.length} lifecycle events)`);

    // The records followed the merges: a stop and a start boot the guest from V0 alone.
    const stop = await ctl.call('POST', `${base}/stop`);
    t.equal((await jobEnd(ctl.call, stop.body.id, 60_000)).state, 'succeeded', 'stopped');
    await until('the VM is Down', vmStatus, (s) => s === 'Down', 30_000);
    running = false;
    t.match((await run(['qemu-img', 'check', volFile(V0)], { timeoutMs: 60_000 })).stdout, /No errors were found/, 'qemu-img check is clean on V0');
    rmSync(serial, { force: true });
    await start('started again on the merged disk');
    await waitForSerialMarker(serial, /^LAB-W 2$/, 180_000);
    t.pass('the guest boots from V0 and writes to it');
  });
  await t.test('(d) the VM stopped during a merge: the job ends at once, the snapshot stays "deleting" and is not restored to', async (t) => {
    const r = await ctl.call('POST', `${base}/snapshots`, { body: { description: 'cut short' } });
    t.equal((await jobEnd(ctl.call, r.body.id, 120_000)).state, 'succeeded', 'a live snapshot');
    const s3 = (await ctl.call('GET', `${base}/snapshots/${r.body.params.snapshotId}`)).body;
    const V3 = s3.disks[0].childId as string;
    const w = Math.max(...[...readFileSync(serial, 'latin1').matchAll(/LAB-W (\d+)/g)].map((m) => Number(m[1])));
    await waitForSerialMarker(serial, `LAB-W ${w + 15}`, 60_000); // 15 MiB or more in the new leaf
    const del = await ctl.call('DELETE', `${base}/snapshots/${s3.id}`, { body: { bandwidthMiBs: 1 } });
    t.same([del.status, del.body.params?.bandwidthMiBs], [202, 1], 'DELETE at 1 MiB/s: a job');
    await until('the merge is followed', () => ctl.call('GET', `/api/v1/jobs/${del.body.id}`),
      (a) => a.body?.steps?.some((x: { name: string; state: string }) => x.name.startsWith('follow the merge') && x.state === 'running'), 60_000);
    const stop = await ctl.call('POST', `${base}/stop`);
    t.equal((await jobEnd(ctl.call, stop.body.id, 60_000)).state, 'succeeded', 'the VM stopped mid-merge');
    running = false;
    const t0 = Date.now();
    const job = await jobEnd(ctl.call, del.body.id, 60_000);
    t.same([job.state, job.error?.code], ['failed', 'VmStoppedDuringMerge'], `the merge job failed ${((Date.now() - t0) / 1000).toFixed(1)} s after the stop: ${jobSummary(job)}`);
    t.equal((await ctl.call('GET', `${base}/snapshots/${s3.id}`)).body.status, 'deleting', 'the snapshot stays "deleting" (its volume may hold part of the top)');
    const rs = await ctl.call('POST', `${base}/snapshots/${s3.id}/restore`);
    t.same([rs.status, rs.body.code], [409, 'SnapshotBusy'], 'a restore to it is refused');
    t.same([await leaf(), parentOf(V3), existsSync(volFile(V3))], [V3, V0, true], 'the chain is as it was: V0 <- V3, the disk on V3');
    rmSync(serial, { force: true });
    await start('started again on V3');
    await waitForSerialMarker(serial, /^LAB-W 2$/, 180_000);
    const again = await ctl.call('DELETE', `${base}/snapshots/${s3.id}`);
    const aj = await jobEnd(ctl.call, again.body.id, 120_000);
    t.equal(aj.state, 'succeeded', `a DELETE again finishes the merge: ${jobSummary(aj)}`);
    t.same([await leaf(), parentOf(V0), existsSync(volFile(V3))], [V0, NO_PARENT, false], 'one volume again: the disk on V0, V3 gone');
  });

  const faults = ctl.logs.filter((l) => /"level":(50|60)/.test(l));
  t.same(faults, [], 'the controller logged no error');
});
