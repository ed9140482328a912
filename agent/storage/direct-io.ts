// O_DIRECT reads and writes of small aligned blocks on shared block devices
// (the metadata LV's slots). Another host's write is only visible to a read
// that bypasses this host's page cache, and Node cannot allocate the aligned
// buffers O_DIRECT needs, so this uses dd, as VDSM does.
import type { Logger } from '../log.js';
import { StorageError } from './errors.js';
import { run as defaultRunner, type Runner } from './exec.js';

export interface DirectIoOptions {
  timeoutMs: number;
  runner?: Runner;
  log?: Logger;
}

const ALIGN = 4096;

function checkAligned(offset: number, length: number): void {
  if (offset % ALIGN || length % ALIGN || length <= 0) {
    throw new StorageError('internalError', `direct I/O needs ${ALIGN}-byte alignment (offset ${offset}, length ${length})`);
  }
}

export async function directRead(path: string, offset: number, length: number, o: DirectIoOptions): Promise<Buffer> {
  checkAligned(offset, length);
  const r = await (o.runner ?? defaultRunner)(
    ['dd', `if=${path}`, 'iflag=direct,skip_bytes', `bs=${length}`, `skip=${offset}`, 'count=1', 'status=none'],
    { timeoutMs: o.timeoutMs, ...(o.log ? { log: o.log } : {}) },
  );
  if (r.stdoutBuf.length !== length) {
    throw new StorageError('internalError', `short read of ${path} at ${offset}: ${r.stdoutBuf.length} of ${length} bytes`, 'volumeMetadataReadError');
  }
  return r.stdoutBuf;
}

export async function directWrite(path: string, offset: number, data: Buffer, o: DirectIoOptions): Promise<void> {
  checkAligned(offset, data.length);
  await (o.runner ?? defaultRunner)(
    ['dd', `of=${path}`, 'oflag=direct,seek_bytes', 'iflag=fullblock', 'conv=notrunc,fsync', `bs=${data.length}`, `seek=${offset}`, 'count=1', 'status=none'],
    { timeoutMs: o.timeoutMs, input: data, ...(o.log ? { log: o.log } : {}) },
  );
}
