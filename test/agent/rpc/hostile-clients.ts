// Clients that misbehave on purpose, written on raw TLS so that they do only
// what a test says: a WebSocket client that sends requests and never reads
// its replies, and TLS connections that never finish their upgrade. Every
// wait is bounded; everything is loopback.
import tls from 'node:tls';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { pkiPaths } from '../../../agent/pki/dev-ca.js';

export interface ClientCreds { key: Buffer; cert: Buffer; ca: Buffer }

export function clientCreds(pkiDir: string): ClientCreds {
  const p = pkiPaths(pkiDir);
  return { key: readFileSync(p.clientKey), cert: readFileSync(p.clientCert), ca: readFileSync(p.caCert) };
}

/** A masked client text frame (RFC 6455 5.2), as any WebSocket client must send. */
export function textFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, 0x80 | n])
    : n < 65536 ? Buffer.from([0x81, 0x80 | 126, n >> 8, n & 0xff])
      : Buffer.concat([Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0]), Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff])]);
  const mask = randomBytes(4);
  for (let i = 0; i < n; i++) payload[i]! ^= mask[i & 3]!;
  return Buffer.concat([head, mask, payload]);
}

export const UPGRADE_REQUEST = [
  'GET / HTTP/1.1', 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', '', '',
].join('\r\n');

export interface TlsOpen { sock: tls.TLSSocket; localPort: number; openedAt: number }

/** A TLS connection with our client certificate, from `localAddress` (any 127.x.y.z is this host). */
export function openTls(port: number, creds: ClientCreds, o: { localAddress?: string; timeoutMs?: number } = {}): Promise<TlsOpen> {
  return new Promise((resolve, reject) => {
    const openedAt = performance.now();
    const sock = tls.connect({
      host: '127.0.0.1', port, servername: 'localhost', ...creds, ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('TLS connect timed out')); }, o.timeoutMs ?? 10_000);
    sock.once('secureConnect', () => { clearTimeout(timer); resolve({ sock, localPort: sock.localPort ?? -1, openedAt }); });
    sock.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/**
 * A WebSocket that never reads: completes the upgrade, then stops reading
 * its socket for good. Frames it sends still go out.
 */
export class NonReadingClient {
  private constructor(readonly sock: tls.TLSSocket, readonly localPort: number) {}

  static async open(port: number, creds: ClientCreds, timeoutMs = 10_000): Promise<NonReadingClient> {
    const { sock, localPort } = await openTls(port, creds, { timeoutMs });
    sock.on('error', () => { /* a reset once the agent closes it is expected */ });
    await new Promise<void>((resolve, reject) => {
      let head = '';
      const timer = setTimeout(() => reject(new Error('no 101 answer')), timeoutMs);
      const onData = (d: Buffer): void => {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        clearTimeout(timer);
        sock.off('data', onData);
        if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        else resolve();
      };
      sock.on('data', onData);
      sock.write(UPGRADE_REQUEST);
    });
    sock.pause();
    return new NonReadingClient(sock, localPort);
  }

  /** Writes `count` requests of `frameText(i)` in chunks, without waiting for anything. */
  pipeline(count: number, frameText: (i: number) => string): void {
    const CHUNK = 500;
    for (let i = 0; i < count; i += CHUNK) {
      const frames: Buffer[] = [];
      for (let j = i; j < Math.min(count, i + CHUNK); j++) frames.push(textFrame(frameText(j)));
      this.sock.write(Buffer.concat(frames));
    }
  }

  /**
   * Whether the agent has closed the connection: reads again (discarding
   * what was queued) and waits up to `ms` for the end.
   */
  closedByPeer(ms: number): Promise<boolean> {
    if (this.sock.destroyed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.sock.off('close', onClose); resolve(false); }, ms);
      const onClose = (): void => { clearTimeout(timer); resolve(true); };
      this.sock.once('close', onClose);
      this.sock.on('data', () => { /* discarded */ });
      this.sock.resume();
    });
  }

  destroy(): void { this.sock.destroy(); }
}

export type StallKind = 'tcp-only' | 'tls-silent' | 'half-request-line' | 'slow-header';

export interface Stalled {
  kind: StallKind;
  /** The connection as the test holds it. */
  sock: net.Socket;
  localPort: number;
  openedAt: number;
  /** performance.now() when the agent closed it; undefined while open. */
  closedAt: number | undefined;
  stop(): void;
}

/**
 * A connection that never becomes a WebSocket: TCP only (no TLS ClientHello),
 * TLS and then silence, half a request line, or a header sent one byte every
 * `slowByteMs` (bounded: at most the upgrade request's length).
 */
export async function openStalled(kind: StallKind, port: number, creds: ClientCreds, o: { localAddress?: string; slowByteMs?: number } = {}): Promise<Stalled> {
  let sock: net.Socket;
  let localPort: number;
  let openedAt: number;
  if (kind === 'tcp-only') {
    openedAt = performance.now();
    sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    localPort = sock.localPort ?? -1;
  } else {
    const t = await openTls(port, creds, o);
    ({ sock, localPort, openedAt } = t);
  }
  let timer: NodeJS.Timeout | undefined;
  const s: Stalled = { kind, sock, localPort, openedAt, closedAt: undefined, stop: () => { clearInterval(timer); sock.destroy(); } };
  sock.on('error', () => { /* the agent ending it is the point */ });
  sock.on('data', () => { /* nothing is expected; read so that a close is seen */ });
  sock.once('close', () => { clearInterval(timer); s.closedAt = performance.now(); });
  if (kind === 'half-request-line') sock.write('GET / HT');
  if (kind === 'slow-header') {
    let sent = 0;
    timer = setInterval(() => {
      if (sent >= UPGRADE_REQUEST.length - 1 || sock.destroyed) { clearInterval(timer); return; }
      sock.write(UPGRADE_REQUEST[sent++]!);
    }, o.slowByteMs ?? 200);
  }
  return s;
}

/** Open descriptors of a process. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** VmRSS of a process, in bytes. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * A WebSocket client that reads, but slowly: at most `bytesPerSecond`, by
 * pausing its socket after each chunk. It counts the messages it receives
 * (frames with FIN set; the agent sends large replies as fragments).
 */
export class SlowReader {
  messages = 0;
  closed = false;
  private pending = Buffer.alloc(0);

  private constructor(readonly client: NonReadingClient, private readonly bytesPerSecond: number) {
    const sock = client.sock;
    sock.on('data', (d: Buffer) => {
      this.take(d);
      sock.pause();
      setTimeout(() => { if (!sock.destroyed) sock.resume(); }, (d.length / this.bytesPerSecond) * 1000);
    });
    sock.once('close', () => { this.closed = true; });
    sock.resume();
  }

  static async open(port: number, creds: ClientCreds, bytesPerSecond: number): Promise<SlowReader> {
    return new SlowReader(await NonReadingClient.open(port, creds), bytesPerSecond);
  }

  get localPort(): number {
    return this.client.localPort;
  }

  /** Server frames are unmasked: FIN+opcode, a length (7 bits, or 16 or 64 more), the payload. */
  private take(d: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : Buffer.from(d);
    for (;;) {
      const b = this.pending;
      if (b.length < 2) return;
      let len = b[1]! & 0x7f;
      let at = 2;
      if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); at = 10; }
      if (b.length < at + len) return;
      const fin = (b[0]! & 0x80) !== 0;
      const opcode = b[0]! & 0x0f;
      if (fin && opcode <= 2) this.messages++;
      this.pending = b.subarray(at + len);
    }
  }
}
