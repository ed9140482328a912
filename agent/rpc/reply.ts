// A reply on its way to the wire. Most replies are one JSON text; a result
// that was serialised once in advance (rpc.discover's ~100 KB document,
// which does not change while the agent runs) is sent as the same Buffer
// every time, spliced between the reply's own short texts, so a call costs
// no serialisation and no copy of it.
import { ERRORS } from '../../api/errors.js';

/** A result already serialised as JSON (built once): sent as is, never parsed or serialised again. */
export class RawJson {
  readonly bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  static of(value: unknown): RawJson {
    return new RawJson(Buffer.from(JSON.stringify(value), 'utf8'));
  }
}

/** One reply message made of parts: texts and prebuilt buffers, in order. */
export class ReplyParts {
  constructor(readonly parts: readonly (string | Buffer)[]) {}

  /** Bytes on the wire (its payload). */
  get byteLength(): number {
    let n = 0;
    for (const p of this.parts) n += typeof p === 'string' ? Buffer.byteLength(p) : p.length;
    return n;
  }

  /** The whole reply as text (for tests and logs; the server sends the parts). */
  toString(): string {
    return this.parts.map((p) => (typeof p === 'string' ? p : p.toString('utf8'))).join('');
  }
}

/** What the dispatcher owes for a frame: text, or parts when a result was prebuilt. */
export type Reply = string | ReplyParts;

type Id = string | number | null;
export interface Response {
  jsonrpc: '2.0';
  id: Id;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** A response, or a batch of them (unbounded: see serializeBatch), as the reply to send. */
export function serialize(r: Response | readonly Response[]): Reply {
  if (Array.isArray(r)) return serializeBatch(r as readonly Response[], Infinity).reply;
  const one = r as Response;
  return one.result instanceof RawJson ? new ReplyParts(withRaw(one, one.result)) : JSON.stringify(one);
}

/**
 * A batch's reply, bounded: once the entries so far and the next one would
 * pass maxBytes, that entry and every later one get error 1012 (which says
 * the call ran) instead of their result. The reply is then at most maxBytes
 * plus a short error per entry left out. leftOut counts those entries.
 */
export function serializeBatch(batch: readonly Response[], maxBytes: number): { reply: Reply; leftOut: number } {
  const parts: (string | Buffer)[] = [];
  let text = '[';
  let bytes = 2;
  let leftOut = 0;
  batch.forEach((x, i) => {
    const sep = i > 0 ? ',' : '';
    let piece: string | [string, Buffer, string] = leftOut === 0 ? (x.result instanceof RawJson ? withRaw(x, x.result) : JSON.stringify(x)) : '';
    const size = typeof piece === 'string' ? Buffer.byteLength(piece) : Buffer.byteLength(piece[0]) + piece[1].length + Buffer.byteLength(piece[2]);
    if (leftOut > 0 || bytes + sep.length + size > maxBytes) {
      leftOut++;
      piece = JSON.stringify(replyTooLarge(x.id, maxBytes));
    }
    bytes += sep.length + (typeof piece === 'string' ? Buffer.byteLength(piece) : size);
    if (typeof piece === 'string') {
      text += sep + piece;
      return;
    }
    parts.push(text + sep + piece[0], piece[1]);
    text = piece[2];
  });
  if (parts.length === 0) return { reply: text + ']', leftOut };
  parts.push(text + ']');
  return { reply: new ReplyParts(parts), leftOut };
}

function replyTooLarge(id: Id, maxBytes: number): Response {
  const e = ERRORS.batchReplyTooLarge;
  return { jsonrpc: '2.0', id, error: { code: e.code, message: e.message, data: { maxBatchReplyBytes: maxBytes } } };
}

/** `{"jsonrpc":"2.0","id":…,"result":` + the prebuilt bytes + `}`. */
function withRaw(r: Response, raw: RawJson): [string, Buffer, string] {
  return [`{"jsonrpc":"2.0","id":${JSON.stringify(r.id)},"result":`, raw.bytes, '}'];
}
