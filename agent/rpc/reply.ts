// A reply on its way to the wire. Most replies are one JSON text; a result
// that was serialised once in advance (rpc.discover's ~100 KB document,
// which does not change while the agent runs) is sent as the same Buffer
// every time, spliced between the reply's own short texts, so a call costs
// no serialisation and no copy of it.

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

/** A response, or a batch of them, as the reply to send. */
export function serialize(r: Response | readonly Response[]): Reply {
  if (!Array.isArray(r)) {
    const one = r as Response;
    return one.result instanceof RawJson ? new ReplyParts(withRaw(one, one.result)) : JSON.stringify(one);
  }
  const batch = r as readonly Response[];
  if (!batch.some((x) => x.result instanceof RawJson)) return JSON.stringify(batch);
  const parts: (string | Buffer)[] = [];
  let text = '[';
  batch.forEach((x, i) => {
    if (i > 0) text += ',';
    if (!(x.result instanceof RawJson)) {
      text += JSON.stringify(x);
      return;
    }
    const [head, raw, tail] = withRaw(x, x.result);
    parts.push(text + head, raw);
    text = tail;
  });
  parts.push(text + ']');
  return new ReplyParts(parts);
}

/** `{"jsonrpc":"2.0","id":…,"result":` + the prebuilt bytes + `}`. */
function withRaw(r: Response, raw: RawJson): [string, Buffer, string] {
  return [`{"jsonrpc":"2.0","id":${JSON.stringify(r.id)},"result":`, raw.bytes, '}'];
}
