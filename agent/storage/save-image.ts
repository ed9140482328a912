// Volume.getSaveImageState: the header of a hibernation state volume, read on this host. libvirt
// writes "LibvirtQemudPart" when a save begins and rewrites it to "LibvirtQemudSave" only after
// QEMU's whole state is on the volume, so these 16 bytes tell a complete save from a cut one.
import { open } from 'node:fs/promises';
import type { ResultOf } from '../../api/schema.js';
import type { Handler } from '../rpc/dispatcher.js';
import type { StoragePool } from './pool.js';

type SaveImageState = ResultOf<'Volume.getSaveImageState'>;

const MAGIC_BYTES = 16;
const COMPLETE = 'LibvirtQemudSave';
const PARTIAL = 'LibvirtQemudPart';
/** a read of 16 bytes that takes longer than this is a storage fault, not a slow disk */
const READ_TIMEOUT_MS = 10_000;

/** What the first bytes of a state volume say about the save in it. */
export function classifySaveHeader(head: Buffer): SaveImageState {
  const magic = head.subarray(0, MAGIC_BYTES).toString('latin1');
  const printable = [...magic].map((c) => (c >= ' ' && c <= '~' ? c : '.')).join('');
  if (magic === COMPLETE) return { state: 'complete', magic: printable };
  if (magic === PARTIAL) return { state: 'partial', magic: printable };
  if (head.length === 0 || head.subarray(0, MAGIC_BYTES).every((b) => b === 0)) return { state: 'empty', magic: printable };
  return { state: 'unrecognized', magic: printable };
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(MAGIC_BYTES);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_res, rej) => { timer = setTimeout(() => rej(new Error(`reading ${path} took over ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS); });
    try {
      const { bytesRead } = await Promise.race([fh.read(buf, 0, MAGIC_BYTES, 0), timeout]);
      return buf.subarray(0, bytesRead);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await fh.close();
  }
}

export function createSaveImageHandlers(pool: StoragePool): { 'Volume.getSaveImageState': Handler<'Volume.getSaveImageState'> } {
  return {
    'Volume.getSaveImageState': async (p) => {
      const dom = await pool.domain(p.storagedomainID);
      return dom.withPrepared(p.imageID, p.volumeID, { readOnly: true }, async (img) => classifySaveHeader(await readHead(img.path)));
    },
  };
}
