// Templates and thin clones on a real agent that is the SPM (issue 13, must
// show 5, at the agent): a two-volume chain is collapsed by Volume.copy into a
// SHARED template volume on a block domain; three thin clones (Volume.create
// with srcImgUUID) each boot a tiny guest that reads the template's data
// through its clone and writes into its own overlay only: the template's
// bytes are unchanged. A template is refused as a writable leaf (219) and
// cannot be deleted while clones sit on it (204, naming them). On a file
// domain a clone's folder holds a link to the template, removed with the clone.
import t from 'tap';
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StatusWatch, tinyGuest } from '../harness.js';
import { fileAndBlockPool } from './copy-fixture.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { run } from '../../../agent/storage/exec.js';
import { MiB, rejectsWith, taskLab } from './tasks-fixture.js';

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
const qemuIo = (path: string, ...cmds: string[]) =>
  run(['qemu-io', '-r', '-f', 'qcow2', ...cmds.flatMap((x) => ['-c', x]), path], { timeoutMs: 60_000, okCodes: [0, 1] });

t.test('a template from a chain and three thin clones: each boots and writes only into its own overlay', async (t) => {
  const tl = await taskLab(t, 'templates');
  if (!tl) return;
  const { c, fsd, bsd, sp, vms: running } = await fileAndBlockPool(t, tl);
  const watch = new StatusWatch(c);

  // The VM's disk: base (64 MiB of 0x5a) <- snapshot leaf (8 MiB of 0xc3 at 32 MiB), 256 MiB virtual, on the file domain.
  const [img, base, leaf] = [randomUUID(), randomUUID(), randomUUID()];
  const fpath = (i: string, v: string) => join(tl.fileRoot, fsd, 'images', i, v);
  await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: img, volumeID: base, size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE' });
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 64M', fpath(img, base)], { timeoutMs: 60_000 });
  await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: img, volumeID: leaf, size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE', srcVolUUID: base });
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xc3 32M 8M', fpath(img, leaf)], { timeoutMs: 60_000 });

  // The template: the chain collapsed into one SHARED volume on the block domain.
  const [timg, tvol] = [randomUUID(), randomUUID()];
  const tinfo = await c.runSpmTask('Volume.copy', {
    storagedomainID: fsd, imageID: img, volumeID: leaf, dstSdUUID: bsd, dstImgUUID: timg, dstVolUUID: tvol, volType: 'SHARED', volFormat: 'COW', preallocate: 'SPARSE', description: 'template',
  });
  t.same({ voltype: tinfo.voltype, legality: tinfo.legality, parent: tinfo.parent }, { voltype: 'SHARED', legality: 'LEGAL', parent: '00000000-0000-0000-0000-000000000000' }, 'the template is one SHARED volume');
  await rejectsWith(t, c.call('Image.prepare', { storagedomainID: bsd, imageID: timg }), 219, 'preparing the template as a writable leaf');
  const templateData = join(tl.lab.san, 'lv', bsd, tvol); // the template LV's bytes (loop activation)
  const before = await sha256(templateData);

  // A snapshot on the template inside its own image is refused: a template is never written.
  const snap = await c.call('Volume.create', { storagedomainID: bsd, imageID: timg, volumeID: randomUUID(), size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE', srcVolUUID: tvol });
  const snapTask = await c.call('Task.getStatus', { taskID: snap.taskID }).then(async () => {
    for (let i = 0; i < 200; i++) { const s = await c.call('Task.getStatus', { taskID: snap.taskID }); if (s.taskState === 'finished') return s; await new Promise((r) => setTimeout(r, 50)); }
    throw new Error('snapshot task did not end');
  });
  t.equal(snapTask.code, 219, `a snapshot on the template in its own image is refused: ${snapTask.message}`);

  const clones = [0, 1, 2].map((i) => ({ i, img: randomUUID(), vol: randomUUID() }));
  for (const cl of clones) {
    const v = await c.runSpmTask('Volume.create', { storagedomainID: bsd, imageID: cl.img, volumeID: cl.vol, size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE', srcImgUUID: timg, srcVolUUID: tvol });
    t.same({ parent: v.parent, voltype: v.voltype }, { parent: tvol, voltype: 'LEAF' }, `clone ${cl.i} is a leaf on the template`);
  }
  // A thin clone of a volume that is not SHARED is refused.
  const bad = await c.call('Volume.create', { storagedomainID: fsd, imageID: randomUUID(), volumeID: randomUUID(), size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE', srcImgUUID: img, srcVolUUID: leaf });
  for (let i = 0; i < 200 && (await c.call('Task.getStatus', { taskID: bad.taskID })).taskState !== 'finished'; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal((await c.call('Task.getStatus', { taskID: bad.taskID })).code, 214, 'a clone of a non-SHARED volume: 214');

  await t.test('three clones boot at once, read the template through their overlay and write into it', async (t) => {
    const expectMd5 = createHash('md5').update(Buffer.alloc(MiB, 0x5a)).digest('hex');
    const script = Buffer.from([
      'echo "LAB-MD5-BASE $(dd if=/dev/vda bs=1M count=1 2>/dev/null | md5sum)"',
      'echo "LAB-MD5-SNAP $(dd if=/dev/vda bs=1M skip=32 count=1 2>/dev/null | md5sum)"',
    ].join('\n')).toString('base64');
    const guests = clones.map((cl) => ({
      cl, g: tinyGuest(`hv-it-clone${cl.i}`, {
        // Each writes 4 MiB of zeros at its own offset (16 + 4i MiB), over the template's 0x5a.
        cmdline: [`lab.dd=4`, `lab.seek=${16 + 4 * cl.i}`, `lab.sh=${script}`, 'lab.end=wait'],
        disks: [{ name: 'vda', storage: { poolID: sp, domainID: bsd, imageID: cl.img, volumeID: cl.vol }, type: 'block', format: 'qcow2' }],
      }),
    }));
    for (const { g } of guests) { await c.call('VM.create', { vmID: g.vmID, spec: g.spec }); running.add(g.vmID); }
    for (const { cl, g } of guests) {
      await watch.wait(g.vmID, 'Up', 120_000);
      const dd = await waitForSerialMarker(g.serial, 'LAB-DD-DONE', 180_000);
      t.match(dd.line, /rc=0/, `clone ${cl.i}'s guest wrote into its disk`);
      const md5 = await waitForSerialMarker(g.serial, 'LAB-MD5-BASE', 60_000);
      t.ok(md5.line.includes(expectMd5), `clone ${cl.i}'s guest reads the template's data (${md5.line.trim()})`);
      const snapMd5 = await waitForSerialMarker(g.serial, 'LAB-MD5-SNAP', 60_000);
      t.ok(snapMd5.line.includes(createHash('md5').update(Buffer.alloc(MiB, 0xc3)).digest('hex')), 'and the data of the collapsed snapshot');
      await waitForSerialMarker(g.serial, 'LAB-SH-DONE', 60_000);
    }
    for (const { g } of guests) { await c.call('VM.destroy', { vmID: g.vmID }); running.delete(g.vmID); }
    t.equal(await sha256(templateData), before, 'the template volume\'s bytes are unchanged');
    for (const cl of clones) {
      const prep = await c.call('Image.prepare', { storagedomainID: bsd, imageID: cl.img });
      try {
        t.same(prep.chain.map((v) => v.volUUID), [tvol, cl.vol], `clone ${cl.i}'s chain spans the template's LV`);
        const own = 16 + 4 * cl.i;
        const mine = await qemuIo(prep.path, `read -P 0 ${own}M 4M`, `read -P 0x5a 0 ${own}M`);
        t.notMatch(mine.stdout, /Pattern verification failed/, `clone ${cl.i} has its zeros at ${own} MiB and the template's data elsewhere`);
        const map = JSON.parse((await run(['qemu-img', 'map', '-f', 'qcow2', '--output=json', prep.path], { timeoutMs: 60_000 })).stdout) as Array<{ start: number; length: number; depth: number; data: boolean }>;
        const inOverlay = map.filter((e) => e.depth === 0 && e.data).reduce((n, e) => n + e.length, 0);
        t.equal(inOverlay, 4 * MiB, `clone ${cl.i}'s overlay holds exactly its 4 MiB write`);
      } finally {
        await c.call('Image.teardown', { storagedomainID: bsd, imageID: cl.img });
      }
    }
  });

  await t.test('the template cannot be deleted while clones sit on it (204, naming them); it can once they are gone', async (t) => {
    const del = await c.call('Image.delete', { storagedomainID: bsd, imageID: timg });
    let s = await c.call('Task.getStatus', { taskID: del.taskID });
    for (let i = 0; i < 200 && s.taskState !== 'finished'; i++) { await new Promise((r) => setTimeout(r, 50)); s = await c.call('Task.getStatus', { taskID: del.taskID }); }
    t.equal(s.code, 204, `refused: ${s.message}`);
    t.ok(clones.every((cl) => s.message.includes(cl.vol)), 'the message names every clone');
    t.equal((await c.call('Volume.getInfo', { storagedomainID: bsd, imageID: timg, volumeID: tvol })).legality, 'LEGAL', 'the template is untouched');
    for (const cl of clones) await c.runSpmTask('Image.delete', { storagedomainID: bsd, imageID: cl.img });
    await c.runSpmTask('Image.delete', { storagedomainID: bsd, imageID: timg });
    t.same((await c.call('StorageDomain.getImages', { storagedomainID: bsd })).images, [], 'then the template goes too');
  });

  await t.test('on a file domain a clone\'s folder links the template, and the link goes with the clone', async (t) => {
    const [ftimg, ftvol, cimg, cvol] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await c.runSpmTask('Volume.copy', { storagedomainID: fsd, imageID: img, volumeID: leaf, dstImgUUID: ftimg, dstVolUUID: ftvol, volType: 'SHARED', volFormat: 'COW', preallocate: 'SPARSE' });
    await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: cimg, volumeID: cvol, size: 256 * MiB, volFormat: 'COW', preallocate: 'SPARSE', srcImgUUID: ftimg, srcVolUUID: ftvol });
    t.same((await readdir(join(tl.fileRoot, fsd, 'images', cimg))).sort(), [cvol, `${cvol}.meta`, ftvol, `${ftvol}.meta`].sort(), 'the clone\'s folder: its volume and a link to the template');
    t.same((await c.call('StorageDomain.getVolumes', { storagedomainID: fsd, imageID: cimg })).volumes, [cvol], 'the link is not listed as a volume of the clone');
    const prep = await c.call('Image.prepare', { storagedomainID: fsd, imageID: cimg });
    t.same(prep.chain.map((v) => v.volUUID), [ftvol, cvol], 'the clone\'s chain is the template and its leaf');
    const r = await qemuIo(prep.path, 'read -P 0x5a 0 32M', 'read -P 0xc3 32M 8M');
    t.notMatch(r.stdout, /Pattern verification failed/, 'the clone reads the template\'s data');
    await c.runSpmTask('Image.delete', { storagedomainID: fsd, imageID: cimg });
    t.notOk((await readdir(join(tl.fileRoot, fsd, 'images'))).includes(cimg), 'deleting the clone removed its folder with the link');
    t.equal((await c.call('Volume.getInfo', { storagedomainID: fsd, imageID: ftimg, volumeID: ftvol })).voltype, 'SHARED', 'the template stays');
  });
});
