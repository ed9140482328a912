// Disk copy and move (issue 13) through the real controller daemon (its REST API and
// hostvisor-ctl) and a real agent enrolled on the main host's libvirtd, with a file domain (the
// pool master) and a block domain on a loop PV of the storage lab: copies file -> block and
// block -> file are identical to the source (qemu-img compare) while the job's progress rises to
// 100; a cancel mid-copy leaves no volume and no disk record; a running VM's disk is refused
// (409 naming the VM); a cancelled move leaves the disk where it was, a finished one points the
// record at the block domain with the source gone.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../agent/storage/exec.js';
import { GiB, taskLab } from '../../agent/storage/tasks-fixture.js';
import { GUEST_DIR, serialPathFor } from '../../lab/guest.js';
import { fileAndBlockDomains } from './file-block-domains.js';
import { jobEnd, jobSummary, sleep, until } from './wait.js';

t.setTimeout(600_000);
const echo = !!process.env['HV_TEST_LOG'];
const CTL = join(import.meta.dirname, '..', '..', '..', '..', 'bin', 'hostvisor-ctl');

t.test('disk copy and move between a file and a block domain through the controller daemon', async (t) => {
  const tl = await taskLab(t, 'ctl-disk-copy');
  if (!tl) return;
  const { ctl, fd, bd, root, volFile, blockVolumes, compare, withBlock } = await fileAndBlockDomains(t, tl, { echo });
  /** Follows a job to its end, recording each new progress value GET /jobs/{id} shows. */
  const follow = async (jobId: string, onProgress?: (p: number) => Promise<boolean | void>) => {
    const seen: number[] = [];
    const end = Date.now() + 300_000;
    for (;;) {
      const j = (await ctl.call('GET', `/api/v1/jobs/${jobId}`)).body;
      if (seen.at(-1) !== j.progress) { seen.push(j.progress); if (await onProgress?.(j.progress)) onProgress = undefined; }
      if (j.state === 'succeeded' || j.state === 'failed') return { job: j, seen };
      if (Date.now() > end) throw new Error(`job ${jobId} not ended in 300 s: ${jobSummary(j)}`);
      await sleep(100);
    }
  };

  // The source: a thin 1 GiB disk on the file domain with 384 MiB of data in three patterns.
  const sj = await ctl.call('POST', '/api/v1/disks', { body: { name: 'src', storageDomainId: fd, sizeBytes: GiB, provisioning: 'thin' } });
  t.equal((await jobEnd(ctl.call, sj.body.id, 120_000)).state, 'succeeded', 'the source disk is made');
  const src = (await ctl.call('GET', `/api/v1/disks/${sj.body.targetId}`)).body;
  const srcFile = volFile(src.imageId, src.volumeId);
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 256M', '-c', 'write -P 0xc3 400M 64M', '-c', 'write -P 0x11 900M 64M', srcFile], { timeoutMs: 120_000 });

  let blockCopy: { id: string; imageId: string; volumeId: string } | undefined;
  /** The progress values GET /jobs showed for each copy or move that ran to its end. */
  const sequences: number[][] = [];
  await t.test('copy file -> block: a new ready disk on the block domain, qemu-img compare identical, the job\'s progress rising to 100', async (t) => {
    const r = await ctl.call('POST', `/api/v1/disks/${src.id}/copy`, { body: { storageDomainId: bd, name: 'src-on-block' } });
    t.equal(r.status, 202, 'disk.copy accepted');
    t.equal(r.body.kind, 'disk.copy', 'a disk.copy job');
    const { job, seen } = await follow(r.body.id);
    t.equal(job.state, 'succeeded', `disk.copy: ${jobSummary(job)}`);
    t.comment(`file -> block progress seen by GET /jobs: ${seen.join(',')}`);
    t.ok(seen.every((p, i) => i === 0 || p > seen[i - 1]!), 'progress never goes down');
    t.equal(seen.at(-1), 100, 'it ends at 100');
    // The job follows the task's |storage|task_status| events (each whole percent), not only its polls
    // (200 ms to 1 s apart): checked over all the jobs of the file, at the end (a copy lasts 1-3 s here).
    sequences.push(seen);
    t.ok(job.steps.some((s: { name: string }) => s.name === 'Volume.copy'), 'it ran a Volume.copy task on the SPM');
    const d = (await ctl.call('GET', `/api/v1/disks/${r.body.targetId}`)).body;
    t.same([d.name, d.status, d.storageDomainId, d.sizeBytes, d.provisioning, d.vmId], ['src-on-block', 'ready', bd, GiB, 'thin', null], 'GET /disks/{id}: a ready thin disk on the block domain');
    t.not(d.imageId, src.imageId, 'an image of its own');
    const cmp = await withBlock(d.imageId, (p) => compare(srcFile, 'qcow2', p, 'qcow2'));
    t.equal(cmp.rc, 0, `qemu-img compare source vs block copy: ${cmp.stdout.trim()}`);
    blockCopy = d;
  });

  await t.test('copy block -> file: identical to the source again', async (t) => {
    if (!blockCopy) { t.fail('no block copy to copy back'); return; }
    const r = await ctl.call('POST', `/api/v1/disks/${blockCopy.id}/copy`, { body: { storageDomainId: fd } });
    const { job, seen } = await follow(r.body.id);
    t.equal(job.state, 'succeeded', `disk.copy: ${jobSummary(job)}`);
    t.comment(`block -> file progress seen by GET /jobs: ${seen.join(',')}`);
    sequences.push(seen);
    t.equal(seen.at(-1), 100, 'it ends at 100');
    const d = (await ctl.call('GET', `/api/v1/disks/${r.body.targetId}`)).body;
    t.same([d.name, d.status, d.storageDomainId], ['src-on-block-copy', 'ready', fd], 'a ready disk on the file domain, named <disk>-copy');
    const cmp = await compare(srcFile, 'qcow2', volFile(d.imageId, d.volumeId), 'qcow2');
    t.equal(cmp.rc, 0, `qemu-img compare source vs the copy back: ${cmp.stdout.trim()}`);
  });

  await t.test('a cancel mid-copy: Task.stop rolls it back; no volume on the block domain, no disk record; the job fails Cancelled', async (t) => {
    const before = await blockVolumes();
    // 32 MiB/s: the 384 MiB copy takes about 12 s, so the cancel lands while qemu-img runs (unbounded, on an idle machine, it was over in under a second).
    const r = await ctl.call('POST', `/api/v1/disks/${src.id}/copy`, { body: { storageDomainId: bd, name: 'to-cancel', bandwidthMiBs: 32 } });
    let cancelledAt: number | undefined;
    let cancelAnswer: { status: number; body: Record<string, unknown> } | undefined;
    const { job, seen } = await follow(r.body.id, async (p) => {
      if (p < 1) return false;
      cancelledAt = p;
      cancelAnswer = await ctl.call('POST', `/api/v1/jobs/${r.body.id}/cancel`);
      return true;
    });
    t.comment(`progress seen: ${seen.join(',')}; cancelled at ${cancelledAt}%`);
    t.ok(cancelledAt !== undefined && cancelledAt < 100, `cancelled mid-copy, at ${cancelledAt}%`);
    t.equal(cancelAnswer?.status, 202, 'POST /jobs/{id}/cancel: 202');
    t.same([job.state, job.error?.code], ['failed', 'Cancelled'], `the job ends failed, code Cancelled: ${job.error?.message}`);
    t.match(job.error?.message ?? '', /stopped and rolled back.*qemu-img convert was stopped after/, 'stopped while qemu-img ran, and rolled back');
    t.equal((await ctl.call('GET', `/api/v1/disks/${r.body.targetId}`)).status, 404, 'the new disk record is gone');
    t.same(await blockVolumes(), before, 'the block domain has the volumes it had (the half copy was removed)');
    const ended = await ctl.call('POST', `/api/v1/jobs/${r.body.id}/cancel`);
    t.same([ended.status, ended.body.details?.reason], [409, 'JobEnded'], 'a second cancel: 409 JobEnded');
  });

  await t.test('cancel of a job that cannot roll back: 409 JobNotCancellable', async (t) => {
    const r = await ctl.call('POST', '/api/v1/disks', { body: { name: 'prealloc', storageDomainId: fd, sizeBytes: 256 * 1024 * 1024, provisioning: 'preallocated' } });
    const c = await ctl.call('POST', `/api/v1/jobs/${r.body.id}/cancel`);
    t.same([c.status, c.body.code, c.body.details?.reason], [409, 'Conflict', 'JobNotCancellable'], `disk.create: ${c.body.message}`);
    t.equal((await jobEnd(ctl.call, r.body.id, 120_000)).state, 'succeeded', 'and it runs to its end');
  });

  await t.test('a running VM\'s disk: move and copy answer 409 naming the VM', async (t) => {
    const spec = { memoryMiB: 128, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
      cmdline: 'console=ttyS0 quiet panic=-1 lab.end=wait', serialLog: serialPathFor('copy-vm'), disks: [{ name: 'vda', diskId: src.id }] };
    const vm = await ctl.call('POST', '/api/v1/vms', { body: { name: 'copy-vm', spec } });
    t.equal(vm.status, 201, 'a VM with the source disk is defined');
    const start = await ctl.call('POST', `/api/v1/vms/${vm.body.id}/start`);
    t.teardown(async () => {
      const s = await ctl.call('POST', `/api/v1/vms/${vm.body.id}/stop`).catch(() => undefined);
      if (s?.status === 202) await jobEnd(ctl.call, s.body.id, 60_000).catch(() => undefined);
      await until('the VM is Down', () => ctl.call('GET', `/api/v1/vms/${vm.body.id}`), (a) => a.body?.status === 'Down', 30_000).catch(() => undefined);
      await ctl.call('DELETE', `/api/v1/vms/${vm.body.id}`).catch(() => undefined);
    });
    t.equal((await jobEnd(ctl.call, start.body.id, 120_000)).state, 'succeeded', 'the VM started');
    const move = await ctl.call('POST', `/api/v1/disks/${src.id}/move`, { body: { storageDomainId: bd } });
    t.same([move.status, move.body.code, move.body.details?.reason, move.body.details?.vmName], [409, 'Conflict', 'DiskInUse', 'copy-vm'], `move: ${move.body.message}`);
    t.match(move.body.message, /copy-vm.*live storage migration is not supported/, 'the message names the VM and says why');
    const copy = await ctl.call('POST', `/api/v1/disks/${src.id}/copy`, { body: { storageDomainId: bd } });
    t.same([copy.status, copy.body.details?.reason, copy.body.details?.vmName], [409, 'DiskInUse', 'copy-vm'], `copy: ${copy.body.message}`);
    t.equal((await ctl.call('GET', `/api/v1/disks/${src.id}`)).body.storageDomainId, fd, 'the disk stays on the file domain');
  });

  await t.test('move file -> block: a cancel leaves it where it was; a finished move points the record at the block domain, the source gone', async (t) => {
    await until('the VM is Down', () => ctl.call('GET', '/api/v1/vms'), (a) => (a.body as Array<{ status: string }>).every((v) => v.status === 'Down'), 60_000);
    const vms = (await ctl.call('GET', '/api/v1/vms')).body as Array<{ id: string }>;
    for (const v of vms) await ctl.call('DELETE', `/api/v1/vms/${v.id}`);
    const before = await blockVolumes();
    const r1 = await ctl.call('POST', `/api/v1/disks/${src.id}/move`, { body: { storageDomainId: bd } });
    t.equal(r1.status, 202, 'disk.move accepted');
    // Cancelled as soon as the task is sent: qemu-img's progress reaches 99 % long before a move's
    // commit point on this machine (see the copy's cancel), and a cancel past it has nothing to undo.
    await until('the Image.move task is sent', () => ctl.call('GET', `/api/v1/jobs/${r1.body.id}`),
      (a) => (a.body?.steps ?? []).some((s: { name: string }) => s.name === 'follow the task') || a.body?.state !== 'running' && a.body?.state !== 'pending', 60_000, 50);
    const cancel = await ctl.call('POST', `/api/v1/jobs/${r1.body.id}/cancel`);
    t.equal(cancel.status, 202, 'cancel accepted');
    const c = await follow(r1.body.id);
    t.comment(`move progress seen after the cancel: ${c.seen.join(',')}`);
    t.same([c.job.state, c.job.error?.code], ['failed', 'Cancelled'], `cancelled: ${c.job.error?.message}`);
    t.match(c.job.error?.message ?? '', /stopped and rolled back/, 'the task was stopped and rolled back');
    const kept = (await ctl.call('GET', `/api/v1/disks/${src.id}`)).body;
    t.equal(kept.storageDomainId, fd, 'the disk record still says the file domain');
    t.ok(existsSync(srcFile), 'its volume is still on the file domain');
    t.same(await blockVolumes(), before, 'nothing left on the block domain');

    const r2 = await ctl.call('POST', `/api/v1/disks/${src.id}/move`, { body: { storageDomainId: bd } });
    if (r2.status !== 202) { t.fail(`the second move was not accepted: ${r2.status} ${r2.body.message}`); return; }
    const { job, seen } = await follow(r2.body.id);
    t.equal(job.state, 'succeeded', `disk.move: ${jobSummary(job)}`);
    t.comment(`move progress seen: ${seen.join(',')}`);
    sequences.push(seen);
    t.equal(seen.at(-1), 100, 'it ends at 100');
    const moved = (await ctl.call('GET', `/api/v1/disks/${src.id}`)).body;
    t.same([moved.storageDomainId, moved.imageId, moved.volumeId, moved.status], [bd, src.imageId, src.volumeId, 'ready'], 'the record points at the block domain, same image and volume ids');
    t.notOk(existsSync(join(root, fd, 'images', src.imageId)) && readdirSync(join(root, fd, 'images', src.imageId)).some((f) => !f.startsWith('.')), 'the source image is gone from the file domain');
    if (blockCopy) {
      const copyId = blockCopy.imageId;
      const cmp = await withBlock(src.imageId, (moved) => withBlock(copyId, (other) => compare(moved, 'qcow2', other, 'qcow2')));
      t.equal(cmp.rc, 0, `the moved disk holds the source's data (qemu-img compare with the first copy): ${cmp.stdout.trim()}`);
    }
  });

  const hvctl = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(CTL, ['--url', ctl.url, '--creds', join(ctl.dir, 'admin'), ...args], { timeout: 320_000 },
      (e, stdout, stderr) => resolve({ code: e ? (e as { code?: number }).code ?? -1 : 0, stdout, stderr }));
  });

  await t.test('hostvisor-ctl jobs cancel: the copy is rolled back, its disk record gone', async (t) => {
    const before = await blockVolumes();
    const r = await ctl.call('POST', `/api/v1/disks/${src.id}/copy`, { body: { storageDomainId: bd, name: 'cli-cancel' } });
    const c = await hvctl('jobs', 'cancel', r.body.id);
    t.equal(c.code, 0, `exit 0: ${c.stdout.trim()} ${c.stderr.trim()}`);
    const job = await jobEnd(ctl.call, r.body.id, 120_000);
    t.same([job.state, job.error?.code], ['failed', 'Cancelled'], `cancelled: ${job.error?.message}`);
    t.equal((await ctl.call('GET', `/api/v1/disks/${r.body.targetId}`)).status, 404, 'no disk record');
    t.same(await blockVolumes(), before, 'no volume left on the block domain');
    const again = await hvctl('jobs', 'cancel', r.body.id);
    t.equal(again.code, 1, `an ended job: exit 1 (${again.stderr.trim()})`);
  });

  await t.test('hostvisor-ctl disks copy: waits with a progress bar to done', async (t) => {
    const r = await hvctl('disks', 'copy', 'src', '--domain', 'fd', '--name', 'cli-copy', '--timeout', '300');
    t.equal(r.code, 0, `exit 0 ${r.stderr.trim()}`);
    const bars = r.stdout.split('\n').filter((l) => /^\[[#-]{30}\]\s+\d+%/.test(l));
    t.comment(bars.join('\n'));
    t.ok(bars.length >= 2, `progress bar lines: ${bars.length}`);
    t.match(bars.at(-1) ?? '', /100% succeeded/, 'the last bar shows 100% succeeded');
    sequences.push(bars.map((b) => Number(/(\d+)%/.exec(b)![1])));
    t.ok(sequences.some((q) => q.some((p) => p > 0 && p < 100)), `the jobs showed progress between 0 and 100 before their end: ${sequences.map((q) => q.join(',')).join(' | ')}`);
    // Polls alone (at 0.2, 0.6, 1.4, 2.4 s ...) give one value a second at best: six in a copy of a few seconds need the events.
    t.ok(sequences.some((q) => q.filter((p) => p > 0 && p < 100).length >= 3), 'one job at least showed 3 values between 0 and 100: its progress follows the task\'s events');
    t.match(r.stdout, /copy of disk src .*: done/, 'and says done');
    const d = ((await ctl.call('GET', '/api/v1/disks')).body as Array<{ name: string; status: string; storageDomainId: string }>).find((x) => x.name === 'cli-copy');
    t.same([d?.status, d?.storageDomainId], ['ready', fd], 'the copy is a ready disk on the file domain');
  });
});
