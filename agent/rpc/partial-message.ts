// A message begun and never finished (issue 14 §5): a peer that sends the
// first bytes of a frame, or the first fragments of a message, and then
// nothing more holds up to rpc.maxMessageBytes of the agent's memory and a
// file descriptor for as long as it likes, and since it sends nothing the
// agent owes it, flow control's not-reading rule never sees it. Each
// connection gets one timer, armed only while a message is incomplete: past
// rpc.partialMessageTimeoutMs the connection is closed. Time while the agent
// itself is not reading the connection (paused by flow control) is not the
// peer's: the bound starts again once it is read again.
import type { WebSocket } from 'ws';

/**
 * The state of ws's frame parser (its Receiver, ws 8): between messages it
 * waits for a frame header (state 0) with nothing buffered and no fragmented
 * message open. These are ws's internals, read and never written; the
 * partial-message test fails if a ws upgrade changes them.
 */
interface ReceiverState { _state: number; _bufferedBytes: number; _fragmented: number }

export function midMessage(ws: WebSocket): boolean {
  const r = (ws as unknown as { _receiver?: ReceiverState })._receiver;
  if (!r || typeof r._state !== 'number' || typeof r._bufferedBytes !== 'number') return false;
  return r._state !== 0 || r._bufferedBytes > 0 || r._fragmented !== 0;
}

export class PartialMessageBound {
  private timer: NodeJS.Timeout | undefined;
  private since = 0;

  /** `expired` gets how long the message has been incomplete; `paused`: the agent is not reading this connection now. */
  constructor(
    private readonly ws: WebSocket,
    private readonly timeoutMs: number,
    private readonly paused: () => boolean,
    private readonly expired: (incompleteMs: number) => void,
  ) {}

  /** After ws has parsed a chunk of the connection's bytes. */
  afterData(): void {
    if (!midMessage(this.ws)) {
      this.stop();
      return;
    }
    if (this.timer) return; // the bound is on the whole message, not on each chunk
    this.since = performance.now();
    this.arm();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.timer = setTimeout(() => this.check(), this.timeoutMs);
    this.timer.unref(); // the connection's socket is what keeps the agent alive
  }

  private check(): void {
    this.timer = undefined;
    if (!midMessage(this.ws)) return;
    if (this.paused()) {
      this.since = performance.now();
      this.arm();
      return;
    }
    this.expired(Math.round(performance.now() - this.since));
  }
}
