// Stand-ins for unit tests of the client's own logic: an in-memory transport
// (a second Transport implementation, which is also what shows the JSON-RPC
// logic does not depend on ws) and timers driven by the test.
import type { Transport, TransportClosed } from '../../../api/client/transport.js';
import type { Timers } from '../../../api/client/backoff.js';

export class MemoryTransport implements Transport {
  readonly sent: string[] = [];
  readonly closed: Promise<TransportClosed>;
  /** Sees every frame the client sends, e.g. to answer it with deliver(). */
  onSend: ((frame: Record<string, unknown>) => void) | undefined;
  private open = true;
  private readonly listeners = new Set<(text: string) => void>();
  private end!: (c: TransportClosed) => void;

  constructor() {
    this.closed = new Promise((resolve) => { this.end = resolve; });
  }

  get isOpen(): boolean {
    return this.open;
  }

  send(frame: string | Uint8Array): Promise<void> {
    if (!this.open) return Promise.reject(new Error('memory transport closed'));
    const text = typeof frame === 'string' ? frame : Buffer.from(frame).toString('utf8');
    this.sent.push(text);
    this.onSend?.(JSON.parse(text) as Record<string, unknown>);
    return Promise.resolve();
  }

  onFrame(listener: (text: string) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  /** A frame from the "agent": an object is sent as JSON, a string as is. */
  deliver(frame: unknown): void {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    for (const l of this.listeners) l(text);
  }

  /** The "agent" side ends the connection. */
  drop(c: Partial<TransportClosed> = {}): void {
    if (!this.open) return;
    this.open = false;
    this.end({ reason: 'dropped by the test', local: false, code: 1006, ...c });
  }

  close(): Promise<void> {
    this.drop({ local: true, reason: 'closed by the client', code: 1000 });
    return this.closed.then(() => undefined);
  }
}

/** Timers that run only when the test says; `pending` is what is still scheduled. */
export class FakeTimers implements Timers {
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  private seq = 0;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { fn, ms });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Runs the one pending timer of `ms` (throws unless there is exactly one). */
  fire(ms: number): void {
    const hits = [...this.pending].filter(([, t]) => t.ms === ms);
    if (hits.length !== 1) throw new Error(`expected one timer of ${ms} ms, pending: ${[...this.pending.values()].map((t) => t.ms).join(', ')}`);
    const [id, t] = hits[0]!;
    this.pending.delete(id);
    t.fn();
  }
}

/** Lets promise callbacks and I/O callbacks run (a few event-loop turns). */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/** A deterministic stand-in for Math.random (a linear congruential generator). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
