// Integration: thin provisioning's storage half. The SPM grows a thin COW
// volume's LV with extendLV (LVM metadata only); a host running the VM sees
// the new size on its loop device after refreshVolume.
import t from 'tap';
import { stat } from 'node:fs/promises';
import { BlockStorageDomain } from '../../../agent/storage/block-domain.js';
import { blockDomainOptions } from '../../../agent/storage/index.js';
import { QemuImg } from '../../../agent/storage/qemu-img.js';
import { GiB, MiB } from '../../../agent/storage/types.js';
import { blockSize, storageLab, testLog, uuid } from './storage-lab.js';

t.test('extendLV grows the LV in LVM metadata; refresh grows the loop device; repeats are no-ops; 1.1 × capacity caps it', async (t) => {
  const lab = await storageLab('extend');
  t.teardown(() => lab.cleanup());
  const pv = await lab.makePv(8);
  const sdUUID = uuid();
  const s = lab.settings();
  const spm = await BlockStorageDomain.create(sdUUID, { ...blockDomainOptions(s, lab.driver('spm'), [pv], { log: testLog }), extentSizeMiB: 4, pvMetadataSizeMiB: 16 });
  const img = uuid();
  const vol = uuid();
  await spm.createVolume({ imgUUID: img, volUUID: vol, capacity: 1 * GiB, format: 'COW', allocation: 'SPARSE' });

  // The host that runs the VM.
  const hsmDriver = lab.driver('hsm');
  const hsm = await BlockStorageDomain.open(sdUUID, blockDomainOptions(lab.settings('hsm'), hsmDriver, [pv], { log: testLog }));
  const prepared = await hsm.prepareImage(img);
  t.equal(await blockSize(prepared.path), 64 * MiB, 'the prepared thin volume starts at 64 MiB');
  t.equal((await new QemuImg({ timeoutMs: 30_000 }).info(prepared.path)).virtualSize, 1 * GiB);
  const free0 = (await spm.getStats()).freeBytes;

  const r1 = await spm.extendLV(vol, 130);
  t.match(r1, { volUUID: vol, size: 132 * MiB, extended: true, capped: false }, 'rounded up to whole 4 MiB extents');
  t.ok(r1.phasesMs['lvextend'] !== undefined, `phase times are reported (${JSON.stringify(r1.phasesMs)})`);
  t.equal((await hsm.getVolumeSize(img, vol)).apparentsize, 132 * MiB, 'LVM metadata has the new size, seen from the other host');
  t.equal((await spm.getStats()).freeBytes, free0 - 68 * MiB, 'VG free space went down by the growth');
  t.equal(await blockSize(prepared.path), 64 * MiB, 'the loop device still has the old size before refresh');

  const seen = await hsm.refreshVolume(vol);
  t.equal(seen, 132 * MiB, 'refresh returns the size the host now sees');
  t.equal(await blockSize(prepared.path), 132 * MiB, 'the loop device grew');
  t.equal((await stat(hsmDriver.dataFile(sdUUID, vol))).size, 132 * MiB, 'the shared data file was grown to the LV size');

  const r2 = await spm.extendLV(vol, 100);
  t.match(r2, { size: 132 * MiB, extended: false }, 'a smaller or repeated request changes nothing (idempotent)');
  const r3 = await spm.extendLV(vol, 132);
  t.match(r3, { size: 132 * MiB, extended: false });

  const r4 = await spm.extendLV(vol, 4096);
  t.match(r4, { size: spm.maxLvSize(1 * GiB), extended: true, capped: true }, 'never past 1.1 × capacity');
  t.equal(r4.size, 1128 * MiB, '1.1 × 1 GiB rounded up to an extent');
  t.equal(await hsm.refreshVolume(vol), 1128 * MiB);
  t.equal(await blockSize(prepared.path), 1128 * MiB);
  t.match(await spm.extendLV(vol, 4096), { extended: false, capped: true }, 'at the cap, a further request is a no-op');

  await t.rejects(spm.extendLV(uuid(), 128), { name: 'VolumeNotFoundError' });
  await t.rejects(spm.extendLV(vol, 0), { name: 'StorageParamsError' });

  // A refresh on a host where the volume is not active just reports the LV size.
  t.equal(await spm.refreshVolume(vol), 1128 * MiB);

  // No room: a request the VG cannot hold is a clear error, not a crash.
  const big = uuid();
  await spm.createVolume({ imgUUID: uuid(), volUUID: big, capacity: 64 * GiB, format: 'COW', allocation: 'SPARSE' });
  await t.rejects(spm.extendLV(big, 32 * 1024), { name: 'NoSpaceError', data: { storageCode: 397 } });

  await hsm.teardownImage(img);
  await hsm.close();
  t.notOk(await hsmDriver.isActive(sdUUID, vol));
  await spm.remove();
});

t.test('concurrent extendLV requests for the same volume both succeed and agree', async (t) => {
  const lab = await storageLab('extend2');
  t.teardown(() => lab.cleanup());
  const pv = await lab.makePv(8);
  const sdUUID = uuid();
  const spm = await BlockStorageDomain.create(sdUUID, { ...blockDomainOptions(lab.settings(), lab.driver(), [pv], { log: testLog }), extentSizeMiB: 4, pvMetadataSizeMiB: 16 });
  const img = uuid();
  const vol = uuid();
  await spm.createVolume({ imgUUID: img, volUUID: vol, capacity: 1 * GiB, format: 'COW', allocation: 'SPARSE' });
  const rs = await Promise.all([spm.extendLV(vol, 256), spm.extendLV(vol, 256), spm.extendLV(vol, 256)]);
  t.same(rs.map((r) => r.size), [256 * MiB, 256 * MiB, 256 * MiB]);
  t.equal((await spm.getVolumeSize(img, vol)).apparentsize, 256 * MiB);
  await spm.remove();
});
