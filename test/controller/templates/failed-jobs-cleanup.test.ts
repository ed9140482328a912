// Failed template and clone jobs leave nothing on storage, through the real controller daemon and
// a real agent on a file storage domain (the set-up of templates.test). The failure is real and
// deterministic: the image a job's SECOND copy reads from is moved out of the domain (the source
// VM's vdb, or the template's vdb volume), so the first volume is made and the second task fails
// on the agent. Proven on the domain's images folder: the job's images are gone, nothing else is
// touched (the source disks and the template volumes keep their bytes); the records are failed (a
// failed template is refused as a clone source); and a retry after the image is back succeeds.
// A template job and a full clone killed (kill -9 of the controller) after their first volume was
// made, then failing in the resumed run, delete that volume too: the volumes are recorded with the
// job (the resumed clone skips its ready first disk: only the record names its volume). A deletion
// that fails (an immutable file) is named in the job's error.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../agent/storage/exec.js';
import { HostvisorClient } from '../../../api/client/client.js';
import { GiB, taskLab } from '../../agent/storage/tasks-fixture.js';
import { fileDomainHost } from '../storage/file-domain-host.js';
import { jobEnd, jobSummary, until } from '../storage/wait.js';

t.setTimeout(600_000);
const echo = !!process.env['HV_TEST_LOG'];

interface Disk { id: string; name: string; imageId: string; volumeId: string; status: string }

t.test('failed template and clone jobs delete the volumes they made', async (t) => {
  const tl = await taskLab(t, 'ctl-tpl-cleanup');
  if (!tl) return;
  const { ctl, sdId, root, hostId } = await fileDomainHost(t, tl, { echo, libvirtUri: 'qemu:///system',
    settings: { pollIntervalMs: 1_000, pollTimeoutMs: 1_000, vmListIntervalMs: 1_000, hostFactsRefreshMs: 2_000 } });
  const imagesDir = join(root, sdId, 'images');
  const images = (): string[] => readdirSync(imagesDir).sort();
  const volFile = (imageId: string, volumeId: string) => join(imagesDir, imageId, volumeId);
  const sha = async (file: string) => (await run(['sha256sum', file], { timeoutMs: 60_000 })).stdout.split(' ')[0];
  // An image moved out of the domain (same file system: a rename) and back: the agent no longer finds it.
  const aside = join(tl.fileRoot, 'aside');
  mkdirSync(aside, { recursive: true });
  const hide = (imageId: string) => renameSync(join(imagesDir, imageId), join(aside, imageId));
  const unhide = (imageId: string) => renameSync(join(aside, imageId), join(imagesDir, imageId));

  async function makeDisk(name: string, dataMiB: number): Promise<Disk> {
    const dj = await ctl.call('POST', '/api/v1/disks', { body: { name, storageDomainId: sdId, sizeBytes: GiB, provisioning: 'thin' } });
    t.equal((await jobEnd(ctl.call, dj.body.id, 120_000)).state, 'succeeded', `disk ${name} made`);
    const d: Disk = (await ctl.call('GET', `/api/v1/disks/${dj.body.targetId}`)).body;
    await run(['qemu-io', '-f', 'qcow2', '-c', `write -P 0x5a 0 ${dataMiB}M`, volFile(d.imageId, d.volumeId)], { timeoutMs: 60_000 });
    return d;
  }
  // The source VM: vda with 1 MiB of data, vdb with 24 MiB (a copy of it at 1 MiB/s lasts 24 s).
  const vda = await makeDisk('two-a', 1);
  const vdb = await makeDisk('two-b', 24);
  const srcSums = { a: await sha(volFile(vda.imageId, vda.volumeId)), b: await sha(volFile(vdb.imageId, vdb.volumeId)) };
  const src = await ctl.call('POST', '/api/v1/vms', { body: { name: 'two', spec: { memoryMiB: 128, domainType: 'qemu',
    disks: [{ name: 'vda', diskId: vda.id }, { name: 'vdb', diskId: vdb.id }] } } });
  t.equal(src.status, 201, 'the source VM with two disks is defined');
  await until('the source VM is Down', () => ctl.call('GET', `/api/v1/vms/${src.body.id}`), (a) => a.body?.status === 'Down', 60_000);
  const jobLogged = (jobId: string, msg: string) => ctl.logs.some((l) => l.includes(`"msg":"${msg}"`) && l.includes(jobId));

  let tplId = '';
  await t.test('a template whose second copy fails: its first volume is deleted, the template is failed and no clone source; a retry succeeds', async (t) => {
    const before = images();
    hide(vdb.imageId);
    const made = await ctl.call('POST', '/api/v1/templates', { body: { vm: 'two', name: 'tpl2' } });
    t.equal(made.status, 202, 'template.create accepted');
    const job = await jobEnd(ctl.call, made.body.id, 180_000);
    unhide(vdb.imageId);
    const tpl = (await ctl.call('GET', `/api/v1/templates/${made.body.targetId}`)).body;
    const [va, vb] = tpl.volumes;
    t.equal(job.state, 'failed', `the job failed: ${jobSummary(job)}`);
    t.same(images(), before, 'the domain holds exactly the images it held before (no template volume left)');
    t.ok(jobLogged(made.body.id, 'template volume made') && job.params.memo?.madeVolumes?.length === 2, 'its first volume had been made, the second asked for');
    t.same((job.error?.details?.cleanup?.deleted ?? []).map((v: Disk) => v.imageId), [vb.imageId, va.imageId], 'the error names both images deleted, the last made first');
    t.same([job.error?.details?.cleanup?.notDeleted, job.error?.details?.cleanup?.kept], [[], []], 'nothing it made is left undeleted');
    t.match(job.error?.message, /the 2 volume\(s\) it made were deleted/, `the message says so: ${job.error.message}`);
    t.ok(jobLogged(made.body.id, 'deleted an image the failed job made'), 'each deletion is logged');
    t.same([await sha(volFile(vda.imageId, vda.volumeId)), await sha(volFile(vdb.imageId, vdb.volumeId))], [srcSums.a, srcSums.b], 'the source disks are untouched');
    t.equal(tpl.status, 'failed', 'the template is failed');
    const clone = await ctl.call('POST', '/api/v1/vms', { body: { name: 'from-failed', template: 'tpl2', clone: 'thin' } });
    t.same([clone.status, clone.body.details?.reason], [409, 'TemplateNotReady'], 'a failed template is refused as a clone source');

    const del = await ctl.call('DELETE', `/api/v1/templates/${tpl.id}`);
    t.equal((await jobEnd(ctl.call, del.body.id, 120_000)).state, 'succeeded', 'the failed template is deleted (nothing left to remove)');
    const again = await ctl.call('POST', '/api/v1/templates', { body: { vm: 'two', name: 'tpl2' } });
    const retry = await jobEnd(ctl.call, again.body.id, 180_000);
    t.equal(retry.state, 'succeeded', `the retry succeeds: ${jobSummary(retry)}`);
    const ok = (await ctl.call('GET', `/api/v1/templates/${again.body.targetId}`)).body;
    t.ok(ok.status === 'ready' && ok.volumes.every((v: Disk) => existsSync(volFile(v.imageId, v.volumeId))), 'the new template is ready, its two volumes on storage');
    tplId = ok.id;
  });

  /**
   * A template job killed with the controller (kill -9) once its first volume is made, its second
   * copy waiting for the agent's lock on vdb's image (a slow copy of vdb holds it); `whileDead`
   * runs before the restart; the slow copy is then cancelled, so the resumed job's vdb copy runs,
   * on a vdb moved away: it fails. Returns the ended job and the template.
   */
  async function killedThenFailing(t: Test, name: string, whileDead: (tpl: { volumes: Disk[] }) => Promise<void>) {
    const blocker = await ctl.call('POST', `/api/v1/disks/${vdb.id}/copy`, { body: { storageDomainId: sdId, name: `blocker-${name}`, bandwidthMiBs: 1 } });
    await until('the slow copy runs', () => ctl.call('GET', `/api/v1/jobs/${blocker.body.id}`), (a) => (a.body?.progress ?? 0) >= 1, 60_000, 100);
    const made = await ctl.call('POST', '/api/v1/templates', { body: { vm: 'two', name } });
    const tpl = (await ctl.call('GET', `/api/v1/templates/${made.body.targetId}`)).body;
    const [va, vb] = tpl.volumes;
    const atKill = await until('the job asks for its second volume', () => ctl.call('GET', `/api/v1/jobs/${made.body.id}`),
      (a) => a.body?.params?.memo?.[`copyTask:${vb.volumeId}`] !== undefined, 120_000, 100);
    await ctl.kill9();
    t.equal(atKill.body.state, 'running', 'the job was running when the controller was killed');
    t.ok(existsSync(volFile(va.imageId, va.volumeId)), 'its first volume was on storage');
    await whileDead(tpl);
    hide(vdb.imageId); // the copy under way keeps its open file; the template's vdb copy will not find it
    try {
      await ctl.start();
      const cancel = await ctl.call('POST', `/api/v1/jobs/${blocker.body.id}/cancel`);
      t.equal(cancel.status, 202, 'the slow copy is cancelled (its lock freed)');
      t.equal((await jobEnd(ctl.call, blocker.body.id, 120_000)).error?.code, 'Cancelled', 'the slow copy ended Cancelled');
      const job = await jobEnd(ctl.call, made.body.id, 180_000);
      t.equal(job.state, 'failed', `the resumed job failed: ${jobSummary(job)}`);
      t.ok(jobLogged(made.body.id, 'job resumed'), 'the restarted controller resumed it');
      t.equal((await ctl.call('GET', `/api/v1/templates/${tpl.id}`)).body.status, 'failed', 'the template is failed');
      return { job, va: va as Disk };
    } finally {
      unhide(vdb.imageId);
    }
  }

  await t.test('a template job resumed after kill -9 of the controller, then failing, deletes the volume its first run made', async (t) => {
    const before = images();
    const { job, va } = await killedThenFailing(t, 'tpl3', async () => {});
    t.ok((job.error?.details?.cleanup?.deleted ?? []).some((v: Disk) => v.imageId === va.imageId), 'the first run\'s volume is among those deleted');
    t.same(job.error?.details?.cleanup?.notDeleted, [], 'none left undeleted');
    t.notOk(existsSync(join(imagesDir, va.imageId)), 'the first run\'s image is gone from storage');
    t.same(images(), before, 'the domain holds exactly the images it held before');
    t.same([await sha(volFile(vda.imageId, vda.volumeId)), await sha(volFile(vdb.imageId, vdb.volumeId))], [srcSums.a, srcSums.b], 'the source disks are untouched');
  });

  await t.test('a volume the clean-up cannot delete is named in the job\'s error, not lost; deleting the failed template removes it later', async (t) => {
    const before = images();
    let meta = '';
    // An immutable .meta: the agent's Image.delete fails on it (EPERM), a real failure of the deletion.
    t.teardown(() => (meta ? run(['chattr', '-i', meta], { timeoutMs: 10_000 }).then(() => undefined, () => undefined) : undefined));
    const { job, va } = await killedThenFailing(t, 'tpl4', async (tpl) => {
      meta = `${volFile(tpl.volumes[0]!.imageId, tpl.volumes[0]!.volumeId)}.meta`;
      await run(['chattr', '+i', meta], { timeoutMs: 10_000 });
    });
    const notDeleted = job.error?.details?.cleanup?.notDeleted ?? [];
    t.same(notDeleted.map((v: Disk) => v.imageId), [va.imageId], 'the job\'s error lists the image it could not delete');
    t.match(notDeleted[0]?.error, /.+/, `with the reason: ${notDeleted[0]?.error}`);
    t.match(job.error?.message, new RegExp(`1 volume\\(s\\) it made could not be deleted: ${va.imageId}`), 'its message says so');
    t.ok(ctl.logs.some((l) => l.includes('could not delete an image the failed job made') && l.includes(va.imageId)), 'a warning is logged');
    t.ok(existsSync(volFile(va.imageId, va.volumeId)), 'the volume is still on storage');
    await run(['chattr', '-i', meta], { timeoutMs: 10_000 });
    meta = '';
    const del = await ctl.call('DELETE', `/api/v1/templates/${job.targetId}`);
    t.equal((await jobEnd(ctl.call, del.body.id, 120_000)).state, 'succeeded', 'DELETE of the failed template succeeds');
    t.same(images(), before, 'and the domain holds exactly the images it held before');
  });

  if (!tplId) return;
  const tpl = (await ctl.call('GET', `/api/v1/templates/${tplId}`)).body;
  const [ta, tb] = tpl.volumes;
  const tplSums = { a: await sha(volFile(ta.imageId, ta.volumeId)), b: await sha(volFile(tb.imageId, tb.volumeId)) };
  for (const kind of ['full', 'thin'] as const) {
    await t.test(`a ${kind} clone whose second disk fails: its first disk's volume is deleted, never the template's; its disks are failed; a retry succeeds`, async (t) => {
      const before = images();
      const name = `${kind}-c`;
      hide(tb.imageId);
      const r = await ctl.call('POST', '/api/v1/vms', { body: { name, template: tplId, clone: kind } });
      t.equal(r.status, 202, 'vm.clone accepted');
      const job = await jobEnd(ctl.call, r.body.id, 180_000);
      unhide(tb.imageId);
      t.equal(job.state, 'failed', `the clone failed: ${jobSummary(job)}`);
      const vm = (await ctl.call('GET', `/api/v1/vms/${r.body.targetId}`)).body;
      const disks: Disk[] = await Promise.all(vm.spec.disks.map(async (d: { diskId: string }) => (await ctl.call('GET', `/api/v1/disks/${d.diskId}`)).body));
      t.same(images(), before, 'the domain holds exactly the images it held before (no volume of the clone left)');
      t.same((job.error?.details?.cleanup?.deleted ?? []).map((v: Disk) => v.imageId), [disks[1]!.imageId, disks[0]!.imageId], 'both of its images deleted, the last first');
      t.equal(job.params.memo?.madeVolumes?.length, 2, 'its first volume had been made, the second asked for');
      t.same([await sha(volFile(ta.imageId, ta.volumeId)), await sha(volFile(tb.imageId, tb.volumeId))], [tplSums.a, tplSums.b], 'the template\'s volumes are untouched');
      t.same(disks.map((d) => d.status), ['failed', 'failed'], 'both disks of the clone are failed');

      for (const d of disks) {
        const dd = await ctl.call('DELETE', `/api/v1/disks/${d.id}`);
        t.equal(dd.status, 409, `disk ${d.name} is still named by the VM (409)`);
      }
      t.equal((await ctl.call('DELETE', `/api/v1/vms/${vm.id}`)).status, 204, 'the failed VM is removed');
      for (const d of disks) {
        const dd = await ctl.call('DELETE', `/api/v1/disks/${d.id}`);
        t.equal((await jobEnd(ctl.call, dd.body.id, 120_000)).state, 'succeeded', `its failed disk ${d.name} is deleted`);
      }
      const again = await ctl.call('POST', '/api/v1/vms', { body: { name, template: tplId, clone: kind } });
      const retry = await jobEnd(ctl.call, again.body.id, 180_000);
      t.equal(retry.state, 'succeeded', `the retry succeeds: ${jobSummary(retry)}`);
      const vm2 = (await ctl.call('GET', `/api/v1/vms/${again.body.targetId}`)).body;
      const ready: Disk[] = await Promise.all(vm2.spec.disks.map(async (d: { diskId: string }) => (await ctl.call('GET', `/api/v1/disks/${d.diskId}`)).body));
      t.ok(ready.every((d) => d.status === 'ready' && existsSync(volFile(d.imageId, d.volumeId))), 'its two disks are ready, on storage');
    });
  }

  await t.test('a full clone resumed after kill -9 of the controller, then failing, deletes its first disk\'s volume, known to the resumed run only from the job\'s record', async (t) => {
    const before = images();
    // A slow copy of the template's vdb volume, asked of the agent directly (as the controller would, with its client
    // certificate), holds the agent's lock on that image: the clone's vdb copy waits for it.
    const pki = join(ctl.dir, 'pki');
    const port = (await ctl.call('GET', `/api/v1/hosts/${hostId}`)).body.port;
    const agent = await HostvisorClient.connect({ url: `wss://localhost:${port}/`, timeoutMs: 30_000,
      key: readFileSync(join(pki, 'private', 'client.key')), cert: readFileSync(join(pki, 'client.pem')), ca: readFileSync(join(pki, 'ca.pem')) });
    t.teardown(() => agent.close());
    const taskID = randomUUID();
    await agent.call('Volume.copy', { storagedomainID: sdId, imageID: tb.imageId, volumeID: tb.volumeId, dstSdUUID: sdId, dstImgUUID: randomUUID(), dstVolUUID: randomUUID(),
      volType: 'LEAF', volFormat: 'COW', preallocate: 'SPARSE', bandwidth: 1, taskID });
    await until('the slow copy runs', () => agent.call('Task.getStatus', { taskID }), (s) => (s.progress ?? 0) >= 1, 60_000, 100);
    const r = await ctl.call('POST', '/api/v1/vms', { body: { name: 'full-r', template: tplId, clone: 'full' } });
    const vm = (await ctl.call('GET', `/api/v1/vms/${r.body.targetId}`)).body;
    const diskIds: string[] = vm.spec.disks.map((d: { diskId: string }) => d.diskId);
    const atKill = await until('the job asks for its second volume', () => ctl.call('GET', `/api/v1/jobs/${r.body.id}`),
      (a) => a.body?.params?.memo?.[`cloneTask:${diskIds[1]}`] !== undefined, 120_000, 100);
    await ctl.kill9();
    t.equal(atKill.body.state, 'running', 'the job was running when the controller was killed');
    hide(tb.imageId);
    try {
      await ctl.start();
      const d0: Disk = (await ctl.call('GET', `/api/v1/disks/${diskIds[0]}`)).body;
      t.ok(d0.status === 'ready' && existsSync(volFile(d0.imageId, d0.volumeId)), 'the first disk is ready, its volume made by the first run (the resumed run skips it)');
      await agent.call('Task.stop', { taskID });
      await until('the slow copy ended', () => agent.call('Task.getStatus', { taskID }), (s) => s.taskState === 'finished', 60_000, 200);
      await agent.call('Task.clear', { taskID }).catch(() => undefined);
      const job = await jobEnd(ctl.call, r.body.id, 180_000);
      t.equal(job.state, 'failed', `the resumed clone failed: ${jobSummary(job)}`);
      t.ok(jobLogged(r.body.id, 'job resumed'), 'the restarted controller resumed it');
      t.ok((job.error?.details?.cleanup?.deleted ?? []).some((v: Disk) => v.imageId === d0.imageId), 'the first disk\'s image is among those deleted');
      t.same(job.error?.details?.cleanup?.notDeleted, [], 'none left undeleted');
      const disks: Disk[] = await Promise.all(diskIds.map(async (id) => (await ctl.call('GET', `/api/v1/disks/${id}`)).body));
      t.same(disks.map((d) => d.status), ['failed', 'failed'], 'both disks of the clone are failed');
    } finally {
      unhide(tb.imageId);
    }
    t.same(images(), before, 'the domain holds exactly the images it held before (the first disk\'s volume is gone)');
    t.same([await sha(volFile(ta.imageId, ta.volumeId)), await sha(volFile(tb.imageId, tb.volumeId))], [tplSums.a, tplSums.b], 'the template\'s volumes are untouched');
  });
});
