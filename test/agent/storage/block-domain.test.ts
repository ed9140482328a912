// Integration: a block storage domain on a loop-backed PV, with real lvm2
// (activation=0), real qemu-img and the loop activation driver.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockStorageDomain } from '../../../agent/storage/block-domain.js';
import { run } from '../../../agent/storage/exec.js';
import { blockDomainOptions } from '../../../agent/storage/index.js';
import { QemuImg } from '../../../agent/storage/qemu-img.js';
import { BLANK_UUID, MiB } from '../../../agent/storage/types.js';
import { storageLab, testLog, uuid } from './storage-lab.js';

const qemuImg = new QemuImg({ timeoutMs: 60_000 });

t.test('block domain: create, volumes, snapshot chain, prepare through loop, delete', async (t) => {
  const lab = await storageLab('block');
  t.teardown(() => lab.cleanup());
  const pv = await lab.makePv(8);
  const sdUUID = uuid();
  const s = lab.settings();
  const dom = await BlockStorageDomain.create(sdUUID, {
    ...blockDomainOptions(s, lab.driver(), [pv], { log: testLog }), extentSizeMiB: s.extentSizeMiB, description: 'lab block domain',
    pvMetadataSizeMiB: 16,
  });

  await t.test('domain info and stats come from the VG', async (t) => {
    const info = await dom.getInfo();
    t.match(info, { sdUUID, type: 'block', class: 'Data', description: 'lab block domain', version: 1, poolUUID: BLANK_UUID, role: 'Regular', location: sdUUID });
    t.same(info.pvs, [pv]);
    t.equal(info.extentSize, 4 * MiB);
    const st = await dom.getStats();
    t.ok(st.totalBytes > 7 * 1024 * MiB, `VG size ${st.totalBytes}`);
    t.ok(st.freeBytes < st.totalBytes - 2000 * MiB, 'special LVs took their extents (leases 2 GiB)');
    t.equal(st.volumeCount, 0);
    const lvs = (await dom.lvm.lvs(sdUUID)).map((l) => [l.name, l.size / MiB]);
    t.same(lvs.sort(), [['ids', 8], ['inbox', 16], ['leases', 2048], ['metadata', 128], ['outbox', 16]]);
    const again = await BlockStorageDomain.open(sdUUID, blockDomainOptions(s, lab.driver(), [pv]));
    t.equal((await again.getInfo()).description, 'lab block domain', 'open() finds it by its VG');
    await t.rejects(BlockStorageDomain.create(sdUUID, { ...blockDomainOptions(s, lab.driver(), [pv]), extentSizeMiB: 4 }), { name: 'DomainExistsError', code: 365 });
    const md = await dom.updateMetadata({ role: 'Master', poolUUID: sdUUID, description: 'renamed & moved' });
    t.equal(md.role, 'Master');
    t.match(await dom.getInfo(), { role: 'Master', poolUUID: sdUUID, description: 'renamed & moved' }, 'metadata update round-trips through VG tags');
  });

  const img = uuid();
  const base = uuid();
  const snap = uuid();
  const raw = uuid();
  const rawImg = uuid();

  await t.test('create volumes: COW sparse base, RAW preallocated; RAW sparse is refused', async (t) => {
    const b = await dom.createVolume({ imgUUID: img, volUUID: base, capacity: 1024 * MiB, format: 'COW', allocation: 'SPARSE', description: 'base' });
    t.match(b, { uuid: base, image: img, parent: BLANK_UUID, capacity: 1024 * MiB, format: 'COW', type: 'SPARSE', voltype: 'LEAF', legality: 'LEGAL', generation: 0, description: 'base' });
    t.equal(b.apparentsize, 64 * MiB, 'a thin COW volume starts at the initial LV size (lab: 64 MiB)');
    const r = await dom.createVolume({ imgUUID: rawImg, volUUID: raw, capacity: 10 * MiB, format: 'RAW', allocation: 'PREALLOCATED' });
    t.equal(r.apparentsize, 12 * MiB, 'RAW preallocated: capacity rounded up to whole 4 MiB extents');
    await t.rejects(dom.createVolume({ imgUUID: uuid(), volUUID: uuid(), capacity: 10 * MiB, format: 'RAW', allocation: 'SPARSE' }),
      { name: 'StorageParamsError', code: 231, data: { storageCode: 231 } }, 'RAW+SPARSE is refused on block storage');
    await t.rejects(dom.createVolume({ imgUUID: img, volUUID: base, capacity: 1024 * MiB, format: 'COW', allocation: 'SPARSE' }), { name: 'VolumeExistsError', code: 212 });
    const tooBig = uuid();
    await t.rejects(dom.createVolume({ imgUUID: uuid(), volUUID: tooBig, capacity: 100 * 1024 * MiB, format: 'RAW', allocation: 'PREALLOCATED' }),
      { name: 'NoSpaceError', data: { storageCode: 397 } }, 'a volume larger than the VG\'s free space is refused');
    t.same(await dom.lvm.lvs(sdUUID, tooBig), [], 'and leaves no LV behind');
    const lv = (await dom.lvm.lvs(sdUUID, base))[0]!;
    t.ok(lv.tags.includes(`IU_${img}`) && lv.tags.includes(`PU_${BLANK_UUID}`) && lv.tags.some((x) => /^MD_\d+$/.test(x)), `LV tags ${lv.tags}`);
    t.notOk(lv.tags.includes('HV_INITIALIZING'), 'the initializing tag is gone once created');
  });

  await t.test('a qcow2 snapshot on top of the base forms a backing chain', async (t) => {
    await t.rejects(dom.createVolume({ imgUUID: img, volUUID: uuid(), parentUUID: base, capacity: 1024 * MiB, format: 'RAW', allocation: 'PREALLOCATED' }),
      { name: 'StorageParamsError' }, 'a snapshot must be COW');
    await t.rejects(dom.createVolume({ imgUUID: img, volUUID: uuid(), parentUUID: base, capacity: 512 * MiB, format: 'COW', allocation: 'SPARSE' }),
      { name: 'StorageParamsError' }, 'a snapshot cannot be smaller than its parent');
    const v = await dom.createVolume({ imgUUID: img, volUUID: snap, parentUUID: base, capacity: 1024 * MiB, format: 'COW', allocation: 'SPARSE' });
    t.match(v, { parent: base, voltype: 'LEAF', legality: 'LEGAL' });
    t.equal((await dom.getVolumeInfo(img, base)).voltype, 'INTERNAL', 'the base is now internal');
    t.same(await dom.getImages(), [img, rawImg].sort());
    t.same(await dom.getVolumes(img), [base, snap].sort());
    await t.rejects(dom.deleteVolume(img, base), { name: 'VolumeHasChildrenError' }, 'a volume with children cannot be deleted');
    await t.rejects(dom.createVolume({ imgUUID: img, volUUID: uuid(), parentUUID: base, capacity: 1024 * MiB, format: 'COW', allocation: 'SPARSE' }),
      { name: 'VolumeHasChildrenError' }, 'no second branch on an internal volume');
  });

  await t.test('Image.prepare activates the chain through loop devices; qemu-img writes to the leaf', async (t) => {
    const prepared = await dom.prepareImage(img);
    t.equal(prepared.path, lab.driver().path(sdUUID, snap), 'the leaf path');
    t.same(prepared.chain.map((c) => c.volUUID), [base, snap], 'base first');
    t.ok(await lab.driver().isActive(sdUUID, base) && await lab.driver().isActive(sdUUID, snap), 'both volumes are attached to loop devices');
    const chain = await qemuImg.chain(prepared.path);
    t.equal(chain.length, 2, 'qemu-img info --backing-chain shows two images');
    t.equal(chain[0]!.backingFilename, base, 'the snapshot names its base by volUUID');
    t.equal(chain[1]!.filename, join(lab.driver().path(sdUUID, base)), 'the base resolves next to the leaf');
    t.equal(chain[0]!.format, 'qcow2');

    const data = join(lab.dir, 'pattern.raw');
    await writeFile(data, Buffer.alloc(8 * MiB, 0xa5));
    await run(['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'qcow2', data, prepared.path], { timeoutMs: 60_000 });
    await run(['qemu-img', 'compare', '-f', 'raw', '-F', 'qcow2', data, prepared.path], { timeoutMs: 60_000, okCodes: [0, 1] })
      .then((r) => t.equal(r.rc, 0, 'the data reads back identical from the start of the leaf'));
    const check = await qemuImg.check(prepared.path);
    t.equal(check.rc, 0, 'qemu-img check is clean');

    // A second host sharing the SAN folder sees the same bytes through its own loop device.
    const hostB = lab.driver('hostB');
    const domB = await BlockStorageDomain.open(sdUUID, blockDomainOptions(lab.settings('hostB'), hostB, [pv]));
    const onB = await domB.prepareImage(img, snap);
    t.not(await hostB.attached(sdUUID, snap), await lab.driver().attached(sdUUID, snap), 'host B has its own loop device');
    const rb = await run(['qemu-img', 'compare', '-f', 'raw', '-F', 'qcow2', data, onB.path], { timeoutMs: 60_000, okCodes: [0, 1] });
    t.equal(rb.rc, 0, 'host B reads what host A wrote');
    await domB.teardownImage(img);
    await domB.close();
    t.notOk(await hostB.isActive(sdUUID, 'metadata'), 'close() drops B\'s metadata LV activation');
    t.notOk(await hostB.isActive(sdUUID, snap), 'teardown on B detaches B only');
    t.ok(await lab.driver().isActive(sdUUID, snap), 'A still has it');

    await dom.teardownImage(img);
    t.notOk(await lab.driver().isActive(sdUUID, base), 'teardown deactivates the base');
    t.notOk(await lab.driver().isActive(sdUUID, snap), 'and the leaf');
  });

  await t.test('extendSize grows the virtual size', async (t) => {
    const v = await dom.extendVolumeSize(img, snap, 2048 * MiB);
    t.equal(v.capacity, 2048 * MiB);
    const p = await dom.prepareImage(img);
    t.equal((await qemuImg.info(p.path)).virtualSize, 2048 * MiB, 'qcow2 virtual size follows');
    await dom.teardownImage(img);
    await t.rejects(dom.extendVolumeSize(img, snap, 1024 * MiB), { name: 'StorageParamsError' }, 'no shrinking');
    const r = await dom.extendVolumeSize(rawImg, raw, 20 * MiB);
    t.equal(r.apparentsize, 20 * MiB, 'a RAW volume\'s LV grows with it');
  });

  await t.test('an ILLEGAL volume is not prepared', async (t) => {
    await dom.setVolumeLegality(rawImg, raw, 'ILLEGAL');
    await t.rejects(dom.prepareImage(rawImg), { name: 'WrongLegalityError' });
    t.notOk(await lab.driver().isActive(sdUUID, raw), 'a failed prepare leaves nothing active');
    await dom.setVolumeLegality(rawImg, raw, 'LEGAL');
  });

  await t.test('delete volumes and images', async (t) => {
    await dom.deleteVolume(img, snap);
    t.equal((await dom.getVolumeInfo(img, base)).voltype, 'LEAF', 'the base is a leaf again');
    await t.rejects(dom.getVolumeInfo(img, snap), { name: 'VolumeNotFoundError', data: { storageCode: 201 } });
    await t.rejects(dom.deleteVolume(img, snap), { name: 'VolumeNotFoundError' });
    await dom.deleteImage(img);
    await dom.deleteImage(rawImg);
    t.same(await dom.getImages(), []);
    t.equal((await dom.getStats()).volumeCount, 0);
    await t.rejects(dom.prepareImage(img), { name: 'ImageNotFoundError' });
  });

  await t.test('metadata slots are reused after delete', async (t) => {
    const a = uuid();
    await dom.createVolume({ imgUUID: img, volUUID: a, capacity: 32 * MiB, format: 'COW', allocation: 'SPARSE' });
    const lv = (await dom.lvm.lvs(sdUUID, a))[0]!;
    t.ok(lv.tags.includes('MD_0'), `slot 0 is free again (${lv.tags})`);
    t.equal(lv.size, 36 * MiB, 'the initial size never exceeds 1.1 × capacity (rounded up to an extent)');
    await dom.deleteImage(img);
  });

  await t.test('domain remove', async (t) => {
    await dom.remove();
    await t.rejects(BlockStorageDomain.open(sdUUID, blockDomainOptions(s, lab.driver(), [pv])), { name: 'DomainNotFoundError', data: { storageCode: 358 } });
  });
});
