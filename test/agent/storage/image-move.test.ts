// Image.move (disk move = copy + delete of the source) on a real agent that
// is the SPM: refused at once with 203 while a VM running on this host uses
// the disk (live storage migration is out of scope); once the VM is gone the
// image moves from the file domain to the block domain with the same ids and
// the same data, and the source is deleted.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { StatusWatch, tinyGuest } from '../harness.js';
import { fileAndBlockPool } from './copy-fixture.js';
import { run } from '../../../agent/storage/exec.js';
import { MiB, rejectsWith, taskLab } from './tasks-fixture.js';

t.test('Image.move: refused under a running VM (203), then file -> block with the same ids and data', async (t) => {
  const tl = await taskLab(t, 'move');
  if (!tl) return;
  const { c, fsd, bsd, sp, vms } = await fileAndBlockPool(t, tl);
  const watch = new StatusWatch(c);

  const [img, base, leaf] = [randomUUID(), randomUUID(), randomUUID()];
  const fpath = (v: string) => join(tl.fileRoot, fsd, 'images', img, v);
  await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: img, volumeID: base, size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE' });
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 64M', fpath(base)], { timeoutMs: 60_000 });
  await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: img, volumeID: leaf, size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE', srcVolUUID: base });
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xc3 32M 8M', fpath(leaf)], { timeoutMs: 60_000 });

  const g = tinyGuest('hv-it-move', { cmdline: ['lab.end=wait'], disks: [{ name: 'vda', storage: { poolID: sp, domainID: fsd, imageID: img, volumeID: leaf }, type: 'file', format: 'qcow2' }] });
  await c.call('VM.create', { vmID: g.vmID, spec: g.spec });
  vms.add(g.vmID);
  await watch.wait(g.vmID, 'Up', 120_000);
  const err = await rejectsWith(t, c.call('Image.move', { storagedomainID: fsd, imageID: img, dstSdUUID: bsd }), 203, 'moving the disk of a running VM');
  t.match(err?.message ?? '', new RegExp(`${g.vmID}.*live storage migration is not supported`), 'the error names the VM and says why');
  await c.call('VM.destroy', { vmID: g.vmID });
  vms.delete(g.vmID);

  const moved = await c.runSpmTask('Image.move', { storagedomainID: fsd, imageID: img, dstSdUUID: bsd });
  t.same({ uuid: moved.uuid, image: moved.image, domain: moved.domain, parent: moved.parent, format: moved.format, legality: moved.legality },
    { uuid: leaf, image: img, domain: bsd, parent: '00000000-0000-0000-0000-000000000000', format: 'COW', legality: 'LEGAL' }, 'the image is on the block domain, its chain collapsed into the leaf id');
  t.notOk((await c.call('StorageDomain.getImages', { storagedomainID: fsd })).images.includes(img), 'the source image is deleted');
  const prep = await c.call('Image.prepare', { storagedomainID: bsd, imageID: img });
  try {
    const r = await run(['qemu-io', '-r', '-f', 'qcow2', '-c', 'read -P 0x5a 0 32M', '-c', 'read -P 0xc3 32M 8M', '-c', 'read -P 0x5a 40M 24M', prep.path], { timeoutMs: 60_000 });
    t.notMatch(r.stdout, /Pattern verification failed/, 'the moved disk has the data of the whole chain');
  } finally {
    await c.call('Image.teardown', { storagedomainID: bsd, imageID: img });
  }
});
