// Tasks on a block master domain: the `tasks` LV (8 MiB), an array of fixed
// slots, one task per slot. A block device cannot rename a temp file into
// place, so each slot holds two copies and a write goes to the copy that
// does not hold the newest record; the newest valid copy wins on reading.
// A torn or failed write therefore leaves the record as it was before.
//
//   slot i    at i × 16 KiB: copy A (8 KiB), copy B (8 KiB)
//   copy      0  magic "HVTASK01"
//             8  u32 sequence (grows with every write to the slot)
//            12  u32 JSON length (0: empty slot, a cleared task)
//            16  u32 CRC-32 of bytes 0..15 and the JSON
//            20  JSON record (UTF-8), zero padding
// An all-zero copy is invalid, so a fresh (zeroed) LV is an empty area. I/O
// bypasses the page cache (O_DIRECT) and writes are O_DSYNC: another host
// that becomes SPM reads what this one wrote.
import { crc32 } from 'node:zlib';
import type { Logger } from '../../log.js';
import { BlockFile } from '../mailbox/block-file.js';
import { TaskPersistError } from './errors.js';
import type { TaskStore } from './file-store.js';
import { decodeRecord, type TaskRecord } from './record.js';

export const COPY_BYTES = 8192;
export const SLOT_BYTES = 2 * COPY_BYTES;
export const AREA_BYTES = 8 * 1024 * 1024;
export const SLOT_COUNT = AREA_BYTES / SLOT_BYTES;
const MAGIC = Buffer.from('HVTASK01', 'latin1');
const HEADER = 20;

interface Copy { seq: number; json: string | undefined }

/** A copy's bytes for a record (undefined: the empty-slot marker). */
export function encodeCopy(seq: number, r: TaskRecord | undefined): Buffer {
  const json = r ? Buffer.from(JSON.stringify(r), 'utf8') : Buffer.alloc(0);
  if (HEADER + json.length > COPY_BYTES) throw new TaskPersistError(`task ${r?.id} record is ${json.length} bytes; a slot holds ${COPY_BYTES - HEADER}`);
  const b = Buffer.alloc(COPY_BYTES);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(seq >>> 0, 8);
  b.writeUInt32LE(json.length, 12);
  json.copy(b, HEADER);
  b.writeUInt32LE(crc32(Buffer.concat([b.subarray(0, 16), json])), 16);
  return b;
}

/** undefined when the copy is not valid (never written, torn, or corrupt). */
export function decodeCopy(b: Buffer): Copy | undefined {
  if (!b.subarray(0, 8).equals(MAGIC)) return undefined;
  const len = b.readUInt32LE(12);
  if (HEADER + len > COPY_BYTES) return undefined;
  const json = b.subarray(HEADER, HEADER + len);
  if (crc32(Buffer.concat([b.subarray(0, 16), json])) !== b.readUInt32LE(16)) return undefined;
  return { seq: b.readUInt32LE(8), json: len ? json.toString('utf8') : undefined };
}

/** The newer of two copies, and which one it is (0 = A, 1 = B). */
function newest(a: Copy | undefined, b: Copy | undefined): { copy: Copy | undefined; index: 0 | 1 | -1 } {
  if (a && (!b || a.seq >= b.seq)) return { copy: a, index: 0 };
  if (b) return { copy: b, index: 1 };
  return { copy: undefined, index: -1 };
}

export class SlotTaskStore implements TaskStore {
  /** Per slot: the newest copy's index and sequence (index -1: never written). */
  private readonly heads: Array<{ index: 0 | 1 | -1; seq: number }> = Array.from({ length: SLOT_COUNT }, () => ({ index: -1 as const, seq: 0 }));
  private readonly slotOf = new Map<string, number>();

  private constructor(readonly path: string, private readonly file: BlockFile, private readonly log: Logger) {}

  get location(): string { return `block:${this.path}`; }

  static async open(path: string, log: Logger): Promise<SlotTaskStore> {
    let file: BlockFile;
    try {
      file = await BlockFile.open(path, { writable: true, maxIoBytes: AREA_BYTES, sync: true, log });
      await file.ensureSize(AREA_BYTES);
    } catch (e) {
      throw new TaskPersistError(`cannot open the task area ${path}: ${(e as Error).message}`, { cause: e });
    }
    return new SlotTaskStore(path, file, log);
  }

  async load(): Promise<TaskRecord[]> {
    let area: Buffer;
    try {
      area = await this.file.read(0, AREA_BYTES);
    } catch (e) {
      throw new TaskPersistError(`cannot read the task area ${this.path}`, { cause: e });
    }
    this.slotOf.clear();
    const out: TaskRecord[] = [];
    for (let i = 0; i < SLOT_COUNT; i++) {
      const at = i * SLOT_BYTES;
      const { copy, index } = newest(decodeCopy(area.subarray(at, at + COPY_BYTES)), decodeCopy(area.subarray(at + COPY_BYTES, at + SLOT_BYTES)));
      this.heads[i] = { index, seq: copy?.seq ?? 0 };
      if (!copy?.json) continue;
      try {
        const r = decodeRecord(copy.json);
        if (this.slotOf.has(r.id)) throw new Error(`task ${r.id} is also in slot ${this.slotOf.get(r.id)}`);
        this.slotOf.set(r.id, i);
        out.push(r);
      } catch (e) {
        // A valid checksum over a record we cannot use: keep the slot, so nothing overwrites the evidence.
        this.heads[i] = { index, seq: copy.seq };
        this.slotOf.set(`bad:${i}`, i);
        this.log.error('unreadable task record left in its slot', { path: this.path, slot: i, err: e });
      }
    }
    return out;
  }

  async save(r: TaskRecord): Promise<void> {
    let slot = this.slotOf.get(r.id);
    const fresh = slot === undefined;
    if (slot === undefined) {
      const used = new Set(this.slotOf.values());
      slot = this.heads.findIndex((_h, i) => !used.has(i));
      if (slot < 0) throw new TaskPersistError(`the task area is full (${SLOT_COUNT} tasks not cleared); clear finished tasks`);
      this.slotOf.set(r.id, slot); // claimed before the write, so two new tasks never pick the same slot
    }
    try {
      await this.writeSlot(slot, r);
    } catch (e) {
      if (fresh) this.slotOf.delete(r.id); // nothing of it was written: the slot is free again
      throw e;
    }
  }

  async remove(taskID: string): Promise<void> {
    const slot = this.slotOf.get(taskID);
    if (slot === undefined) return;
    await this.writeSlot(slot, undefined);
    this.slotOf.delete(taskID);
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  private async writeSlot(slot: number, r: TaskRecord | undefined): Promise<void> {
    const head = this.heads[slot]!;
    const target = head.index === 0 ? 1 : 0; // never the copy that holds the newest record
    const seq = head.seq + 1;
    try {
      await this.file.write(slot * SLOT_BYTES + target * COPY_BYTES, encodeCopy(seq, r));
    } catch (e) {
      if (e instanceof TaskPersistError) throw e;
      throw new TaskPersistError(`cannot write slot ${slot} of the task area ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    this.heads[slot] = { index: target, seq };
  }
}
