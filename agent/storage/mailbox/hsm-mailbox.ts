// The requesting host's side of the extension mailbox (the HSM: the host that
// runs the VM). requestExtend() puts an extend message in a free slot of this
// host's request block, writes the whole block (one aligned write) and then
// the event block, polls this host's reply block until the SPM answers the
// request id, and clears the slot. No reply within resendAfterMs: the request
// is re-sent (attempt + 1), which covers a lost reply and an SPM change. The
// overall timeout rejects with MailboxTimeoutError.
import { PhaseTimer, silentLogger, type Logger } from '../../log.js';
import { StorageParamsError } from '../errors.js';
import { BlockFile, type DirectIoMode } from './block-file.js';
import { CoalescedWriter } from './coalesced-writer.js';
import { Sleeper } from './sleeper.js';
import { MailboxTimeoutError, MailboxUnavailableError } from './errors.js';
import {
  BLOCK_SIZE, Opcode, SLOTS_PER_HOST, blockOffset, decodeBlock, encodeBlock, isUuid, randomU64, reasonName,
  requestIdString, validHostId, type ReasonName, type ReplySlot, type Slot,
} from './format.js';

export interface ExtendRequest {
  domainId: string;
  volumeId: string;
  /** The new size of the volume, in MiB. */
  sizeMiB: number;
}

export interface ExtendReply {
  requestId: string;
  hostId: number;
  slot: number;
  domainId: string;
  volumeId: string;
  sizeMiB: number;
  status: 'ok' | 'failed';
  reason: ReasonName | `unknown(${number})`;
  reasonCode: number;
  reasonText: string;
  /** The SPM host that answered, and how long its handler (lvextend) ran. */
  spmHostId: number;
  extendMs: number;
  /** How many times the request was written (1 + re-sends). */
  sends: number;
  /** queued (waiting for a free slot), written, replied, cleared. */
  phasesMs: Record<string, number>;
  totalMs: number;
}

export interface HsmMailboxOptions {
  requestsPath: string;
  repliesPath: string;
  hostId: number;
  /** Host ids 1..maxHosts have blocks (default 250). */
  maxHosts?: number;
  /** How often the reply block is read while a request is pending (default 25 ms: one 4 KiB read, only while waiting). */
  replyPollMs?: number;
  /** Re-send a request that has had no reply for this long (default 2000 ms). */
  resendAfterMs?: number;
  /** Overall bound of one request (default 60 s). */
  timeoutMs?: number;
  /** Requests that may wait for a free slot (default 1024). */
  maxQueued?: number;
  direct?: DirectIoMode;
  /** O_DSYNC on O_DIRECT writes too (default false: the mailbox needs visibility, not durability). */
  sync?: boolean;
  log?: Logger;
}

interface Entry {
  id: bigint;
  req: ExtendRequest;
  slot: number;
  state: 'queued' | 'placed' | 'done';
  attempt: number;
  sends: number;
  lastSentMs: number;
  timer: PhaseTimer;
  deadline?: NodeJS.Timeout;
  promise: Promise<ExtendReply>;
  resolve: (r: ExtendReply) => void;
  reject: (e: Error) => void;
}

export class HsmMailbox {
  readonly hostId: number;
  private readonly o: Required<Omit<HsmMailboxOptions, 'log'>>;
  private readonly log: Logger;
  private reqFile?: BlockFile;
  private repFile?: BlockFile;
  private running = false;
  private readonly incarnation = randomU64();
  private seq = 0;
  private generation = 0n;
  private readonly slots: (Entry | undefined)[] = new Array<Entry | undefined>(SLOTS_PER_HOST).fill(undefined);
  private readonly queue: Entry[] = [];
  /** Writes of this host's request block (plus the event block when `needEvent`). */
  private readonly writer = new CoalescedWriter(() => this.writeOnce());
  private needEvent = false;
  private polling = false;
  private readonly sleeper = new Sleeper();
  private readFailures = 0;
  private badReplyBlocks = 0;

  constructor(opts: HsmMailboxOptions) {
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as HsmMailboxOptions;
    this.o = { maxHosts: 250, replyPollMs: 25, resendAfterMs: 2000, timeoutMs: 60_000, maxQueued: 1024, direct: 'auto', sync: false, ...given };
    if (!validHostId(opts.hostId, this.o.maxHosts)) throw new RangeError(`host id ${opts.hostId} is not in 1..${this.o.maxHosts}`);
    this.hostId = opts.hostId;
    this.log = (opts.log ?? silentLogger).child({ component: 'hsm-mailbox', hostId: opts.hostId });
  }

  /** Opens both areas and writes an empty request block (requests of a previous run are dropped). */
  async start(): Promise<void> {
    if (this.running) return;
    const end = blockOffset(this.hostId) + BLOCK_SIZE;
    const common = { maxIoBytes: BLOCK_SIZE, direct: this.o.direct, sync: this.o.sync, log: this.log };
    this.reqFile = await BlockFile.open(this.o.requestsPath, { ...common, writable: true });
    this.repFile = await BlockFile.open(this.o.repliesPath, { ...common, writable: false });
    try {
      await this.reqFile.ensureSize(end);
      await this.repFile.ensureSize(end);
      this.running = true;
      await this.flush(false);
    } catch (e) {
      this.running = false;
      await this.reqFile.close();
      await this.repFile.close();
      throw e;
    }
    this.log.info('HSM mailbox started', { direct: { requests: this.reqFile.direct, replies: this.repFile.direct }, incarnation: requestIdString(this.incarnation) });
  }

  /** Requests currently waiting for a slot or a reply. */
  get inFlight(): number {
    return this.queue.length + this.slots.filter(Boolean).length;
  }

  /**
   * Asks the SPM to extend a volume to `sizeMiB`. Resolves with the SPM's reply
   * (status 'ok' or 'failed' with a reason); rejects on timeout or stop. A
   * request for the same volume with the same or a larger size that is still
   * pending is joined instead of sent again.
   */
  requestExtend(req: ExtendRequest, opts: { timeoutMs?: number } = {}): Promise<ExtendReply> {
    if (!this.running) return Promise.reject(new MailboxUnavailableError('the HSM mailbox is not running', { hostId: this.hostId }));
    if (!isUuid(req.domainId) || !isUuid(req.volumeId)) return Promise.reject(new StorageParamsError(`bad domain or volume UUID: ${req.domainId}/${req.volumeId}`));
    if (!Number.isSafeInteger(req.sizeMiB) || req.sizeMiB < 1) return Promise.reject(new StorageParamsError(`bad extension size ${req.sizeMiB} MiB`, 'volumeResizeValueError'));
    const r: ExtendRequest = { domainId: req.domainId.toLowerCase(), volumeId: req.volumeId.toLowerCase(), sizeMiB: req.sizeMiB };
    for (const e of [...this.slots, ...this.queue]) {
      if (e && e.state !== 'done' && e.req.domainId === r.domainId && e.req.volumeId === r.volumeId && e.req.sizeMiB >= r.sizeMiB) {
        this.log.debug('joined a pending request', { requestId: requestIdString(e.id), ...r, pendingSizeMiB: e.req.sizeMiB });
        return e.promise;
      }
    }
    if (this.queue.length >= this.o.maxQueued && !this.slots.includes(undefined)) {
      return Promise.reject(new MailboxUnavailableError(`the mailbox queue of host ${this.hostId} is full (${this.o.maxQueued})`, { hostId: this.hostId }));
    }
    const id = (BigInt.asUintN(32, this.incarnation) << 32n) | BigInt((++this.seq) >>> 0);
    let resolve!: (r: ExtendReply) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<ExtendReply>((res, rej) => { resolve = res; reject = rej; });
    const e: Entry = { id, req: r, slot: -1, state: 'queued', attempt: 0, sends: 0, lastSentMs: 0, timer: new PhaseTimer(), promise, resolve, reject };
    const timeoutMs = opts.timeoutMs ?? this.o.timeoutMs;
    e.deadline = setTimeout(() => this.expire(e, timeoutMs), timeoutMs);
    this.queue.push(e);
    this.placeQueued();
    return promise;
  }

  /** Stops polling, fails what is pending and clears this host's slots. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.sleeper.wakeAll();
    const pending = [...this.queue, ...this.slots.filter((e): e is Entry => !!e)];
    this.queue.length = 0;
    this.slots.fill(undefined);
    for (const e of pending) this.finish(e, new MailboxUnavailableError('the HSM mailbox stopped before the reply', this.describe(e)));
    await Promise.race([this.flush(false).catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.reqFile?.close();
    await this.repFile?.close();
    this.log.info('HSM mailbox stopped', { dropped: pending.length });
  }

  private describe(e: Entry): Record<string, unknown> {
    return { requestId: requestIdString(e.id), hostId: this.hostId, slot: e.slot, ...e.req, sends: e.sends };
  }

  private placeQueued(): void {
    let placed = false;
    while (this.queue.length) {
      const slot = this.slots.indexOf(undefined);
      if (slot < 0) break;
      const e = this.queue.shift()!;
      e.slot = slot;
      e.state = 'placed';
      e.sends = 1;
      e.lastSentMs = performance.now();
      e.timer.mark('queued');
      this.slots[slot] = e;
      placed = true;
      this.flush(true).catch((err: unknown) => this.log.warn('writing a request failed; it is re-sent later', { ...this.describe(e), err }));
    }
    if (placed) this.ensurePolling();
  }

  /** Writes the in-memory slots (and, when `event`, the event block); resolves once a write that includes the current state is done. */
  private flush(event: boolean): Promise<void> {
    if (event) this.needEvent = true;
    return this.writer.request();
  }

  private async writeOnce(): Promise<void> {
    const file = this.reqFile;
    if (!file) throw new MailboxUnavailableError('the HSM mailbox is not open');
    const event = this.needEvent;
    this.needEvent = false;
    const included = this.slots.filter((e): e is Entry => !!e);
    try {
      await file.write(blockOffset(this.hostId), encodeBlock({
        kind: 'request', ownerHostId: this.hostId, writerHostId: this.hostId, incarnation: this.incarnation,
        generation: ++this.generation, writtenAtMs: Date.now(),
        slots: this.slots.map((e): Slot => e && { state: 'request', opcode: Opcode.extend, requestId: e.id, attempt: e.attempt, ...e.req }),
      }));
    } catch (err) {
      if (event) this.needEvent = true;
      throw err;
    }
    if (event) {
      try {
        await file.write(0, encodeBlock({
          kind: 'event', ownerHostId: 0, writerHostId: this.hostId, incarnation: this.incarnation,
          generation: randomU64(), writtenAtMs: Date.now(), slots: [],
        }));
      } catch (err) {
        this.log.warn('writing the event block failed; the SPM finds the request at its next full scan', { err });
      }
    }
    for (const e of included) if (e.state === 'placed' && !('written' in e.timer.phases)) e.timer.mark('written');
  }

  private ensurePolling(): void {
    if (this.polling || !this.running) return;
    this.polling = true;
    void this.pollLoop();
  }

  private async pollLoop(): Promise<void> {
    while (this.running && this.slots.some(Boolean)) {
      // After repeated read failures, slow down to the re-send pace.
      await this.sleeper.sleep(this.readFailures >= 10 ? this.o.resendAfterMs : this.o.replyPollMs);
      if (!this.running) break;
      await this.pollOnce();
    }
    this.polling = false;
  }

  private async pollOnce(): Promise<void> {
    let buf: Buffer | undefined;
    try {
      buf = await this.repFile!.read(blockOffset(this.hostId), BLOCK_SIZE);
      this.readFailures = 0;
    } catch (err) {
      if (++this.readFailures === 1 || this.readFailures % 100 === 0) this.log.warn('reading the reply block failed', { failures: this.readFailures, err });
    }
    if (buf && this.running) {
      const r = decodeBlock(buf, { kind: 'reply', ownerHostId: this.hostId });
      if (!r.ok) {
        if (++this.badReplyBlocks === 1 || this.badReplyBlocks % 100 === 0) this.log.warn('invalid reply block ignored', { error: r.error, count: this.badReplyBlocks });
      } else {
        r.block.slots.forEach((rep, i) => {
          const e = this.slots[i];
          if (e && rep && rep.state !== 'request' && rep.requestId === e.id && rep.volumeId === e.req.volumeId && rep.domainId === e.req.domainId) this.complete(e, rep);
        });
      }
    }
    if (!this.running) return;
    const now = performance.now();
    let resend = false;
    for (const e of this.slots) {
      if (e && now - e.lastSentMs >= this.o.resendAfterMs) {
        e.attempt = (e.attempt + 1) & 0xffff;
        e.sends++;
        e.lastSentMs = now;
        resend = true;
        this.log.info('no reply yet; re-sending the request', { ...this.describe(e), waitedMs: e.timer.totalMs });
      }
    }
    if (resend || this.writer.dirty) this.flush(true).catch(() => undefined);
  }

  private complete(e: Entry, rep: ReplySlot): void {
    e.timer.mark('replied');
    this.slots[e.slot] = undefined;
    e.state = 'done';
    clearTimeout(e.deadline);
    const cleared = this.flush(false);
    this.placeQueued();
    const reply = (clearError?: unknown): void => {
      e.timer.mark('cleared');
      const out: ExtendReply = {
        requestId: requestIdString(e.id), hostId: this.hostId, slot: e.slot, ...e.req,
        status: rep.state, reason: reasonName(rep.reason), reasonCode: rep.reason, reasonText: rep.reasonText,
        spmHostId: rep.spmHostId, extendMs: rep.extendMs, sends: e.sends, phasesMs: { ...e.timer.phases }, totalMs: e.timer.totalMs,
      };
      const fields = { ...out, ...(clearError ? { clearError } : {}) };
      if (rep.state === 'ok') this.log.info('extend request answered', fields);
      else this.log.warn('extend request failed on the SPM', fields);
      e.resolve(out);
    };
    cleared.then(() => reply(), (err: unknown) => reply(err));
  }

  private expire(e: Entry, timeoutMs: number): void {
    if (e.state === 'done') return;
    if (e.state === 'placed') {
      this.slots[e.slot] = undefined;
      this.flush(false).catch(() => undefined);
    } else {
      const i = this.queue.indexOf(e);
      if (i >= 0) this.queue.splice(i, 1);
    }
    const where = e.state === 'queued' ? 'waiting for a free slot' : `after ${e.sends} send(s)`;
    this.finish(e, new MailboxTimeoutError(
      `no reply from the SPM to extend volume ${e.req.volumeId} to ${e.req.sizeMiB} MiB within ${timeoutMs} ms (${where})`,
      { ...this.describe(e), timeoutMs, phasesMs: { ...e.timer.phases } },
    ));
    this.placeQueued();
  }

  private finish(e: Entry, err: Error): void {
    if (e.state === 'done') return;
    e.state = 'done';
    clearTimeout(e.deadline);
    this.log.warn('extend request failed', { ...this.describe(e), err, totalMs: e.timer.totalMs });
    e.reject(err);
  }
}
