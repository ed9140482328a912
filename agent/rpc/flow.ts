// Backpressure in bytes. A connection holds its queued requests (read, not
// yet dispatched) and its unsent messages (in its outbox, and pending on its
// socket: ws.bufferedAmount), and it is owed the replies of its requests in
// flight (estimated from its earlier replies). The agent bounds what each
// connection holds and is owed (maxConnectionBytes) and the same across
// connections (maxTotalBytes: once the total has no room for another reply,
// a connection over an equal share of it is over too). A connection over is
// not read (its socket paused) and gets nothing more dispatched; at half its
// bound (and share) it is read again. A connection whose socket has had
// bytes pending and taken none of them (no 'drain') for half of
// stalledCloseMs is paused too, and after stalledCloseMs it is not reading:
// it is closed, whether it is over or not, so that no non-reader keeps its
// share for good.
//
// Per message this costs a few additions and one bufferedAmount read: no
// closure per reply, no timer per connection. The socket's 'drain' hands it
// more from the outbox; one sweep timer runs while any connection is paused,
// has queued requests, an outbox or bytes pending, and closes non-readers.
import type { WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { Outbox } from './outbox.js';
import type { Reply } from './reply.js';
import { NotReadingError, OverConnectionBoundError, OverTotalShareError, type ConnectionLimitError } from './errors.js';

export interface FlowOptions {
  /** Requests in flight per connection before the agent stops reading it. */
  maxInFlight: number;
  /** 0: no bound. */
  maxConnectionBytes: number;
  /** 0: no bound. */
  maxTotalBytes: number;
  stalledCloseMs: number;
  log: Logger;
}

/** One connection's part in the accounting. */
export interface FlowConn {
  readonly ws: WebSocket;
  /** Who, for the logs: certificate CN @ address, and the remote port. */
  readonly peer: string;
  readonly port: number;
  inFlight: number;
  /** Requests read but not dispatched yet, oldest first. */
  queued: string[];
  queuedBytes: number;
  /** Replies and events not yet handed to the socket. */
  readonly outbox: Outbox;
  /** Real bytes, as last counted: queued requests, outbox, pending on the socket. */
  held: number;
  /** held plus the replies expected for the requests in flight, as last counted (the total sums these). */
  owed: number;
  /**
   * What each request in flight is expected to add: a reply as large as the
   * estimate or larger sets it, smaller ones lower it by an eighth of the
   * difference.
   */
  replyEstimate: number;
  paused: boolean;
  /** It was paused before: a later pause for its requests in flight alone is routine, logged at debug. */
  pausedBefore: boolean;
  /** performance.now() since which bytes are pending on its socket with none taken; undefined while none are. */
  stalledSince: number | undefined;
  closing: boolean;
}

/**
 * Before a connection's first reply its sizes are unknown: the first guess is
 * this fraction of its bound, so that its first requests (dispatched before
 * any reply exists: 256 rpc.discover owe 38 MB) cannot overshoot the bound
 * many times over. Small replies bring the estimate down within tens of calls.
 * The guess must not be below the largest reply (rpc.discover's document, 150 KB
 * at API 0.7): with 1/16 of a 2 MiB bound (128 KB) the first replies were larger
 * than counted and six non-reading clients held 7.25 MiB against a 4 MiB total.
 */
export const FIRST_ESTIMATE_FRACTION = 1 / 8;
/** After a close frame, the peer gets this long to take it before the socket is destroyed. */
const CLOSE_GRACE_MS = 1_000;

export function newFlowConn(ws: WebSocket, peer: string, port: number): FlowConn {
  return {
    ws, peer, port, inFlight: 0, queued: [], queuedBytes: 0, outbox: new Outbox(), held: 0, owed: 0, replyEstimate: 0,
    paused: false, pausedBefore: false, stalledSince: undefined, closing: false,
  };
}

export class FlowControl {
  private readonly conns = new Set<FlowConn>();
  /** The sum of every connection's owed. */
  private total = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly sweepMs: number;
  private readonly opts: FlowOptions;

  /** `dispatch` starts handling one request of the connection (its inFlight is already counted). */
  constructor(opts: FlowOptions, private readonly dispatch: (c: FlowConn, text: string) => void) {
    const bound = (v: number): number => (v > 0 ? v : Infinity);
    this.opts = { ...opts, maxConnectionBytes: bound(opts.maxConnectionBytes), maxTotalBytes: bound(opts.maxTotalBytes) };
    this.sweepMs = Math.min(500, Math.max(50, opts.stalledCloseMs / 10));
  }

  /** Bytes held and owed for all connections, as last counted. */
  get totalBytes(): number {
    return this.total;
  }

  add(c: FlowConn): void {
    c.replyEstimate = Number.isFinite(this.opts.maxConnectionBytes) ? this.opts.maxConnectionBytes * FIRST_ESTIMATE_FRACTION : 0;
    this.conns.add(c);
  }

  /** The connection is gone: its bytes leave the total, and nothing about it is counted again. */
  remove(c: FlowConn): void {
    c.closing = true; // a request still in flight, or a late 'drain', must not count it back in
    if (!this.conns.delete(c)) return;
    this.total -= c.owed;
    c.held = c.owed = 0;
    c.queued = [];
    c.queuedBytes = 0;
    c.outbox.clear();
  }

  /** A request frame arrived: dispatched now if the connection may take more, else queued. */
  received(c: FlowConn, text: string): void {
    if (c.queued.length === 0 && this.mayDispatch(c)) {
      c.inFlight++;
      this.dispatch(c, text);
    } else {
      c.queued.push(text);
      c.queuedBytes += text.length;
    }
    this.update(c);
  }

  /** A request is done: its reply (if one is owed) goes out, and the next queued request may start. */
  answered(c: FlowConn, reply: Reply | undefined): void {
    c.inFlight--;
    const bytes = reply === undefined ? 0 : typeof reply === 'string' ? reply.length : reply.byteLength;
    c.replyEstimate = bytes >= c.replyEstimate ? bytes : c.replyEstimate - (c.replyEstimate - bytes) / 8;
    if (reply !== undefined && !c.closing) c.outbox.send(c.ws, reply);
    this.pump(c);
    this.update(c);
  }

  /** A message that answers no request (an event, a refusal). */
  send(c: FlowConn, message: Reply): void {
    if (c.closing) return;
    c.outbox.send(c.ws, message);
    this.pump(c);
    this.update(c);
  }

  /** The socket took everything pending on it: the peer reads. */
  drained(c: FlowConn): void {
    c.stalledSince = undefined;
    this.touched(c);
  }

  /** Hands the socket more (it drained, or more was queued), dispatches what may start, counts again. */
  touched(c: FlowConn): void {
    c.outbox.flush(c.ws);
    this.pump(c);
    this.update(c);
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private share(): number {
    return this.opts.maxTotalBytes / Math.max(1, this.conns.size);
  }

  private realBytes(c: FlowConn): number {
    return c.queuedBytes + c.outbox.bytes + c.ws.bufferedAmount;
  }

  /** The total has no room for another of this connection's replies. */
  private pressed(c: FlowConn): boolean {
    return this.total + c.replyEstimate > this.opts.maxTotalBytes;
  }

  /**
   * With one more request in flight, would it stay within its bound, and
   * within its share while the total is pressed? Not while closing or at the in-flight limit.
   */
  private mayDispatch(c: FlowConn): boolean {
    if (c.closing || c.inFlight >= this.opts.maxInFlight) return false;
    const owed = this.realBytes(c) + (c.inFlight + 1) * c.replyEstimate;
    return owed <= this.opts.maxConnectionBytes && (owed <= this.share() || !this.pressed(c));
  }

  private pump(c: FlowConn): void {
    while (c.queued.length > 0 && this.mayDispatch(c)) {
      const text = c.queued.shift()!;
      c.queuedBytes -= text.length;
      c.inFlight++;
      this.dispatch(c, text);
      this.count(c);
    }
  }

  /** Counts the connection's bytes again, and the total with them. */
  private count(c: FlowConn): void {
    if (c.ws.bufferedAmount === 0) c.stalledSince = undefined;
    else c.stalledSince ??= performance.now();
    c.held = this.realBytes(c);
    const owed = c.held + c.inFlight * c.replyEstimate;
    this.total += owed - c.owed;
    c.owed = owed;
  }

  private over(c: FlowConn, bytes: number): 'bound' | 'share' | undefined {
    if (bytes > this.opts.maxConnectionBytes) return 'bound';
    return bytes > this.share() && this.pressed(c) ? 'share' : undefined;
  }

  private update(c: FlowConn): void {
    if (c.closing) return;
    this.count(c);
    // A socket that took none of its pending bytes for half the close time is not read: its requests are not
    // read either, whether or not it is over a byte bound yet (a slow agent may be closing it before that).
    const stalled = c.stalledSince !== undefined && performance.now() - c.stalledSince >= this.opts.stalledCloseMs / 2;
    const why = this.over(c, c.owed) ?? (stalled ? 'stalled' : undefined);
    const stop = why !== undefined || c.inFlight >= this.opts.maxInFlight;
    if (stop && !c.paused) {
      c.paused = true;
      c.ws.pause();
      const fields = { peer: c.peer, port: c.port, heldBytes: c.held, owedBytes: c.owed, queuedBytes: c.queuedBytes, totalBytes: this.total, inFlight: c.inFlight };
      // A byte bound, or the first pause of the connection whatever its reason (a client that stops reading
      // may reach its in-flight limit before a byte bound; the operator sees it paused before it is closed).
      if (why || !c.pausedBefore) this.opts.log.info('connection paused', { ...fields, over: why ?? 'inFlight' });
      else this.opts.log.debug('connection paused', { ...fields, over: 'inFlight' });
      c.pausedBefore = true;
    } else if (!stop && c.paused && this.mayResume(c)) {
      c.paused = false;
      c.ws.resume();
      this.opts.log.debug('connection resumed', { peer: c.peer, port: c.port, owedBytes: c.owed, totalBytes: this.total });
    }
    // Unref'd: the server's sockets are what keep the agent alive, not this.
    if (this.busy(c)) this.sweeper ??= setInterval(() => this.sweep(), this.sweepMs).unref();
  }

  private busy(c: FlowConn): boolean {
    return c.paused || c.queued.length > 0 || !c.outbox.empty || c.stalledSince !== undefined;
  }

  /** Hysteresis: read again once down to half its bound (and half its share while the total is pressed). */
  private mayResume(c: FlowConn): boolean {
    return c.owed <= this.opts.maxConnectionBytes / 2 && (c.owed <= this.share() / 2 || !this.pressed(c));
  }

  private sweep(): void {
    const now = performance.now();
    let busy = false;
    for (const c of this.conns) {
      if (c.closing || !this.busy(c)) continue;
      this.touched(c);
      if (c.stalledSince !== undefined && now - c.stalledSince >= this.opts.stalledCloseMs) this.close(c, Math.round(now - c.stalledSince));
      else busy ||= this.busy(c);
    }
    if (!busy) this.stop();
  }

  /** Closes a connection that took none of its pending bytes for stalledMs; the error says whether it was over too. */
  private close(c: FlowConn, stalledMs: number): void {
    const why = this.over(c, c.held);
    const err: ConnectionLimitError = why === 'bound' ? new OverConnectionBoundError(c.peer, c.held, this.opts.maxConnectionBytes, stalledMs)
      : why === 'share' ? new OverTotalShareError(c.peer, c.held, Math.round(this.share()), stalledMs)
        : new NotReadingError(c.peer, c.held, stalledMs);
    this.opts.log.info('connection closed for not reading', {
      peer: c.peer, port: c.port, code: err.code, heldBytes: c.held, queuedBytes: c.queuedBytes, totalBytes: this.total, stalledMs, err,
    });
    c.closing = true;
    c.queued = [];
    c.queuedBytes = 0;
    c.outbox.clear();
    this.count(c);
    c.ws.close(err.code, err.name);
    // A peer that reads nothing never takes the close frame: its buffers go now-ish, not after ws's 30 s.
    setTimeout(() => c.ws.terminate(), CLOSE_GRACE_MS).unref();
  }
}
