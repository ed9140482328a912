// The extension mailbox's on-disk format (see README.md in this folder): pure
// encode/decode of 4 KiB blocks and their 128-byte message slots, with a
// CRC-32 per block. No I/O here.
//
// An area (the requests area or the replies area) is an array of 4 KiB blocks:
// block 0 is the area's control block (the event block in the requests area,
// the SPM block in the replies area) and block N (1..maxHosts) belongs to host
// id N. An all-zero block is valid and means "never written / empty", so a
// freshly zeroed (or sparse) file or LV is an empty mailbox.
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const BLOCK_SIZE = 4096;
export const HEADER_SIZE = 64;
export const TRAILER_SIZE = 64;
export const SLOT_SIZE = 128;
/** Message slots in one host block: (4096 − 64 − 64) / 128. */
export const SLOTS_PER_HOST = (BLOCK_SIZE - HEADER_SIZE - TRAILER_SIZE) / SLOT_SIZE;
export const FORMAT_VERSION = 1;
/** Host ids are 1..MAX_HOST_ID (the 16-bit owner field would allow more; sanlock allows 2000). */
export const MAX_HOST_ID = 2000;
export const REASON_TEXT_BYTES = 64;

const MAGIC = Buffer.from('HVMB', 'latin1');
const END_MAGIC = Buffer.from('HVME', 'latin1');
const CRC_OFFSET = BLOCK_SIZE - 4;
const END_MAGIC_OFFSET = BLOCK_SIZE - 8;

/** What a block is, byte 5 of its header. */
export const BlockKind = { request: 0x51 /* Q */, reply: 0x50 /* P */, event: 0x45 /* E */, spm: 0x53 /* S */ } as const;
export type BlockKindName = keyof typeof BlockKind;

/** Byte 0 of a slot. */
export const SlotState = { empty: 0, request: 1, replyOk: 2, replyFailed: 3 } as const;
export const Opcode = { extend: 1 } as const;

/** Why a request failed (u16 in a failed reply). */
export const ReasonCode = {
  none: 0,
  extendFailed: 1,
  badRequest: 2,
  unsupportedOp: 3,
  noSpace: 4,
  notFound: 5,
} as const;
export type ReasonName = keyof typeof ReasonCode;

export function reasonName(code: number): ReasonName | `unknown(${number})` {
  for (const [k, v] of Object.entries(ReasonCode)) if (v === code) return k as ReasonName;
  return `unknown(${code})`;
}

/** Bytes of one area for host ids 1..maxHosts (plus the control block 0). */
export function areaBytes(maxHosts: number): number {
  return (maxHosts + 1) * BLOCK_SIZE;
}

/** Byte offset of host `hostId`'s block (or of the control block, for 0). */
export function blockOffset(hostId: number): number {
  return hostId * BLOCK_SIZE;
}

export function validHostId(hostId: number, maxHosts: number): boolean {
  return Number.isInteger(hostId) && hostId >= 1 && hostId <= maxHosts && hostId <= MAX_HOST_ID;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}
/** RFC 4122 byte order (the hex digits in string order). */
export function uuidToBytes(uuid: string): Buffer {
  if (!isUuid(uuid)) throw new TypeError(`not a UUID: '${uuid}'`);
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}
export function bytesToUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function requestIdString(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}

/** A pending request in a host's request block. */
export interface RequestSlot {
  state: 'request';
  opcode: number;
  requestId: bigint;
  /** 0 for the first send; bumped by every re-send. */
  attempt: number;
  domainId: string;
  volumeId: string;
  sizeMiB: number;
}

/** An answer in a host's reply block, in the slot of the request it answers. */
export interface ReplySlot {
  state: 'ok' | 'failed';
  opcode: number;
  requestId: bigint;
  /** The request attempt this reply answered. */
  attempt: number;
  domainId: string;
  volumeId: string;
  sizeMiB: number;
  reason: number;
  reasonText: string;
  spmHostId: number;
  /** How long the SPM's handler ran (ms, saturated at 2^32−1). */
  extendMs: number;
}

export type Slot = RequestSlot | ReplySlot | undefined;

export interface BlockHeader {
  kind: BlockKindName;
  /** The block's index in its area: the host id the block belongs to, 0 for the control block. */
  ownerHostId: number;
  /** Bumped by the writer on every write (the event block: a random nonce per bump). */
  generation: bigint;
  /** Random per writer instance (per HSM or SPM start). */
  incarnation: bigint;
  writtenAtMs: number;
  /** The host that wrote the block (the SPM's host id in reply/SPM blocks). */
  writerHostId: number;
}

export interface Block extends BlockHeader {
  /** SLOTS_PER_HOST entries for request/reply blocks, none for control blocks. */
  slots: Slot[];
}

export type DecodeResult = { ok: true; block: Block; empty: boolean } | { ok: false; error: string };

export function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i += 8) if (buf.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

/** CRC-32 of a block's bytes 0..4091. */
export function blockChecksum(block: Buffer): number {
  return crc32(block.subarray(0, CRC_OFFSET));
}

function kindName(byte: number): BlockKindName | undefined {
  for (const [k, v] of Object.entries(BlockKind)) if (v === byte) return k as BlockKindName;
  return undefined;
}

const clampU32 = (n: number): number => Math.max(0, Math.min(0xffff_ffff, Math.round(n)));

function encodeSlot(out: Buffer, slot: Slot): void {
  if (!slot) return; // already zero
  const state = slot.state === 'request' ? SlotState.request : slot.state === 'ok' ? SlotState.replyOk : SlotState.replyFailed;
  out.writeUInt8(state, 0);
  out.writeUInt8(slot.opcode, 1);
  out.writeUInt16BE(slot.attempt & 0xffff, 2);
  out.writeBigUInt64BE(BigInt.asUintN(64, slot.requestId), 4);
  uuidToBytes(slot.domainId).copy(out, 12);
  uuidToBytes(slot.volumeId).copy(out, 28);
  if (!Number.isSafeInteger(slot.sizeMiB) || slot.sizeMiB < 0) throw new RangeError(`bad size ${slot.sizeMiB} MiB`);
  out.writeBigUInt64BE(BigInt(slot.sizeMiB), 44);
  if (slot.state !== 'request') {
    out.writeUInt16BE(slot.reason & 0xffff, 52);
    out.writeUInt16BE(slot.spmHostId & 0xffff, 54);
    out.writeUInt32BE(clampU32(slot.extendMs), 56);
    out.write(slot.reasonText, 64, REASON_TEXT_BYTES, 'utf8'); // writes whole characters only
  }
}

function decodeSlot(b: Buffer): Slot | { invalid: string } {
  const state = b.readUInt8(0);
  if (state === SlotState.empty) return undefined;
  if (state !== SlotState.request && state !== SlotState.replyOk && state !== SlotState.replyFailed) return { invalid: `unknown slot state ${state}` };
  const size = b.readBigUInt64BE(44);
  const common = {
    opcode: b.readUInt8(1),
    attempt: b.readUInt16BE(2),
    requestId: b.readBigUInt64BE(4),
    domainId: bytesToUuid(b.subarray(12, 28)),
    volumeId: bytesToUuid(b.subarray(28, 44)),
    // An absurd size becomes NaN: the SPM answers it with badRequest.
    sizeMiB: size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : Number.NaN,
  };
  if (state === SlotState.request) return { state: 'request', ...common };
  const text = b.subarray(64, 64 + REASON_TEXT_BYTES);
  const nul = text.indexOf(0);
  return {
    state: state === SlotState.replyOk ? 'ok' : 'failed',
    ...common,
    reason: b.readUInt16BE(52),
    spmHostId: b.readUInt16BE(54),
    extendMs: b.readUInt32BE(56),
    reasonText: text.subarray(0, nul < 0 ? text.length : nul).toString('utf8'),
  };
}

/** Encodes one whole 4 KiB block, checksum included. */
export function encodeBlock(block: Block): Buffer {
  const out = Buffer.alloc(BLOCK_SIZE);
  MAGIC.copy(out, 0);
  out.writeUInt8(FORMAT_VERSION, 4);
  out.writeUInt8(BlockKind[block.kind], 5);
  out.writeUInt16BE(block.ownerHostId, 6);
  out.writeBigUInt64BE(BigInt.asUintN(64, block.generation), 8);
  out.writeBigUInt64BE(BigInt.asUintN(64, block.incarnation), 16);
  out.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(block.writtenAtMs))), 24);
  const isHost = block.kind === 'request' || block.kind === 'reply';
  if (isHost && block.slots.length !== SLOTS_PER_HOST) throw new RangeError(`a host block has ${SLOTS_PER_HOST} slots, got ${block.slots.length}`);
  if (!isHost && block.slots.length) throw new RangeError('a control block has no slots');
  out.writeUInt16BE(block.slots.length, 32);
  out.writeUInt16BE(block.writerHostId, 34);
  block.slots.forEach((s, i) => {
    if (s && (s.state === 'request') !== (block.kind === 'request')) throw new TypeError(`a ${block.kind} block cannot hold a ${s.state} slot`);
    encodeSlot(out.subarray(HEADER_SIZE + i * SLOT_SIZE, HEADER_SIZE + (i + 1) * SLOT_SIZE), s);
  });
  END_MAGIC.copy(out, END_MAGIC_OFFSET);
  out.writeUInt32BE(blockChecksum(out), CRC_OFFSET);
  return out;
}

/** An empty host block (what an HSM or a new SPM writes to start clean). */
export function emptyHostBlock(kind: 'request' | 'reply', ownerHostId: number, writerHostId: number, incarnation: bigint, generation: bigint): Block {
  return { kind, ownerHostId, writerHostId, incarnation, generation, writtenAtMs: Date.now(), slots: new Array<Slot>(SLOTS_PER_HOST).fill(undefined) };
}

/** A whole replies area as a new SPM writes it: its SPM block, then an empty reply block per host. */
export function emptyRepliesArea(maxHosts: number, spmHostId: number, incarnation: bigint): Buffer {
  const area = Buffer.alloc(areaBytes(maxHosts));
  encodeBlock({ kind: 'spm', ownerHostId: 0, writerHostId: spmHostId, incarnation, generation: 1n, writtenAtMs: Date.now(), slots: [] }).copy(area, 0);
  for (let h = 1; h <= maxHosts; h++) encodeBlock(emptyHostBlock('reply', h, spmHostId, incarnation, 1n)).copy(area, blockOffset(h));
  return area;
}

/**
 * Decodes and validates one block: checksum, magic, version, kind and owner.
 * An all-zero block is a valid empty block of the expected kind.
 */
export function decodeBlock(buf: Buffer, expect: { kind: BlockKindName; ownerHostId: number }): DecodeResult {
  if (buf.length !== BLOCK_SIZE) return { ok: false, error: `block is ${buf.length} bytes, not ${BLOCK_SIZE}` };
  const isHost = expect.kind === 'request' || expect.kind === 'reply';
  if (isZero(buf)) {
    return { ok: true, empty: true, block: {
      kind: expect.kind, ownerHostId: expect.ownerHostId, generation: 0n, incarnation: 0n, writtenAtMs: 0, writerHostId: 0,
      slots: isHost ? new Array<Slot>(SLOTS_PER_HOST).fill(undefined) : [],
    } };
  }
  if (!buf.subarray(0, 4).equals(MAGIC) || !buf.subarray(END_MAGIC_OFFSET, CRC_OFFSET).equals(END_MAGIC)) return { ok: false, error: 'bad magic' };
  const stored = buf.readUInt32BE(CRC_OFFSET);
  const actual = blockChecksum(buf);
  if (stored !== actual) return { ok: false, error: `checksum mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)})` };
  const version = buf.readUInt8(4);
  if (version !== FORMAT_VERSION) return { ok: false, error: `unsupported format version ${version}` };
  const kind = kindName(buf.readUInt8(5));
  if (kind !== expect.kind) return { ok: false, error: `block kind ${kind ?? buf.readUInt8(5)} where ${expect.kind} was expected` };
  const ownerHostId = buf.readUInt16BE(6);
  if (ownerHostId !== expect.ownerHostId) return { ok: false, error: `block of host ${ownerHostId} at host ${expect.ownerHostId}'s offset` };
  const slotCount = buf.readUInt16BE(32);
  if (slotCount !== (isHost ? SLOTS_PER_HOST : 0)) return { ok: false, error: `bad slot count ${slotCount}` };
  const slots: Slot[] = [];
  for (let i = 0; i < slotCount; i++) {
    const s = decodeSlot(buf.subarray(HEADER_SIZE + i * SLOT_SIZE, HEADER_SIZE + (i + 1) * SLOT_SIZE));
    if (s && 'invalid' in s) return { ok: false, error: `slot ${i}: ${s.invalid}` };
    if (s && (s.state === 'request') !== (kind === 'request')) return { ok: false, error: `slot ${i}: a ${s.state} slot in a ${kind} block` };
    slots.push(s);
  }
  return { ok: true, empty: false, block: {
    kind, ownerHostId, slots,
    generation: buf.readBigUInt64BE(8),
    incarnation: buf.readBigUInt64BE(16),
    writtenAtMs: Number(buf.readBigUInt64BE(24)),
    writerHostId: buf.readUInt16BE(34),
  } };
}

/** A random u64 (incarnations, event nonces). */
export function randomU64(): bigint {
  return randomBytes(8).readBigUInt64BE(0);
}
