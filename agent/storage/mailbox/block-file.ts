// Block-aligned I/O on a mailbox area (a plain file or a block device) that
// bypasses the page cache when it can: every other host reads and writes the
// same shared storage, so a cached read could be stale.
//
// - Opened with O_DIRECT. Writes need visibility to the other hosts, not
//   durability (a message lost in a crash is re-sent), so O_DSYNC is off by
//   default with O_DIRECT (`sync: true` adds it; it costs a cache flush per
//   write, about 3× the concurrent round trip on a loop device). If the file
//   system refuses O_DIRECT at open (EINVAL), falls back to a buffered O_DSYNC
//   handle (direct: 'auto', the default): correct only where every host shares
//   one page cache (the single-machine lab) or the file system is coherent.
// - O_DIRECT needs the memory buffer aligned (to the device's DMA alignment,
//   512 B here), and Node cannot allocate an aligned Buffer or tell a Buffer's
//   address. So each handle keeps one scratch Buffer 4 KiB larger than its
//   largest I/O and does its I/O at an offset inside it; when the kernel
//   answers EINVAL, the handle tries the next offsets (8-byte steps, at most
//   4 KiB) until one is accepted, and keeps it (a Buffer never moves). Only if
//   none is accepted does it reopen without O_DIRECT and log a warning.
//   (Probing by reading is not enough: the kernel zero-fills reads of file
//   holes without checking the alignment; a failed write writes nothing, so
//   retrying it is safe.)
// - One read or write is one pread/pwrite of whole 4 KiB blocks at a 4 KiB
//   offset. I/O on one handle is serialised (the scratch buffer is shared).
import { constants } from 'node:fs';
import { open, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { silentLogger, type Logger } from '../../log.js';
import { BLOCK_SIZE } from './format.js';
import { MailboxIoError } from './errors.js';

export type DirectIoMode = 'auto' | 'require' | 'off';

export interface BlockFileOptions {
  writable: boolean;
  /** The largest single read or write, in bytes (a multiple of 4 KiB). */
  maxIoBytes: number;
  /** 'auto' (default): O_DIRECT when the file system allows it; 'require': fail otherwise; 'off': buffered. */
  direct?: DirectIoMode;
  /** O_DSYNC with O_DIRECT too (default false; buffered handles always use O_DSYNC). */
  sync?: boolean;
  log?: Logger;
}

const ALIGN_SLACK = 4096;
const ALIGN_STEP = 8;

const bufferedFlags = (writable: boolean): number => (writable ? constants.O_RDWR | constants.O_DSYNC : constants.O_RDONLY);
const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

export class BlockFile {
  private base = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly scratch: Buffer;
  private readonly log: Logger;

  private constructor(
    readonly path: string,
    private fh: FileHandle,
    private directOn: boolean,
    private readonly opts: BlockFileOptions,
  ) {
    this.scratch = Buffer.alloc(opts.maxIoBytes + ALIGN_SLACK);
    this.log = (opts.log ?? silentLogger).child({ path });
  }

  static async open(path: string, opts: BlockFileOptions): Promise<BlockFile> {
    if (opts.maxIoBytes <= 0 || opts.maxIoBytes % BLOCK_SIZE) throw new RangeError(`maxIoBytes must be a positive multiple of ${BLOCK_SIZE}`);
    const mode = opts.direct ?? 'auto';
    if (mode !== 'off') {
      const flags = (opts.writable ? constants.O_RDWR : constants.O_RDONLY) | (opts.writable && opts.sync ? constants.O_DSYNC : 0);
      try {
        return new BlockFile(path, await open(path, flags | constants.O_DIRECT), true, opts);
      } catch (e) {
        if (errCode(e) !== 'EINVAL' || mode === 'require') throw new MailboxIoError(`cannot open ${path} with O_DIRECT`, { cause: e, path });
        (opts.log ?? silentLogger).warn('O_DIRECT refused at open; using buffered O_DSYNC I/O (correct only if every host shares this page cache)', { path });
      }
    }
    try {
      return new BlockFile(path, await open(path, bufferedFlags(opts.writable)), false, opts);
    } catch (e) {
      throw new MailboxIoError(`cannot open ${path}`, { cause: e, path });
    }
  }

  /** Whether I/O currently bypasses the page cache. */
  get direct(): boolean {
    return this.directOn;
  }

  /** Reads `length` bytes at `offset` (both multiples of 4 KiB); returns a fresh Buffer. */
  read(offset: number, length: number): Promise<Buffer> {
    return this.exclusive(async () => (await this.io(offset, length, undefined)) as Buffer);
  }

  /** Writes `data` at `offset` in one pwrite (lengths and offsets in whole 4 KiB blocks). */
  write(offset: number, data: Buffer): Promise<void> {
    if (!this.opts.writable) return Promise.reject(new MailboxIoError(`${this.path} is open read-only`, { path: this.path }));
    return this.exclusive(async () => { await this.io(offset, data.length, data); });
  }

  /** Throws unless the area holds at least `bytes` (reads its last block). */
  async ensureSize(bytes: number): Promise<void> {
    try {
      await this.read(bytes - BLOCK_SIZE, BLOCK_SIZE);
    } catch (e) {
      if (e instanceof MailboxIoError && e.short) throw new MailboxIoError(`mailbox area ${this.path} is smaller than ${bytes} bytes`, { cause: e, path: this.path });
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.fh.close().catch(() => undefined);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new MailboxIoError(`${this.path} is closed`, { path: this.path }));
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async io(offset: number, length: number, data: Buffer | undefined): Promise<Buffer | undefined> {
    if (offset % BLOCK_SIZE || length % BLOCK_SIZE || length <= 0 || length > this.opts.maxIoBytes) {
      throw new RangeError(`unaligned or oversized I/O: offset ${offset}, length ${length} (max ${this.opts.maxIoBytes})`);
    }
    const attempt = async (base: number): Promise<Buffer | undefined> => {
      const view = this.scratch.subarray(base, base + length);
      if (data) {
        data.copy(view);
        await this.all('write', view, offset);
        return undefined;
      }
      await this.all('read', view, offset);
      return Buffer.from(view);
    };
    try {
      return await attempt(this.base);
    } catch (e) {
      if (errCode(e) !== 'EINVAL' || !this.directOn) throw this.wrap(e, offset, length, data);
    }
    // The buffer is not aligned enough for this device: find an offset that is.
    for (let b = 0; b < ALIGN_SLACK; b += ALIGN_STEP) {
      if (b === this.base) continue;
      try {
        const r = await attempt(b);
        this.log.debug('O_DIRECT buffer realigned', { scratchOffset: b });
        this.base = b;
        return r;
      } catch (e) {
        if (errCode(e) !== 'EINVAL') throw this.wrap(e, offset, length, data);
      }
    }
    if ((this.opts.direct ?? 'auto') === 'require') throw new MailboxIoError(`O_DIRECT I/O on ${this.path} fails with EINVAL at every buffer alignment`, { path: this.path });
    this.log.warn('O_DIRECT I/O fails at every buffer alignment; reopening buffered (O_DSYNC)');
    const fh = await open(this.path, bufferedFlags(this.opts.writable));
    await this.fh.close().catch(() => undefined);
    this.fh = fh;
    this.directOn = false;
    try {
      return await attempt(this.base);
    } catch (e) {
      throw this.wrap(e, offset, length, data);
    }
  }

  private async all(op: 'read' | 'write', view: Buffer, offset: number): Promise<void> {
    let done = 0;
    for (let i = 0; done < view.length; i++) {
      if (i > 64) throw new MailboxIoError(`${op} of ${view.length} bytes at ${offset} made no progress`, { path: this.path, short: true });
      const n = op === 'read'
        ? (await this.fh.read(view, done, view.length - done, offset + done)).bytesRead
        : (await this.fh.write(view, done, view.length - done, offset + done)).bytesWritten;
      if (n === 0) throw new MailboxIoError(`short ${op} at ${offset + done} of ${this.path} (end of the area?)`, { path: this.path, short: true });
      done += n;
    }
  }

  private wrap(e: unknown, offset: number, length: number, data: Buffer | undefined): unknown {
    if (e instanceof MailboxIoError || e instanceof RangeError) return e;
    return new MailboxIoError(`${data ? 'write' : 'read'} of ${length} bytes at ${offset} of ${this.path} failed: ${(e as Error).message}`, { cause: e, path: this.path });
  }
}

/**
 * Makes `path` a regular file of at least `bytes` (sparse, zero-filled: an empty
 * mailbox). Leaves an existing larger file, or a block device, alone.
 */
export async function ensureAreaFile(path: string, bytes: number): Promise<void> {
  const st = await stat(path).catch((e: unknown) => (errCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
  if (!st) {
    await writeFile(path, Buffer.alloc(0), { flag: 'wx' }).catch((e: unknown) => (errCode(e) === 'EEXIST' ? undefined : Promise.reject(e)));
    await truncate(path, bytes);
    return;
  }
  if (st.isFile() && st.size < bytes) await truncate(path, bytes);
}
