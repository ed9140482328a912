// Templates and clones through the real controller daemon (its REST API, every part installed as
// it runs) and a real agent enrolled with a token on the real libvirtd, a file storage domain in
// the storage lab, a sanlock daemon: a template of a stopped VM (409 while it runs) is a SHARED
// volume holding the VM disk's data; two thin clones are qcow2 volumes over it (one boots the tiny
// guest), a full clone an independent copy; DELETE of the template answers 409 naming the thin
// clones while they (or their disks) exist, and succeeds once they are gone, removing its volume.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../agent/storage/exec.js';
import { GiB, taskLab } from '../../agent/storage/tasks-fixture.js';
import { GUEST_DIR, serialPathFor, waitForSerialMarker } from '../../lab/guest.js';
import { fileDomainHost } from '../storage/file-domain-host.js';
import { jobEnd, jobSummary, until } from '../storage/wait.js';

t.setTimeout(600_000);
const echo = !!process.env['HV_TEST_LOG'];
const PATTERN = '0x5a';

async function qemuInfo(file: string): Promise<{ format: string; 'virtual-size': number; 'backing-filename'?: string }> {
  return JSON.parse((await run(['qemu-img', 'info', '--output=json', '-U', file], { timeoutMs: 30_000 })).stdout);
}

/** Reads the first MiB through the volume's chain and checks it holds the pattern. */
async function holdsPattern(file: string, fmt: string): Promise<boolean> {
  const r = await run(['qemu-io', '-r', '-U', '-f', fmt, '-c', `read -P ${PATTERN} 0 1M`, file], { timeoutMs: 30_000, okCodes: [0, 1] });
  return /read 1048576\/1048576 bytes/.test(r.stdout) && !/Pattern verification failed/.test(r.stdout);
}

t.test('templates and thin/full clones through the controller daemon', async (t) => {
  const tl = await taskLab(t, 'ctl-templates');
  if (!tl) return;
  const { ctl, sdId, root } = await fileDomainHost(t, tl, { echo, libvirtUri: 'qemu:///system',
    settings: { pollIntervalMs: 1_000, pollTimeoutMs: 1_000, vmListIntervalMs: 1_000, hostFactsRefreshMs: 2_000 } });
  const volFile = (imageId: string, volumeId: string) => join(root, sdId, 'images', imageId, volumeId);
  // A VM this test started is stopped even when an assertion fails midway (the libvirtd outlives the agent).
  const started = new Set<string>();
  t.teardown(async () => {
    for (const id of started) {
      const r = await ctl.call('POST', `/api/v1/vms/${id}/stop`).catch(() => undefined);
      if (r?.status === 202) await jobEnd(ctl.call, r.body.id, 60_000).catch(() => undefined);
    }
  });

  // The source VM: a thin disk holding a known pattern in its first MiB.
  const dj = await ctl.call('POST', '/api/v1/disks', { body: { name: 'src-root', storageDomainId: sdId, sizeBytes: GiB, provisioning: 'thin' } });
  t.equal((await jobEnd(ctl.call, dj.body.id, 120_000)).state, 'succeeded', 'the source disk is made');
  const srcDisk = (await ctl.call('GET', `/api/v1/disks/${dj.body.targetId}`)).body;
  await run(['qemu-io', '-f', 'qcow2', '-c', `write -P ${PATTERN} 0 1M`, volFile(srcDisk.imageId, srcDisk.volumeId)], { timeoutMs: 30_000 });
  const guestSpec = (name: string) => ({ memoryMiB: 128, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
    cmdline: 'console=ttyS0 quiet panic=-1 lab.end=wait', serialLog: serialPathFor(name) });
  const src = await ctl.call('POST', '/api/v1/vms', { body: { name: 'tpl-src', spec: { ...guestSpec('tpl-src'), disks: [{ name: 'vda', diskId: srcDisk.id }] } } });
  t.equal(src.status, 201, 'the source VM is defined');

  let tplId = '';
  await t.test('a template of a stopped VM: 409 while it runs; a SHARED volume with the disk\'s data', async (t) => {
    const start = await ctl.call('POST', `/api/v1/vms/${src.body.id}/start`);
    started.add(src.body.id);
    const sj = await jobEnd(ctl.call, start.body.id, 120_000);
    t.equal(sj.state, 'succeeded', `the source VM started: ${jobSummary(sj)}`);
    const refused = await ctl.call('POST', '/api/v1/templates', { body: { vm: 'tpl-src', name: 'tpl1' } });
    t.same([refused.status, refused.body.details?.reason], [409, 'VmNotStopped'], `refused while it runs: ${refused.body.message}`);
    const stop = await ctl.call('POST', `/api/v1/vms/${src.body.id}/stop`);
    t.equal((await jobEnd(ctl.call, stop.body.id, 60_000)).state, 'succeeded', 'the source VM stopped');
    await until('the VM is Down', () => ctl.call('GET', `/api/v1/vms/${src.body.id}`), (a) => a.body?.status === 'Down', 30_000);

    const made = await ctl.call('POST', '/api/v1/templates', { body: { vm: 'tpl-src', name: 'tpl1' } });
    t.equal(made.status, 202, 'template.create accepted');
    const job = await jobEnd(ctl.call, made.body.id, 180_000);
    t.equal(job.state, 'succeeded', `template.create: ${jobSummary(job)}`);
    t.equal(job.progress, 100, 'its progress reached 100');
    t.ok(job.steps.some((s: { name: string }) => s.name === 'Volume.copy'), 'it ran a Volume.copy task');
    tplId = made.body.targetId;
    const tpl = (await ctl.call('GET', `/api/v1/templates/${tplId}`)).body;
    t.same([tpl.status, tpl.volumes.length, tpl.volumes[0].name], ['ready', 1, 'vda'], 'GET /templates/{id}: ready, one volume for vda');
    t.ok((await ctl.call('GET', '/api/v1/templates')).body.some((x: { id: string }) => x.id === tplId), 'listed by GET /templates');
    const v = tpl.volumes[0];
    const file = volFile(v.imageId, v.volumeId);
    t.match(readFileSync(`${file}.meta`, 'utf8'), /VOLTYPE=SHARED/, 'the volume is SHARED on storage');
    t.equal((await qemuInfo(file))['backing-filename'], undefined, 'a whole volume (the chain collapsed)');
    t.ok(await holdsPattern(file, (await qemuInfo(file)).format), 'it holds the source disk\'s data');
  });
  if (!tplId) return;
  const tpl = (await ctl.call('GET', `/api/v1/templates/${tplId}`)).body;
  const tplFile = volFile(tpl.volumes[0].imageId, tpl.volumes[0].volumeId);

  const clones: { id: string; name: string; diskId: string }[] = [];
  await t.test('two thin clones: qcow2 volumes over the template volume, seeing its data; one boots', async (t) => {
    for (const name of ['thin-a', 'thin-b']) {
      const r = await ctl.call('POST', '/api/v1/vms', { body: { name, template: 'tpl1', clone: 'thin', spec: { serialLog: serialPathFor(name) } } });
      t.equal(r.status, 202, `${name}: vm.clone accepted`);
      const job = await jobEnd(ctl.call, r.body.id, 120_000);
      t.equal(job.state, 'succeeded', `${name}: ${jobSummary(job)}`);
      const vm = (await ctl.call('GET', `/api/v1/vms/${r.body.targetId}`)).body;
      const disk = (await ctl.call('GET', `/api/v1/disks/${vm.spec.disks[0].diskId}`)).body;
      t.same([vm.spec.disks[0].name, disk.status, disk.vmId], ['vda', 'ready', vm.id], `${name}: its vda is a ready disk of its own`);
      t.same([vm.spec.memoryMiB, vm.spec.kernel, vm.spec.serialLog], [128, `${GUEST_DIR}/vmlinux`, serialPathFor(name)], `${name}: the template's spec, with its own serial log`);
      const file = volFile(disk.imageId, disk.volumeId);
      const info = await qemuInfo(file);
      t.ok(info.format === 'qcow2' && (info['backing-filename'] ?? '').includes(tpl.volumes[0].volumeId), `${name}: qcow2 backed by the template volume (${info['backing-filename']})`);
      t.ok(await holdsPattern(file, 'qcow2'), `${name}: reads the template's data through its chain`);
      clones.push({ id: vm.id, name, diskId: disk.id });
    }
    const before = (await run(['sha256sum', tplFile], { timeoutMs: 60_000 })).stdout.split(' ')[0];
    const start = await ctl.call('POST', `/api/v1/vms/${clones[0]!.id}/start`);
    started.add(clones[0]!.id);
    const sj = await jobEnd(ctl.call, start.body.id, 120_000);
    t.equal(sj.state, 'succeeded', `thin-a started: ${jobSummary(sj)}`);
    const boot = await waitForSerialMarker(serialPathFor('thin-a'), 'LAB-BOOT-OK', 120_000);
    t.ok(boot, 'thin-a\'s guest booted');
    const stop = await ctl.call('POST', `/api/v1/vms/${clones[0]!.id}/stop`);
    t.equal((await jobEnd(ctl.call, stop.body.id, 60_000)).state, 'succeeded', 'thin-a stopped');
    t.equal((await run(['sha256sum', tplFile], { timeoutMs: 60_000 })).stdout.split(' ')[0], before, 'the template volume is unchanged by the clone\'s run');
  });

  await t.test('a full clone: an independent copy, not a dependent', async (t) => {
    const r = await ctl.call('POST', '/api/v1/vms', { body: { name: 'full-a', template: tplId, clone: 'full' } });
    const job = await jobEnd(ctl.call, r.body.id, 180_000);
    t.equal(job.state, 'succeeded', `full-a: ${jobSummary(job)}`);
    const vm = (await ctl.call('GET', `/api/v1/vms/${r.body.targetId}`)).body;
    const disk = (await ctl.call('GET', `/api/v1/disks/${vm.spec.disks[0].diskId}`)).body;
    const file = volFile(disk.imageId, disk.volumeId);
    t.equal((await qemuInfo(file))['backing-filename'], undefined, 'no backing file');
    t.ok(await holdsPattern(file, (await qemuInfo(file)).format), 'it holds the template\'s data');
    t.notMatch(readFileSync(`${file}.meta`, 'utf8'), /VOLTYPE=SHARED/, 'an ordinary writable volume, not SHARED');
  });

  await t.test('DELETE /templates: 409 naming the thin clones while they exist, then the template and its volume go', async (t) => {
    const refused = await ctl.call('DELETE', `/api/v1/templates/${tplId}`);
    t.equal(refused.status, 409, `409: ${refused.body.message}`);
    t.same((refused.body.details?.vms ?? []).map((v: { name: string }) => v.name).sort(), ['thin-a', 'thin-b'], 'naming the two thin clones (not the full one)');
    for (const c of clones) t.equal((await ctl.call('DELETE', `/api/v1/vms/${c.id}`)).status, 204, `${c.name} removed`);
    const disksLeft = await ctl.call('DELETE', `/api/v1/templates/${tplId}`);
    t.same([disksLeft.status, disksLeft.body.details?.disks?.length], [409, 2], 'still 409 while the clones\' disks (their overlays) exist');
    for (const c of clones) {
      const d = await ctl.call('DELETE', `/api/v1/disks/${c.diskId}`);
      t.equal((await jobEnd(ctl.call, d.body.id, 120_000)).state, 'succeeded', `${c.name}'s disk deleted`);
    }
    const del = await ctl.call('DELETE', `/api/v1/templates/${tplId}`);
    t.equal(del.status, 202, 'template.delete accepted');
    const job = await jobEnd(ctl.call, del.body.id, 120_000);
    t.equal(job.state, 'succeeded', `template.delete: ${jobSummary(job)}`);
    t.equal((await ctl.call('GET', `/api/v1/templates/${tplId}`)).status, 404, 'gone from the API');
    t.notOk(existsSync(tplFile), 'and its volume from storage');
  });
});
