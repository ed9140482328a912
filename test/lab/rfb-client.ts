// A minimal RFB (VNC) client for tests: protocol 3.8, VNC authentication
// (DES challenge-response, RFC 6143 §7.2.2), then ClientInit/ServerInit so a
// success means a real session, not just an accepted password. Every read is
// bounded by the given timeout.
import { createCipheriv } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RfbResult {
  ok: boolean;
  /** the server's reason when it refused */
  reason?: string;
  /** from ServerInit, on success */
  desktop?: { name: string; width: number; height: number };
}

/** Bytes from a socket, read exactly as asked, or an error after the timeout or on close. */
class Reader {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended: Error | undefined;

  constructor(private readonly s: Socket) {
    s.on('data', (b: Buffer) => { this.buf = Buffer.concat([this.buf, b]); this.wake?.(); });
    s.on('close', () => { this.ended ??= new Error('the server closed the connection'); this.wake?.(); });
    s.on('error', (e) => { this.ended = e; this.wake?.(); });
  }

  async read(n: number, deadline: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw this.ended;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`RFB: no answer within the timeout (wanted ${n} bytes, have ${this.buf.length})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => { clearTimeout(t); this.wake = undefined; r(); };
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

/**
 * VNC's DES: the password, zero-padded to 8 bytes, with each byte's bits
 * reversed, is the key. OpenSSL 3 keeps single DES in its legacy provider, so
 * this uses two-key triple DES with both keys equal, which is single DES.
 */
export function vncAuthResponse(password: string, challenge: Buffer): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) {
    let b = key[i]!;
    let r = 0;
    for (let j = 0; j < 8; j++) { r = (r << 1) | (b & 1); b >>= 1; }
    key[i] = r;
  }
  return desEcb(key, challenge);
}

/** Single DES, ECB, no padding: two-key triple DES with both keys equal (E_k D_k E_k = E_k). */
export function desEcb(key: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('des-ede-ecb', Buffer.concat([key, key]), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/** Connects, authenticates with `password`, and on success reads the desktop's name and size. */
export async function rfbHandshake(host: string, port: number, password: string, timeoutMs = 5_000): Promise<RfbResult> {
  const deadline = Date.now() + timeoutMs;
  const s = connect({ host, port });
  const r = new Reader(s);
  try {
    const version = (await r.read(12, deadline)).toString('latin1');
    if (!/^RFB 003\.00[3-8]\n$/.test(version)) throw new Error(`RFB: unexpected greeting ${JSON.stringify(version)}`);
    s.write('RFB 003.008\n');
    const n = (await r.read(1, deadline))[0]!;
    if (n === 0) return { ok: false, reason: await reasonOf(r, deadline) };
    const types = [...(await r.read(n, deadline))];
    if (!types.includes(2)) throw new Error(`RFB: the server offers no VNC authentication (types ${types.join(',')})`);
    s.write(Buffer.from([2]));
    const challenge = await r.read(16, deadline);
    s.write(vncAuthResponse(password, challenge));
    const result = (await r.read(4, deadline)).readUInt32BE(0);
    if (result !== 0) return { ok: false, reason: await reasonOf(r, deadline).catch(() => `security result ${result}`) };
    s.write(Buffer.from([1])); // ClientInit: shared
    const init = await r.read(24, deadline);
    const name = (await r.read(init.readUInt32BE(20), deadline)).toString('utf8');
    return { ok: true, desktop: { name, width: init.readUInt16BE(0), height: init.readUInt16BE(2) } };
  } finally {
    s.destroy();
  }
}

async function reasonOf(r: Reader, deadline: number): Promise<string> {
  const len = (await r.read(4, deadline)).readUInt32BE(0);
  return (await r.read(Math.min(len, 4096), deadline)).toString('utf8').replace(/\0+$/, '');
}
