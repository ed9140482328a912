// Integration: VmStatsSampler on the real qemu:///system with the tiny TCG guest writing 100 MiB to
// its qcow2 vda: CPU time and vda's written bytes rise between a sample before the write and one
// after LAB-DD-DONE, and a write rate > 0 is seen while it writes.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Value } from '@sinclair/typebox/value';
import { DiskStats } from '../../../api/types.js';
import { createLogger } from '../../../agent/log.js';
import { VmStatsSampler } from '../../../agent/stats/vm-stats-sampler.js';
import { ensureRunDir, guestDomainXml, waitForSerialMarker } from '../../lab/guest.js';
import { LabConnection, destroyGuestQuietly, retrying, run } from './lab-libvirt.js';

const MiB = 1024 * 1024;

t.test('sampler on a real guest writing 100 MiB: cpuTimeNs and vda writeBytes rise, a writeRate > 0 is observed', async (t) => {
  const name = `hv-stats-${process.pid}`;
  const dir = await mkdtemp(join(ensureRunDir(), 'hv-stats-'));
  const serial = join(dir, 'serial.log');
  const image = join(dir, 'disk.qcow2');
  let lab: LabConnection | undefined;
  let sampler: VmStatsSampler | undefined;
  t.teardown(async () => {
    sampler?.stop();
    await destroyGuestQuietly(name);
    await lab?.close();
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  });

  await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1G']);
  const lc = await LabConnection.open();
  lab = lc;
  await destroyGuestQuietly(name, 10_000); // leftover of an earlier run with this pid, however unlikely
  const s = new VmStatsSampler({ getConnection: () => lc.get(), intervalMs: 250, log: createLogger({ level: 'error' }) });
  sampler = s;
  const sample = () => retrying('sampleNow', () => s.sampleNow());

  const dom = await (await lc.ready()).createXML(guestDomainXml({
    name,
    serialPath: serial,
    disk: { path: image, type: 'file', format: 'qcow2' },
    // 100 MiB in 64 KiB direct writes: slow enough (about a second) for several samples to fall inside it.
    cmdline: ['lab.delay=1', 'lab.dd=1600', 'lab.bs=64K', 'lab.end=wait'],
  }));
  const uuid = dom.uuid;
  await sample(); // the guest is still booting: nothing written yet
  const before = s.stats(uuid);
  const vdaBefore = before?.disks?.['vda'];
  t.ok(before && vdaBefore, 'the new guest and its vda are in the first sample');
  t.equal(before?.vmName, name);
  t.equal(before?.vcpuCount, 1);
  t.comment(`before: cpuTimeNs=${before?.cpuTimeNs} vda.writeBytes=${vdaBefore?.writeBytes}`);

  // Sample every 250 ms while the guest writes, recording the highest vda write rate seen.
  s.start();
  let maxWriteRate = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      maxWriteRate = Math.max(maxWriteRate, s.stats(uuid)?.disks?.['vda']?.writeRate ?? 0);
      await sleep(50);
    }
  })();
  try {
    const done = await waitForSerialMarker(serial, /LAB-DD-DONE rc=/, 240_000);
    t.match(done.line, /LAB-DD-DONE rc=0/, 'the guest wrote 100 MiB');
  } finally {
    polling = false;
    await poll;
    s.stop();
  }

  await sample(); // waits for a sample still in flight, then takes a fresh one after LAB-DD-DONE
  const after = s.stats(uuid);
  const vdaAfter = after?.disks?.['vda'];
  t.comment(`after: cpuTimeNs=${after?.cpuTimeNs} vda.writeBytes=${vdaAfter?.writeBytes}; ` +
    `max writeRate ${Math.round(maxWriteRate)} B/s`);
  t.ok((after?.cpuTimeNs ?? 0) > (before?.cpuTimeNs ?? Infinity), 'cpuTimeNs rose');
  t.ok((vdaAfter?.writeBytes ?? 0) - (vdaBefore?.writeBytes ?? Infinity) >= 100 * MiB, 'vda writeBytes rose by >= 100 MiB');
  t.ok(maxWriteRate > 0, 'a vda writeRate > 0 was observed while the guest wrote');
  t.ok((after?.sampleTime ?? 0) > (before?.sampleTime ?? Infinity), 'sampleTime advanced');
  t.ok((after?.cpuPct ?? -1) >= 0, `cpuPct ${after?.cpuPct}`);
  t.equal(vdaAfter?.capacity, 1024 * MiB, 'vda capacity is the 1 GiB of the image');
  t.ok(vdaAfter && Value.Check(DiskStats, vdaAfter), 'vda stats fit the DiskStats schema');
  t.ok(s.all().has(uuid), 'all() has the guest');

  await destroyGuestQuietly(name);
  await sample();
  t.equal(s.stats(uuid), undefined, 'a destroyed guest is dropped on the next sample');
});
