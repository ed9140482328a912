// Snapshots of a stopped VM through the real controller daemon (a child process, its REST API)
// and a real agent enrolled with a token (a file storage domain in the storage lab, the agent the
// SPM): each snapshot makes a new COW leaf on the disk's current leaf (an SPM task), the disk
// follows the new leaf; a restore to the first snapshot deletes the newer volumes (leaf first)
// and the newer snapshot, and puts a new leaf on the snapshot's volume. The chain is read from
// the volumes' metadata on storage (PUUID). Deleting a snapshot of the stopped VM is a cold merge
// (Volume.merge on the SPM): an internal one, then a leaf one; the data written before and after
// the snapshot reads the same afterwards (qemu-img compare against a copy made first). What needs
// a running VM (VM.snapshot, VM.merge) is not here.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GiB, taskLab } from '../../agent/storage/tasks-fixture.js';
import { run } from '../../../agent/storage/exec.js';
import { fileDomainHost } from '../storage/file-domain-host.js';
import { jobEnd, jobSummary } from '../storage/wait.js';

const echo = !!process.env['HV_TEST_LOG'];

t.test('snapshots of a stopped VM through the controller daemon', async (t) => {
  const tl = await taskLab(t, 'ctl-snaps');
  if (!tl) return;
  const { ctl, sdId, root } = await fileDomainHost(t, tl, { echo, libvirtUri: 'test:///default', settings: { pollIntervalMs: 1_000, pollTimeoutMs: 1_000 } });
  const made = await ctl.call('POST', '/api/v1/disks', { body: { name: 'root', storageDomainId: sdId, sizeBytes: GiB, provisioning: 'thin' } });
  t.equal((await jobEnd(ctl.call, made.body.id, 120_000)).state, 'succeeded', 'a thin disk');
  const diskId: string = made.body.targetId;
  const disk0 = (await ctl.call('GET', `/api/v1/disks/${diskId}`)).body;
  const vm = await ctl.call('POST', '/api/v1/vms', { body: { name: 'snapvm', spec: { memoryMiB: 64, disks: [{ name: 'vda', diskId }] } } });
  t.equal(vm.status, 201, 'a VM with the disk, never started');
  const base = `/api/v1/vms/${vm.body.id}`;

  const imageDir = join(root, sdId, 'images', disk0.imageId);
  const parentOf = (vol: string): string | undefined => /^PUUID=(.*)$/m.exec(readFileSync(join(imageDir, `${vol}.meta`), 'utf8'))?.[1];
  const leaf = async (): Promise<string> => (await ctl.call('GET', `/api/v1/disks/${diskId}`)).body.volumeId;
  const take = async (description: string): Promise<Record<string, any>> => { // eslint-disable-line @typescript-eslint/no-explicit-any -- a snapshot as JSON
    const r = await ctl.call('POST', `${base}/snapshots`, { body: { description } });
    const job = await jobEnd(ctl.call, r.body.id, 120_000);
    t.equal(job.state, 'succeeded', `snapshot "${description}": ${jobSummary(job)}`);
    return (await ctl.call('GET', `${base}/snapshots/${r.body.params.snapshotId}`)).body;
  };

  const V0 = disk0.volumeId as string;
  const s1 = await take('first');
  t.same([s1.status, s1.vmRunning, s1.frozen, s1.memory], ['ready', false, null, false], 'ready; taken of the stopped VM (no freeze, no RAM)');
  const V1 = s1.disks[0].childId as string;
  t.same([s1.disks[0].volumeId, await leaf(), parentOf(V1)], [V0, V1, V0], 'it keeps V0; the disk\'s leaf is the new V1, whose parent on storage is V0');
  const s2 = await take('second');
  const V2 = s2.disks[0].childId as string;
  t.same([s2.disks[0].volumeId, await leaf(), parentOf(V2)], [V1, V2, V1], 'the chain is V0 <- V1 <- V2');

  const mem = await ctl.call('POST', `${base}/snapshots`, { body: { description: 'ram', memory: true } });
  t.same([mem.status, mem.body.code], [409, 'VmNotRunning'], 'no memory snapshot of a stopped VM');

  const r = await ctl.call('POST', `${base}/snapshots/${s1.id}/restore`);
  t.same([r.status, r.body.kind], [202, 'vm.snapshot.restore'], 'restore to the first snapshot: a job');
  const job = await jobEnd(ctl.call, r.body.id, 120_000);
  t.equal(job.state, 'succeeded', `restored: ${jobSummary(job)}`);
  const names: string[] = job.steps.map((s: { name: string }) => s.name);
  const dV2 = names.indexOf(`delete volume ${V2} of disk root`);
  const dV1 = names.indexOf(`delete volume ${V1} of disk root`);
  t.ok(dV2 >= 0 && dV1 > dV2 && names.indexOf('create the new leaf of disk root') > dV1, 'V2 deleted, then V1, then the new leaf made');
  const N = await leaf();
  t.notOk([V0, V1, V2].includes(N), 'the disk is on a new leaf');
  t.same([parentOf(N), existsSync(join(imageDir, V1)), existsSync(join(imageDir, V2)), existsSync(join(imageDir, V0))], [V0, false, false, true],
    'on storage: the new leaf on V0; V1 and V2 gone; V0 kept');
  const list = (await ctl.call('GET', `${base}/snapshots`)).body;
  t.same(list.map((s: { id: string; disks: Array<{ volumeId: string; childId: string }> }) => [s.id, s.disks[0]!.volumeId, s.disks[0]!.childId]), [[s1.id, V0, N]],
    'the newer snapshot is gone; the first keeps V0 with the new leaf on it');
  t.equal((await ctl.call('GET', `${base}/hibernation`)).status, 404, 'a disk-only snapshot leaves no RAM state to resume');
  const again = await ctl.call('POST', `${base}/snapshots/${s1.id}/restore`);
  t.equal((await jobEnd(ctl.call, again.body.id, 120_000)).state, 'succeeded', 'restored again');
  const N2 = await leaf();
  t.same([parentOf(N2), existsSync(join(imageDir, N))], [V0, false], 'a fresh leaf on V0; the previous one deleted');

  // Cold merges. Data in N2 (the leaf now), a snapshot, more data in its new leaf V3; a copy of the chain to compare with.
  const qemuIo = (vol: string, cmd: string) => run(['qemu-io', '-f', 'qcow2', '-c', cmd, join(imageDir, vol)], { timeoutMs: 60_000 });
  await qemuIo(N2, 'write -P 0x5a 0 16M');
  const s3 = await take('third');
  const V3 = s3.disks[0].childId as string;
  await qemuIo(V3, 'write -P 0xa5 8M 16M');
  const ref = join(root, 'ref.qcow2');
  await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'qcow2', join(imageDir, V3), ref], { timeoutMs: 60_000 });
  const del = async (sid: string, what: string) => {
    const r = await ctl.call('DELETE', `${base}/snapshots/${sid}`);
    t.same([r.status, r.body.kind], [202, 'vm.snapshot.delete'], `${what}: the DELETE of the stopped VM's snapshot answers 202 with a job`);
    const j = await jobEnd(ctl.call, r.body.id, 180_000);
    t.equal(j.state, 'succeeded', `${what}: ${jobSummary(j)}`);
    t.ok(j.steps.some((x: { name: string }) => x.name.startsWith('cold merge of disk')), `${what}: a cold merge step ran`);
  };
  await del(s1.id, 'internal merge (N2 into V0)');
  const afterFirst = (await ctl.call('GET', `${base}/snapshots`)).body;
  t.same(afterFirst.map((s: { id: string; disks: Array<{ volumeId: string; childId: string }> }) => [s.id, s.disks[0]!.volumeId, s.disks[0]!.childId]), [[s3.id, V0, V3]],
    'the list shrinks to the third snapshot, which now keeps V0 (it holds what N2 held)');
  t.same([parentOf(V3), existsSync(join(imageDir, N2)), await leaf()], [V0, false, V3], 'on storage: V3 on V0; N2 gone; the disk still on V3');
  await del(s3.id, 'leaf merge (V3 into V0)');
  t.same((await ctl.call('GET', `${base}/snapshots`)).body, [], 'no snapshots left');
  t.same([await leaf(), existsSync(join(imageDir, V3))], [V0, false], 'the disk is on V0 again; V3 gone');
  const cmp = await run(['qemu-img', 'compare', '-f', 'qcow2', '-F', 'qcow2', ref, join(imageDir, V0)], { timeoutMs: 60_000, okCodes: [0, 1] });
  t.equal(cmp.rc, 0, `the data written before and after the snapshot is all in V0: ${cmp.stdout.trim()}`);
  const chk = await run(['qemu-img', 'check', '-f', 'qcow2', join(imageDir, V0)], { timeoutMs: 60_000, okCodes: [0, 2, 3] });
  t.equal(chk.rc, 0, 'qemu-img check is clean on V0');
});
