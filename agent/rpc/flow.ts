// Backpressure in bytes. A connection holds its queued requests (read, not
// yet dispatched) and its unsent messages (in its outbox, and pending on its
// socket: ws.bufferedAmount); the agent
// bounds both per connection (maxConnectionBytes) and across connections
// (maxTotalBytes: past it, a connection holding more than an equal share is
// over too). A connection over its bound is not read (its socket paused),
// gets nothing more dispatched, and is closed if it stays over for
// overLimitCloseMs; one that drains to half its bound is read again.
//
// Per message this costs a few additions and one bufferedAmount read: no
// closure per reply, no timer per connection. The socket's 'drain' hands it
// more from the outbox; one sweep timer runs while any connection is paused
// or has queued requests, and closes connections that stayed over too long.
import type { WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { Outbox } from './outbox.js';
import type { Reply } from './reply.js';
import { OverConnectionBoundError, OverTotalShareError, type ConnectionLimitError } from './errors.js';

export interface FlowOptions {
  /** Requests in flight per connection before the agent stops reading it. */
  maxInFlight: number;
  maxConnectionBytes: number;
  maxTotalBytes: number;
  overLimitCloseMs: number;
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
  /** queuedBytes + unsent bytes (outbox and socket), as last counted (their sum over connections is the total). */
  held: number;
  /**
   * What each request in flight is expected to add to the unsent bytes: a
   * reply as large as the estimate or larger sets it, smaller ones lower it
   * by an eighth of the difference.
   */
  replyEstimate: number;
  paused: boolean;
  /** performance.now() when it went over its bound or share; undefined while under. */
  overSince: number | undefined;
  closing: boolean;
}

/**
 * Before a connection's first reply its sizes are unknown: the first guess is
 * this fraction of its bound, so that its first requests (dispatched before
 * any reply exists: 256 rpc.discover owe 25 MB) cannot overshoot the bound
 * many times over. Small replies bring the estimate down within tens of calls.
 */
const FIRST_ESTIMATE_FRACTION = 1 / 16;
/** After a close frame, the peer gets this long to take it before the socket is destroyed. */
const CLOSE_GRACE_MS = 1_000;

export function newFlowConn(ws: WebSocket, peer: string, port: number): FlowConn {
  return {
    ws, peer, port, inFlight: 0, queued: [], queuedBytes: 0, outbox: new Outbox(), held: 0, replyEstimate: 0, paused: false, overSince: undefined, closing: false,
  };
}

export class FlowControl {
  private readonly conns = new Set<FlowConn>();
  private total = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly sweepMs: number;

  private readonly opts: FlowOptions;

  /** `dispatch` starts handling one request of the connection (its inFlight is already counted). A byte bound of 0 is no bound. */
  constructor(opts: FlowOptions, private readonly dispatch: (c: FlowConn, text: string) => void) {
    const bound = (v: number): number => (v > 0 ? v : Infinity);
    this.opts = { ...opts, maxConnectionBytes: bound(opts.maxConnectionBytes), maxTotalBytes: bound(opts.maxTotalBytes) };
    this.sweepMs = Math.min(500, Math.max(50, opts.overLimitCloseMs / 10));
  }

  /** Bytes held by all connections, as last counted. */
  get totalBytes(): number {
    return this.total;
  }

  add(c: FlowConn): void {
    c.replyEstimate = Number.isFinite(this.opts.maxConnectionBytes) ? this.opts.maxConnectionBytes * FIRST_ESTIMATE_FRACTION : 0;
    this.conns.add(c);
  }

  /** The connection is gone: its bytes leave the total. */
  remove(c: FlowConn): void {
    if (!this.conns.delete(c)) return;
    this.total -= c.held;
    c.held = 0;
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

  /** Not while closing, at the in-flight limit, or while its unsent replies plus those expected are over its bound or share. */
  private mayDispatch(c: FlowConn): boolean {
    if (c.closing || c.inFlight >= this.opts.maxInFlight) return false;
    const owed = c.outbox.bytes + c.ws.bufferedAmount + c.inFlight * c.replyEstimate;
    return owed <= this.opts.maxConnectionBytes && !(this.total > this.opts.maxTotalBytes && owed > this.share());
  }

  private pump(c: FlowConn): void {
    while (c.queued.length > 0 && this.mayDispatch(c)) {
      const text = c.queued.shift()!;
      c.queuedBytes -= text.length;
      c.inFlight++;
      this.dispatch(c, text);
    }
  }

  private overWhy(c: FlowConn): 'bound' | 'share' | undefined {
    if (c.held > this.opts.maxConnectionBytes) return 'bound';
    return this.total > this.opts.maxTotalBytes && c.held > this.share() ? 'share' : undefined;
  }

  private update(c: FlowConn): void {
    if (c.closing) return;
    const held = c.queuedBytes + c.outbox.bytes + c.ws.bufferedAmount;
    this.total += held - c.held;
    c.held = held;
    const why = this.overWhy(c);
    if (why && c.overSince === undefined) c.overSince = performance.now();
    else if (!why) c.overSince = undefined;
    const stop = why !== undefined || c.inFlight >= this.opts.maxInFlight;
    if (stop && !c.paused) {
      c.paused = true;
      c.ws.pause();
      const fields = { peer: c.peer, port: c.port, heldBytes: c.held, queuedBytes: c.queuedBytes, unsentBytes: c.held - c.queuedBytes, totalBytes: this.total, inFlight: c.inFlight };
      if (why) this.opts.log.info('connection paused', { ...fields, over: why });
      else this.opts.log.debug('connection paused', { ...fields, over: 'inFlight' });
    } else if (!stop && c.paused && this.mayResume(c)) {
      c.paused = false;
      c.ws.resume();
      this.opts.log.debug('connection resumed', { peer: c.peer, port: c.port, heldBytes: c.held, totalBytes: this.total });
    }
    if (c.paused || c.queued.length > 0 || !c.outbox.empty) this.sweeper ??= setInterval(() => this.sweep(), this.sweepMs);
  }

  /** Hysteresis: read again once down to half its bound (and half its share while the total is over). */
  private mayResume(c: FlowConn): boolean {
    return c.held <= this.opts.maxConnectionBytes / 2 && (this.total <= this.opts.maxTotalBytes || c.held <= this.share() / 2);
  }

  private sweep(): void {
    const now = performance.now();
    let busy = false;
    for (const c of this.conns) {
      if (c.closing || (!c.paused && c.queued.length === 0 && c.outbox.empty)) continue;
      this.touched(c);
      if (c.overSince !== undefined && now - c.overSince >= this.opts.overLimitCloseMs) this.close(c, Math.round(now - c.overSince));
      else busy ||= c.paused || c.queued.length > 0 || !c.outbox.empty;
    }
    if (!busy) this.stop();
  }

  private close(c: FlowConn, overMs: number): void {
    const err: ConnectionLimitError = c.held > this.opts.maxConnectionBytes
      ? new OverConnectionBoundError(c.peer, c.held, this.opts.maxConnectionBytes, overMs)
      : new OverTotalShareError(c.peer, c.held, Math.round(this.share()), overMs);
    this.opts.log.info('connection closed for holding too much', {
      peer: c.peer, port: c.port, code: err.code, heldBytes: c.held, queuedBytes: c.queuedBytes,
      unsentBytes: c.held - c.queuedBytes, totalBytes: this.total, overMs, err,
    });
    c.closing = true;
    const dropped = c.queuedBytes + c.outbox.bytes;
    this.total -= dropped;
    c.held -= dropped;
    c.queued = [];
    c.queuedBytes = 0;
    c.outbox.clear();
    c.ws.close(err.code, err.name);
    // A peer that reads nothing never takes the close frame: its buffers go now-ish, not after ws's 30 s.
    setTimeout(() => c.ws.terminate(), CLOSE_GRACE_MS).unref();
  }
}
