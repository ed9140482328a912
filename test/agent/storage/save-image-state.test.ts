// Volume.getSaveImageState on real storage (a file and a block domain, a real agent): a RAW state
// volume as VM.hibernate's stateVolume, its first bytes written as libvirt writes them at the
// start ("LibvirtQemudPart") and the end ("LibvirtQemudSave") of a save, read back through the
// verb the controller uses to tell a complete save after a suspend whose outcome is unknown.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { open } from 'node:fs/promises';
import { fileAndBlockPool } from './copy-fixture.js';
import { MiB, rejectsWith, taskLab } from './tasks-fixture.js';

t.setTimeout(600_000);

t.test('Volume.getSaveImageState reads the save header of a state volume on file and block domains', async (t) => {
  const tl = await taskLab(t, 'save-image');
  if (!tl) return;
  const { c, fsd, bsd } = await fileAndBlockPool(t, tl);
  const writeHead = async (sd: string, img: string, vol: string, bytes: string): Promise<void> => {
    const p = await c.call('Image.prepare', { storagedomainID: sd, imageID: img, volumeID: vol });
    try {
      const fh = await open(p.path, 'r+');
      try { await fh.write(Buffer.from(bytes, 'latin1'), 0, bytes.length, 0); await fh.sync(); } finally { await fh.close(); }
    } finally {
      await c.call('Image.teardown', { storagedomainID: sd, imageID: img });
    }
  };
  for (const [kind, sd, preallocate] of [['file', fsd, 'SPARSE'], ['block', bsd, 'PREALLOCATED']] as const) {
    await t.test(`${kind} domain: ${kind === 'file' ? 'empty, ' : ''}partial, complete, and 201 for a missing volume`, async (t) => {
      const [img, vol] = [randomUUID(), randomUUID()];
      await c.runSpmTask('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol, size: 64 * MiB, volFormat: 'RAW', preallocate });
      const read = () => c.call('Volume.getSaveImageState', { storagedomainID: sd, imageID: img, volumeID: vol });
      if (kind === 'file') t.same(await read(), { state: 'empty', magic: '................' }, 'a new sparse volume: empty');
      await writeHead(sd, img, vol, 'LibvirtQemudPart');
      t.same(await read(), { state: 'partial', magic: 'LibvirtQemudPart' }, 'a save begun: partial');
      await writeHead(sd, img, vol, 'LibvirtQemudSave');
      t.same(await read(), { state: 'complete', magic: 'LibvirtQemudSave' }, 'a save ended: complete');
      t.same(await read(), { state: 'complete', magic: 'LibvirtQemudSave' }, 'read a second time: the same answer (each read prepares and releases the volume)');
      await rejectsWith(t, c.call('Volume.getSaveImageState', { storagedomainID: sd, imageID: img, volumeID: randomUUID() }), 201, 'a volume that is not there');
    });
  }
});
