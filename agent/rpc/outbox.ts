// A connection's unsent messages, handed to its socket a little at a time.
// Whatever is written to a TLS socket is encrypted at once, and what the
// peer does not read stays encrypted in the agent's memory: measured here,
// Node encrypts at 4-15 ms per MB on the event loop, and a socket that is
// handed 16 MB while its peer is not reading flushes them in one 240-640 ms
// writev when the previous write completes. So messages wait here, as the
// strings or shared Buffers they already are (rpc.discover's document costs
// nothing per reply), and the socket gets the next one only while less than
// SOCKET_HIGH_WATER bytes are pending on it. A large message is cut into
// fragments of at most FRAGMENT_BYTES, so no single write is large.
import type { WebSocket } from 'ws';
import type { Reply } from './reply.js';

/** Pending bytes on the socket below which it is handed more. */
export const SOCKET_HIGH_WATER = 256 * 1024;
export const FRAGMENT_BYTES = 256 * 1024;

interface Frame {
  data: string | Buffer;
  /** Last fragment of its message. */
  fin: boolean;
  bytes: number;
}

export class Outbox {
  private frames: Frame[] = [];
  private head = 0;
  /** Bytes waiting here (not yet handed to the socket). */
  bytes = 0;

  get empty(): boolean {
    return this.head === this.frames.length;
  }

  /**
   * Sends one message: at once if nothing waits and the socket has room and
   * it is one small text (an engine's usual reply), else through the queue.
   */
  send(ws: WebSocket, message: Reply): void {
    if (this.head === this.frames.length && typeof message === 'string' && message.length <= FRAGMENT_BYTES / 3
      && ws.readyState === ws.OPEN && ws.bufferedAmount < SOCKET_HIGH_WATER) {
      ws.send(message);
      return;
    }
    this.push(message);
    this.flush(ws);
  }

  /** Queues one message: a text, or a reply's parts (sent as fragments of one message). */
  push(message: Reply): void {
    const parts = typeof message === 'string' ? [message] : message.parts;
    const last = parts.length - 1;
    parts.forEach((part, i) => {
      // A string's length undercounts its UTF-8 bytes by at most 3 times.
      if (part.length <= (typeof part === 'string' ? FRAGMENT_BYTES / 3 : FRAGMENT_BYTES)) return this.add(part, i === last, part.length);
      const buf = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
      for (let at = 0; at < buf.length; at += FRAGMENT_BYTES) {
        const end = Math.min(buf.length, at + FRAGMENT_BYTES);
        this.add(buf.subarray(at, end), i === last && end === buf.length, end - at);
      }
    });
  }

  /** Hands frames to the socket while little is pending on it. */
  flush(ws: WebSocket): void {
    if (ws.readyState !== ws.OPEN) return;
    while (this.head < this.frames.length && ws.bufferedAmount < SOCKET_HIGH_WATER) {
      const f = this.frames[this.head]!;
      this.frames[this.head++] = undefined as never; // let it be collected
      this.bytes -= f.bytes;
      ws.send(f.data, { binary: false, fin: f.fin });
    }
    if (this.head > 0 && this.head === this.frames.length) {
      this.frames = [];
      this.head = 0;
    }
  }

  /** Drops everything not yet handed to the socket (the connection is closing). */
  clear(): void {
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
  }

  private add(data: string | Buffer, fin: boolean, bytes: number): void {
    this.frames.push({ data, fin, bytes });
    this.bytes += bytes;
  }
}
