// Unit: the volume metadata block, the domain metadata encodings (file and VG tags), and chain building.
import t from 'tap';
import { decodeFileDomainMetadata, decodeVgTags, encodeFileDomainMetadata, encodeVgTags, escapeTagValue, unescapeTagValue } from '../../../agent/storage/domain-metadata.js';
import { buildChain, deletionOrder } from '../../../agent/storage/image.js';
import { BLANK_UUID, type DomainMetadata, type VolumeRecord } from '../../../agent/storage/types.js';
import { decodeVolumeMetadata, encodeSlot, encodeVolumeMetadata, SLOT_SIZE, slotCount, slotOffset, type VolumeMetadata } from '../../../agent/storage/volume-metadata.js';

const md: VolumeMetadata = {
  domain: '11111111-1111-4111-8111-111111111111', image: '22222222-2222-4222-8222-222222222222', volume: '33333333-3333-4333-8333-333333333333',
  parent: BLANK_UUID, capacity: 1073741824, format: 'COW', type: 'SPARSE', diskType: 'DATA', description: 'disk = "a" ünïcode', legality: 'LEGAL',
  ctime: 1700000000, generation: 7,
};

t.test('volume metadata: round trip, slot padding, torn blocks', async (t) => {
  t.same(decodeVolumeMetadata(encodeVolumeMetadata(md)), md);
  const slot = encodeSlot(md);
  t.equal(slot.length, SLOT_SIZE);
  t.same(decodeVolumeMetadata(slot), md, 'NUL padding is ignored');
  t.throws(() => decodeVolumeMetadata(Buffer.alloc(SLOT_SIZE)), { name: 'VolumeMetadataError', message: /empty block/ }, 'a free slot is not a volume');
  const torn = Buffer.from(encodeVolumeMetadata(md).replace('EOF\n', ''));
  t.throws(() => decodeVolumeMetadata(torn), { message: /no EOF/ });
  t.throws(() => decodeVolumeMetadata(encodeVolumeMetadata(md).replace('FORMAT=COW', 'FORMAT=VMDK')), { message: /FORMAT/ });
  t.throws(() => decodeVolumeMetadata(encodeVolumeMetadata(md).replace('VERSION=1', 'VERSION=9')), { message: /version 9/ });
  t.throws(() => decodeVolumeMetadata(encodeVolumeMetadata(md).replace('CAP=1073741824\n', '')), { message: /CAP/ });
  t.throws(() => encodeVolumeMetadata({ ...md, description: 'x'.repeat(211) }), { name: 'StorageParamsError' });
  t.throws(() => encodeVolumeMetadata({ ...md, description: 'a\nLEGALITY=ILLEGAL' }), { name: 'StorageParamsError' }, 'no line injection');
  t.equal(slotOffset(0), 1024 * 1024);
  t.equal(slotOffset(3), 1024 * 1024 + 3 * 8192);
  t.equal(slotCount(128 * 1024 * 1024), 16256, 'a 128 MiB metadata LV holds 16256 slots');
});

t.test('domain metadata: file text and VG tags', async (t) => {
  const d: DomainMetadata = { sdUUID: md.domain, type: 'file', class: 'Data', description: 'my dom/ä & co', version: 1, poolUUID: BLANK_UUID, role: 'Master' };
  t.same(decodeFileDomainMetadata(md.domain, encodeFileDomainMetadata(d)), d);
  t.throws(() => decodeFileDomainMetadata('44444444-4444-4444-8444-444444444444', encodeFileDomainMetadata(d)), { name: 'DomainLayoutError' });
  const tags = encodeVgTags({ ...d, type: 'block' });
  t.ok(tags.includes('HV_SD'));
  for (const tag of tags) t.match(tag, /^[A-Za-z0-9_+.\-/=!:&#]+$/, `tag ${tag} uses only LVM tag characters`);
  t.same(decodeVgTags(md.domain, tags), { ...d, type: 'block' });
  t.throws(() => decodeVgTags(md.domain, tags.filter((x) => x !== 'HV_SD')), { name: 'DomainLayoutError' }, 'a VG without HV_SD is not a domain');
  t.equal(unescapeTagValue(escapeTagValue('a b&c=ü')), 'a b&c=ü');
  t.throws(() => encodeVgTags({ ...d, description: 'x'.repeat(51) }), { name: 'StorageParamsError' });
});

t.test('chains', async (t) => {
  const sd = md.domain;
  const img = 'img';
  const rec = (v: string, p = BLANK_UUID, i = img): VolumeRecord => ({ volUUID: v, parentUUID: p, imgUUID: i });
  const recs = [rec('c', 'b'), rec('a'), rec('b', 'a'), rec('x', BLANK_UUID, 'other')];
  t.same(buildChain(sd, recs, img).map((r) => r.volUUID), ['a', 'b', 'c']);
  t.same(buildChain(sd, recs, img, 'b').map((r) => r.volUUID), ['a', 'b'], 'up to a named volume');
  t.same(deletionOrder(recs, img), ['c', 'b', 'a']);
  t.throws(() => buildChain(sd, recs, 'none'), { name: 'ImageNotFoundError', data: { storageCode: 268 } });
  t.throws(() => buildChain(sd, [rec('a'), rec('b', 'a'), rec('c', 'a')], img), { name: 'IllegalChainError', message: /2 leaves/ });
  t.throws(() => buildChain(sd, [rec('b', 'missing')], img), { name: 'IllegalChainError', message: /not in the image/ });
  t.throws(() => buildChain(sd, [rec('a', 'b'), rec('b', 'a'), rec('c', 'a')], img, 'c'), { name: 'IllegalChainError', message: /loop/ });
  t.throws(() => buildChain(sd, recs, img, 'zz'), { name: 'VolumeNotFoundError' });
});
