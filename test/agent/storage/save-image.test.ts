// Volume.getSaveImageState's reading of libvirt's save header (agent/storage/save-image.ts):
// libvirt writes "LibvirtQemudPart" when a save begins and "LibvirtQemudSave" once it is whole.
import t from 'tap';
import { classifySaveHeader } from '../../../agent/storage/save-image.js';

const header = (magic: string) => Buffer.concat([Buffer.from(magic, 'latin1'), Buffer.alloc(48, 7)]);

t.test('the save header tells a complete save from one cut short, an empty volume and anything else', async (t) => {
  t.same(classifySaveHeader(header('LibvirtQemudSave')), { state: 'complete', magic: 'LibvirtQemudSave' }, 'LibvirtQemudSave: complete');
  t.same(classifySaveHeader(header('LibvirtQemudPart')), { state: 'partial', magic: 'LibvirtQemudPart' }, 'LibvirtQemudPart: partial');
  t.same(classifySaveHeader(Buffer.alloc(4096)), { state: 'empty', magic: '................' }, 'zeros: empty (nothing written)');
  t.same(classifySaveHeader(Buffer.alloc(0)), { state: 'empty', magic: '' }, 'no bytes at all: empty');
  t.same(classifySaveHeader(header('QFI\xfb\0\0\0\x03xxxxxxxx')), { state: 'unrecognized', magic: 'QFI.....xxxxxxxx' }, 'a qcow2 header: unrecognized');
  t.equal(classifySaveHeader(header('LibvirtQemudSav')).state, 'unrecognized', 'a magic one byte short is not taken for complete');
});
