// disk.copy and disk.move across a controller kill -9 (issue 13): the real controller daemon and a
// real agent (the SPM) with a file domain and a block domain on a loop PV. A copy throttled to
// 24 MiB/s is under way when the controller is killed; the restarted controller resumes the job,
// follows the same SPM task to its end (the verb was sent once) and the copy is identical to the
// source with no volume left over. The same for a move, whose source is removed only after the
// copy. While the move runs, a start of the VM that uses the disk is refused (409 DiskBusy): the
// move would delete the disk under it when it runs on another host than the SPM.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../agent/storage/exec.js';
import { GiB, pidsMentioning, taskLab } from '../../agent/storage/tasks-fixture.js';
import { GUEST_DIR, serialPathFor } from '../../lab/guest.js';
import { fileAndBlockDomains } from './file-block-domains.js';
import { jobEnd, jobSummary, sleep, until } from './wait.js';

t.setTimeout(600_000);
const echo = !!process.env['HV_TEST_LOG'];
const INTERRUPTED = /^interrupted: the controller stopped during this step/;

t.test('disk copy and move resume after the controller is killed mid-copy', async (t) => {
  const tl = await taskLab(t, 'ctl-copy-resume');
  if (!tl) return;
  const { ctl, fd, bd, root, volFile, blockVolumes, compare, withBlock } = await fileAndBlockDomains(t, tl, { echo });

  /** Kills the controller once the job shows at least `pct` % (the copy under way), starts it again; returns the progress at the kill. */
  const killMidCopy = async (jobId: string, pct: number): Promise<number> => {
    const seen = await until(`job ${jobId} at ${pct} %`, () => ctl.call('GET', `/api/v1/jobs/${jobId}`), (a) => a.body?.progress >= pct || a.body?.state !== 'running', 120_000, 100);
    await ctl.kill9();
    await sleep(500);
    await ctl.start();
    return seen.body.progress;
  };
  /** The steps named `name`, and whether a step was cut by the kill (the executor marks it interrupted on resume). */
  const stepsOf = (job: Record<string, any>, name: string) => (job.steps as Array<{ name: string; detail?: string | null }>).filter((s) => s.name === name); // eslint-disable-line @typescript-eslint/no-explicit-any -- a job as JSON
  const interrupted = (job: Record<string, any>) => (job.steps as Array<{ detail?: string | null }>).some((s) => INTERRUPTED.test(s.detail ?? '')); // eslint-disable-line @typescript-eslint/no-explicit-any -- a job as JSON

  // The source: a thin 1 GiB disk with 256 MiB of data, about 11 s of copying at 24 MiB/s.
  const sj = await ctl.call('POST', '/api/v1/disks', { body: { name: 'src', storageDomainId: fd, sizeBytes: GiB, provisioning: 'thin' } });
  t.equal((await jobEnd(ctl.call, sj.body.id, 120_000)).state, 'succeeded', 'the source disk is made');
  const src = (await ctl.call('GET', `/api/v1/disks/${sj.body.targetId}`)).body;
  const srcFile = volFile(src.imageId, src.volumeId);
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 192M', '-c', 'write -P 0xc3 600M 64M', srcFile], { timeoutMs: 120_000 });

  let copyImage: string | undefined;
  await t.test('disk.copy: killed mid-copy, the resumed job follows the same task to done; one copy, identical, nothing left over', async (t) => {
    const before = await blockVolumes();
    const r = await ctl.call('POST', `/api/v1/disks/${src.id}/copy`, { body: { storageDomainId: bd, name: 'copy', bandwidthMiBs: 24 } });
    t.equal(r.status, 202, 'disk.copy accepted');
    const at = await killMidCopy(r.body.id, 5);
    t.ok(at >= 5 && at < 100, `the controller was killed with the copy at ${at} %`);
    const job = await jobEnd(ctl.call, r.body.id, 300_000);
    t.equal(job.state, 'succeeded', `the resumed job: ${jobSummary(job)}`);
    t.ok(interrupted(job), 'a step of it was interrupted by the kill (the job was resumed, not run anew)');
    t.equal(stepsOf(job, 'Volume.copy').length, 1, 'the Volume.copy verb was sent once: the resumed run followed the task it had sent');
    const d = (await ctl.call('GET', `/api/v1/disks/${r.body.targetId}`)).body;
    t.same([d.status, d.storageDomainId], ['ready', bd], 'the copy is a ready disk on the block domain');
    t.same(await blockVolumes(), [...before, d.volumeId].sort(), 'the block domain has one new volume: the copy');
    t.equal(((await ctl.call('GET', '/api/v1/disks')).body as Array<{ name: string }>).filter((x) => x.name === 'copy').length, 1, 'one disk record for it');
    const cmp = await withBlock(d.imageId, (p) => compare(srcFile, 'qcow2', p, 'qcow2'));
    t.equal(cmp.rc, 0, `qemu-img compare source vs copy: ${cmp.stdout.trim()}`);
    t.same(await pidsMentioning(d.volumeId), [], 'no qemu-img left running');
    copyImage = d.imageId;
  });

  await t.test('disk.move: a start of the disk\'s VM is refused while it runs (409 DiskBusy); killed mid-copy, it resumes and ends with the disk on the target, the source gone', async (t) => {
    const spec = { memoryMiB: 128, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
      cmdline: 'console=ttyS0 quiet panic=-1 lab.end=wait', serialLog: serialPathFor('move-vm'), disks: [{ name: 'vda', diskId: src.id }] };
    const vm = await ctl.call('POST', '/api/v1/vms', { body: { name: 'move-vm', spec } });
    t.equal(vm.status, 201, 'a stopped VM with the source disk is defined');
    t.teardown(async () => { await ctl.call('DELETE', `/api/v1/vms/${vm.body.id}`).catch(() => undefined); });
    const before = await blockVolumes();
    const r = await ctl.call('POST', `/api/v1/disks/${src.id}/move`, { body: { storageDomainId: bd, bandwidthMiBs: 24 } });
    t.equal(r.status, 202, 'disk.move accepted');
    await until('the move copies', () => ctl.call('GET', `/api/v1/jobs/${r.body.id}`), (a) => a.body?.progress >= 1 || a.body?.state !== 'running', 120_000, 100);
    const start = await ctl.call('POST', `/api/v1/vms/${vm.body.id}/start`);
    t.same([start.status, start.body.details?.reason, start.body.details?.job], [409, 'DiskBusy', r.body.id], `vm.start during the move: ${start.body.message}`);
    t.equal((await ctl.call('GET', `/api/v1/vms/${vm.body.id}`)).body.desiredState, 'down', 'the VM stays meant to be down');

    const at = await killMidCopy(r.body.id, 5);
    t.ok(at >= 5 && at < 100, `the controller was killed with the move's copy at ${at} %`);
    t.ok(existsSync(srcFile), 'the source volume is still there while the move copies');
    const again = await ctl.call('POST', `/api/v1/vms/${vm.body.id}/start`);
    t.same([again.status, again.body.details?.reason], [409, 'DiskBusy'], 'after the restart, the resumed move still refuses the start');
    const job = await jobEnd(ctl.call, r.body.id, 300_000);
    t.equal(job.state, 'succeeded', `the resumed move: ${jobSummary(job)}`);
    t.ok(interrupted(job), 'a step of it was interrupted by the kill');
    t.equal(stepsOf(job, 'Image.move').length, 1, 'the Image.move verb was sent once');
    const moved = (await ctl.call('GET', `/api/v1/disks/${src.id}`)).body;
    t.same([moved.storageDomainId, moved.imageId, moved.volumeId, moved.status], [bd, src.imageId, src.volumeId, 'ready'], 'the record points at the block domain, same ids');
    t.same(await blockVolumes(), [...before, src.volumeId].sort(), 'the block domain has one new volume: the moved one');
    const imageDir = join(root, fd, 'images', src.imageId);
    t.notOk(existsSync(imageDir) && readdirSync(imageDir).some((f) => !f.startsWith('.')), 'the source image is gone from the file domain');
    if (copyImage) {
      const other = copyImage;
      const cmp = await withBlock(src.imageId, (m) => withBlock(other, (c) => compare(m, 'qcow2', c, 'qcow2')));
      t.equal(cmp.rc, 0, `the moved disk holds the source's data (qemu-img compare with the earlier copy): ${cmp.stdout.trim()}`);
    }
  });
});
