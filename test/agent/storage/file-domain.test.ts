// Integration: a file storage domain in a folder of the shared lab storage, with real qemu-img.
import t from 'tap';
import { access, mkdir, readFile, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStorageDomain } from '../../../agent/storage/file-domain.js';
import { fileDomainOptions } from '../../../agent/storage/index.js';
import { QemuImg } from '../../../agent/storage/qemu-img.js';
import { BLANK_UUID, MiB } from '../../../agent/storage/types.js';
import { storageLab, testLog, uuid } from './storage-lab.js';

const qemuImg = new QemuImg({ timeoutMs: 60_000 });

t.test('file domain: layout, volumes, snapshot chain, prepare, extend, delete', async (t) => {
  const lab = await storageLab('file');
  t.teardown(() => lab.cleanup());
  const root = join(lab.san, 'file');
  await mkdir(root, { recursive: true });
  const sdUUID = uuid();
  const opts = fileDomainOptions(lab.settings(), root, { log: testLog });
  const dom = await FileStorageDomain.create(sdUUID, { ...opts, description: 'lab file domain' });

  await t.test('layout, info and stats', async (t) => {
    for (const f of ['metadata', 'ids', 'leases', 'inbox', 'outbox']) await access(join(root, sdUUID, 'dom_md', f));
    t.equal((await stat(join(root, sdUUID, 'dom_md', 'leases'))).size, 2048 * MiB, 'leases is a sparse 2 GiB file');
    t.ok((await stat(join(root, sdUUID, 'dom_md', 'leases'))).blocks < 16, 'and takes no space');
    t.match(await readFile(join(root, sdUUID, 'dom_md', 'metadata'), 'utf8'), /^SDUUID=.*\nTYPE=file\n[\s\S]*\nEOF\n$/);
    t.match(await dom.getInfo(), { sdUUID, type: 'file', class: 'Data', description: 'lab file domain', role: 'Regular', poolUUID: BLANK_UUID, location: join(root, sdUUID) });
    const st = await dom.getStats();
    const fs = await statfs(root);
    t.equal(st.totalBytes, fs.blocks * fs.bsize, 'total from statvfs');
    t.ok(Math.abs(st.freeBytes - fs.bavail * fs.bsize) < 512 * MiB, 'free from statvfs');
    t.equal(st.volumeCount, 0);
    t.equal(await dom.specialPath('ids'), join(root, sdUUID, 'dom_md', 'ids'));
    await t.rejects(FileStorageDomain.create(sdUUID, opts), { name: 'DomainExistsError' });
    await t.rejects(FileStorageDomain.open(uuid(), opts), { name: 'DomainNotFoundError' });
    await dom.updateMetadata({ role: 'Master', poolUUID: sdUUID });
    t.match(await (await FileStorageDomain.open(sdUUID, opts)).getInfo(), { role: 'Master', poolUUID: sdUUID });
  });

  const img = uuid();
  const base = uuid();
  const snap = uuid();

  await t.test('volumes of every format and allocation; RAW sparse exists on file domains', async (t) => {
    const rawSparse = await dom.createVolume({ imgUUID: uuid(), volUUID: uuid(), capacity: 256 * MiB, format: 'RAW', allocation: 'SPARSE' });
    t.match(rawSparse, { format: 'RAW', type: 'SPARSE', apparentsize: 256 * MiB, legality: 'LEGAL' });
    t.ok(rawSparse.truesize < MiB, `a sparse raw file takes no space (${rawSparse.truesize})`);
    const rawPre = await dom.createVolume({ imgUUID: uuid(), volUUID: uuid(), capacity: 16 * MiB, format: 'RAW', allocation: 'PREALLOCATED' });
    t.ok(rawPre.truesize >= 16 * MiB, `a preallocated raw file is allocated (${rawPre.truesize})`);
    const cowPre = await dom.createVolume({ imgUUID: uuid(), volUUID: uuid(), capacity: 16 * MiB, format: 'COW', allocation: 'PREALLOCATED' });
    t.ok(cowPre.truesize >= 16 * MiB, `a preallocated qcow2 is allocated (${cowPre.truesize})`);
    const b = await dom.createVolume({ imgUUID: img, volUUID: base, capacity: 1024 * MiB, format: 'COW', allocation: 'SPARSE', description: 'base disk' });
    t.match(b, { uuid: base, image: img, parent: BLANK_UUID, format: 'COW', type: 'SPARSE', voltype: 'LEAF', legality: 'LEGAL', generation: 0, description: 'base disk' });
    t.ok(b.truesize < MiB, 'a sparse qcow2 starts tiny');
    await t.rejects(dom.createVolume({ imgUUID: img, volUUID: base, capacity: MiB, format: 'COW', allocation: 'SPARSE' }), { name: 'VolumeExistsError' });
    await t.rejects(dom.createVolume({ imgUUID: img, volUUID: uuid(), capacity: 1000, format: 'COW', allocation: 'SPARSE' }), { name: 'StorageParamsError' });
    await t.rejects(dom.createVolume({ imgUUID: img, volUUID: uuid(), capacity: MiB, format: 'COW', allocation: 'SPARSE', description: 'x\ny' }), { name: 'StorageParamsError' });
    const meta = await readFile(join(root, sdUUID, 'images', img, `${base}.meta`), 'utf8');
    t.match(meta, /^VERSION=1\nDOMAIN=.*\nIMAGE=.*\nVOLUME=.*\nPUUID=0{8}-.*\nCAP=1073741824\nFORMAT=COW\nTYPE=SPARSE\nDISKTYPE=DATA\nDESCRIPTION=base disk\nLEGALITY=LEGAL\nCTIME=\d+\nGEN=0\nEOF\n$/);
  });

  await t.test('a qcow2 snapshot on a base; prepare returns the chain; qemu-img sees it', async (t) => {
    const s = await dom.createVolume({ imgUUID: img, volUUID: snap, parentUUID: base, capacity: 1024 * MiB, format: 'COW', allocation: 'SPARSE' });
    t.match(s, { parent: base, voltype: 'LEAF' });
    t.equal((await dom.getVolumeInfo(img, base)).voltype, 'INTERNAL');
    const p = await dom.prepareImage(img);
    t.equal(p.path, join(root, sdUUID, 'images', img, snap));
    t.same(p.chain.map((c) => [c.volUUID, c.format]), [[base, 'COW'], [snap, 'COW']]);
    const chain = await qemuImg.chain(p.path);
    t.same(chain.map((c) => c.filename), [join(root, sdUUID, 'images', img, snap), join(root, sdUUID, 'images', img, base)]);
    t.equal(chain[0]!.backingFilename, base, 'relative backing name');
    t.equal(chain[0]!.backingFormat, 'qcow2');
    await dom.teardownImage(img);
    await t.rejects(dom.deleteVolume(img, base), { name: 'VolumeHasChildrenError', data: { storageCode: 204 } });
    t.same(await dom.getVolumes(img), [base, snap].sort());
    t.equal((await dom.getImages()).length, 4);
    const pre = uuid();
    const v = await dom.createVolume({ imgUUID: img, volUUID: pre, parentUUID: snap, capacity: 1024 * MiB, format: 'COW', allocation: 'PREALLOCATED' });
    t.match(v, { parent: snap, type: 'PREALLOCATED' }, 'a preallocated qcow2 can sit on a backing file too');
    t.equal((await qemuImg.chain(dom.volumePath(img, pre))).length, 3);
    await dom.deleteVolume(img, pre);
  });

  await t.test('extendSize, getSize, legality', async (t) => {
    const v = await dom.extendVolumeSize(img, snap, 2048 * MiB);
    t.equal(v.capacity, 2048 * MiB);
    t.equal((await qemuImg.info(dom.volumePath(img, snap))).virtualSize, 2048 * MiB);
    const size = await dom.getVolumeSize(img, snap);
    t.equal(size.apparentsize, (await stat(dom.volumePath(img, snap))).size);
    await dom.setVolumeLegality(img, snap, 'ILLEGAL');
    await t.rejects(dom.prepareImage(img), { name: 'WrongLegalityError' });
    await dom.setVolumeLegality(img, snap, 'LEGAL');
  });

  await t.test('delete', async (t) => {
    await dom.deleteImage(img);
    await t.rejects(access(join(root, sdUUID, 'images', img)), { code: 'ENOENT' }, 'the image folder is gone');
    await t.rejects(dom.getVolumeInfo(img, base), { name: 'VolumeNotFoundError' });
    t.equal((await dom.getImages()).length, 3);
    for (const i of await dom.getImages()) await dom.deleteImage(i);
    t.equal((await dom.getStats()).volumeCount, 0);
    await dom.remove();
    await t.rejects(access(join(root, sdUUID)));
  });
});
