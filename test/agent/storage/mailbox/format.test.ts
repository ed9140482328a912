// Unit: the mailbox's on-disk format (format.ts): round trips, checksum and
// header validation, all-zero blocks, UUID packing.
import t from 'tap';
import {
  BLOCK_SIZE, SLOTS_PER_HOST, SLOT_SIZE, HEADER_SIZE, ReasonCode, areaBytes, blockOffset, bytesToUuid, decodeBlock,
  emptyHostBlock, encodeBlock, reasonName, uuidToBytes, type Block, type ReplySlot, type RequestSlot,
} from '../../../../agent/storage/mailbox/format.js';

const DOM = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const VOL = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';

function requestBlock(): Block {
  const b = emptyHostBlock('request', 7, 7, 0x1234_5678_9abc_def0n, 42n);
  const req: RequestSlot = { state: 'request', opcode: 1, requestId: 0xdead_beef_0000_0001n, attempt: 3, domainId: DOM, volumeId: VOL, sizeMiB: 3072 };
  b.slots[0] = req;
  b.slots[SLOTS_PER_HOST - 1] = { ...req, requestId: 2n, attempt: 0, sizeMiB: 2 ** 40 };
  return b;
}

t.test('geometry', async (t) => {
  t.equal(SLOTS_PER_HOST, 31);
  t.equal(HEADER_SIZE + SLOTS_PER_HOST * SLOT_SIZE + 64, BLOCK_SIZE);
  t.equal(areaBytes(250), 251 * 4096);
  t.equal(blockOffset(3), 3 * 4096);
});

t.test('UUIDs are packed in RFC 4122 byte order', async (t) => {
  const b = uuidToBytes(DOM);
  t.equal(b.length, 16);
  t.equal(b[0], 0x0f);
  t.equal(b[15], 0xf0);
  t.equal(bytesToUuid(b), DOM);
  t.throws(() => uuidToBytes('not-a-uuid'));
});

t.test('a request block round-trips', async (t) => {
  const blk = requestBlock();
  const buf = encodeBlock(blk);
  t.equal(buf.length, BLOCK_SIZE);
  t.equal(buf.subarray(0, 4).toString('latin1'), 'HVMB');
  const r = decodeBlock(buf, { kind: 'request', ownerHostId: 7 });
  t.ok(r.ok, r.ok ? '' : r.error);
  if (!r.ok) return;
  t.equal(r.empty, false);
  t.equal(r.block.generation, 42n);
  t.equal(r.block.incarnation, 0x1234_5678_9abc_def0n);
  t.equal(r.block.writerHostId, 7);
  t.same(r.block.slots[0], blk.slots[0]);
  t.same(r.block.slots[SLOTS_PER_HOST - 1], blk.slots[SLOTS_PER_HOST - 1]);
  t.equal(r.block.slots.filter(Boolean).length, 2);
});

t.test('a reply block round-trips, reason text truncated to whole UTF-8 characters', async (t) => {
  const b = emptyHostBlock('reply', 3, 1, 9n, 1n);
  const ok: ReplySlot = { state: 'ok', opcode: 1, requestId: 5n, attempt: 1, domainId: DOM, volumeId: VOL, sizeMiB: 512, reason: 0, reasonText: '', spmHostId: 1, extendMs: 123 };
  const failed: ReplySlot = { ...ok, state: 'failed', requestId: 6n, reason: ReasonCode.noSpace, reasonText: 'é'.repeat(40), extendMs: 2 ** 40 };
  b.slots[4] = ok;
  b.slots[5] = failed;
  const r = decodeBlock(encodeBlock(b), { kind: 'reply', ownerHostId: 3 });
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.block.slots[4], ok);
  const f = r.block.slots[5] as ReplySlot;
  t.equal(f.state, 'failed');
  t.equal(f.reason, ReasonCode.noSpace);
  t.equal(reasonName(f.reason), 'noSpace');
  t.equal(f.reasonText, 'é'.repeat(32), '64 bytes = 32 two-byte characters, none split');
  t.equal(f.extendMs, 0xffff_ffff, 'extendMs saturates');
});

t.test('control blocks round-trip', async (t) => {
  for (const kind of ['event', 'spm'] as const) {
    const buf = encodeBlock({ kind, ownerHostId: 0, writerHostId: 5, incarnation: 1n, generation: 0xffff_ffff_ffff_ffffn, writtenAtMs: 1700000000000, slots: [] });
    const r = decodeBlock(buf, { kind, ownerHostId: 0 });
    t.ok(r.ok, kind);
    if (r.ok) {
      t.equal(r.block.generation, 0xffff_ffff_ffff_ffffn);
      t.equal(r.block.writtenAtMs, 1700000000000);
    }
  }
});

t.test('an all-zero block is a valid empty block', async (t) => {
  const r = decodeBlock(Buffer.alloc(BLOCK_SIZE), { kind: 'reply', ownerHostId: 9 });
  t.ok(r.ok);
  if (r.ok) {
    t.equal(r.empty, true);
    t.equal(r.block.slots.length, SLOTS_PER_HOST);
    t.ok(r.block.slots.every((s) => s === undefined));
  }
});

t.test('corruption is rejected', async (t) => {
  const good = encodeBlock(requestBlock());
  const flip = (at: number) => { const b = Buffer.from(good); b[at]! ^= 0x01; return b; };
  const err = (buf: Buffer, expect: { kind: 'request' | 'reply'; ownerHostId: number } = { kind: 'request', ownerHostId: 7 }) => {
    const r = decodeBlock(buf, expect);
    return r.ok ? 'accepted' : r.error;
  };
  t.match(err(flip(HEADER_SIZE + 50)), /checksum mismatch/, 'a bit flipped in a slot');
  t.match(err(flip(9)), /checksum mismatch/, 'a bit flipped in the header');
  t.match(err(flip(BLOCK_SIZE - 1)), /checksum mismatch/, 'a bit flipped in the checksum');
  t.match(err(flip(0)), /bad magic/);
  // A torn write: the first half of a new block over the second half of an old one.
  const other = encodeBlock({ ...requestBlock(), generation: 43n, slots: requestBlock().slots.map(() => undefined) });
  t.match(err(Buffer.concat([other.subarray(0, 2048), good.subarray(2048)])), /checksum mismatch/, 'torn write');
  t.match(err(good, { kind: 'request', ownerHostId: 8 }), /block of host 7 at host 8/, 'a block at the wrong offset');
  t.match(err(good, { kind: 'reply', ownerHostId: 7 }), /kind request where reply/, 'a request block in the replies area');
  t.match(err(good.subarray(0, 512)), /not 4096/);
});

t.test('encode refuses inconsistent blocks', async (t) => {
  const b = requestBlock();
  t.throws(() => encodeBlock({ ...b, slots: b.slots.slice(1) }), /31 slots/);
  const r = emptyHostBlock('reply', 1, 1, 1n, 1n);
  r.slots[0] = b.slots[0];
  t.throws(() => encodeBlock(r), /cannot hold a request slot/);
  const bad = requestBlock();
  bad.slots[1] = { ...(bad.slots[0] as RequestSlot), sizeMiB: -1 };
  t.throws(() => encodeBlock(bad), /bad size/);
});
