// The SPM's side of the extension mailbox. It polls the requests area's event
// block often (eventPollMs), reads every host block on a change and every
// scanIntervalMs anyway, validates each block's checksum, runs the extend
// handler for each new request (bounded concurrency, one at a time per volume)
// and writes the answer into the same slot of the host's reply block. When the
// HSM clears a slot, the SPM forgets the request and clears its reply. On
// start it rewrites the whole replies area empty (stale replies of a previous
// SPM go) and serves whatever requests are pending. stillSpm() (the lease
// check) is asked before every handler call and every reply write; once it
// says false (or throws), this mailbox stops serving for good.
import { PhaseTimer, silentLogger, type Logger } from '../../log.js';
import { BlockFile, type DirectIoMode } from './block-file.js';
import { CoalescedWriter } from './coalesced-writer.js';
import { MailboxUnavailableError, mailboxReason } from './errors.js';
import {
  BLOCK_SIZE, Opcode, ReasonCode, areaBytes, blockOffset, decodeBlock, emptyRepliesArea, randomU64, reasonName,
  requestIdString, validHostId,
} from './format.js';
import { KeyedLimiter } from './keyed-limiter.js';
import { Sleeper } from './sleeper.js';
import { RequestTable, type Job } from './spm-request-table.js';

export type ExtendHandler = (domainId: string, volumeId: string, sizeMiB: number) => Promise<void>;

export interface SpmMailboxOptions {
  requestsPath: string;
  repliesPath: string;
  /** This (the SPM's) host id, written into replies. */
  spmHostId: number;
  /** Host ids 1..maxHosts are served (default 250). */
  maxHosts?: number;
  /** Extends the volume to at least sizeMiB; must be idempotent. */
  extend: ExtendHandler;
  /** The lease check: false (or a throw) means this host is no longer the SPM. */
  stillSpm: () => boolean | Promise<boolean>;
  /** Called once when stillSpm() says no. */
  onLost?: (why: string) => void;
  /** How often the event block is read (default 50 ms). */
  eventPollMs?: number;
  /** How often all host blocks are read regardless of events (default 2000 ms). */
  scanIntervalMs?: number;
  /** Handler calls at once (default 10). */
  concurrency?: number;
  /** stop() waits this long for running handlers, then drops their results (default 5000 ms). */
  drainMs?: number;
  direct?: DirectIoMode;
  /** O_DSYNC on O_DIRECT writes too (default false). */
  sync?: boolean;
  log?: Logger;
}

export interface SpmMailboxStats {
  served: number;
  failed: number;
  repliesRewritten: number;
  scans: number;
  eventWakeups: number;
  badBlocks: number;
}

export class SpmMailbox {
  readonly spmHostId: number;
  readonly stats: SpmMailboxStats = { served: 0, failed: 0, repliesRewritten: 0, scans: 0, eventWakeups: 0, badBlocks: 0 };
  private readonly maxHosts: number;
  private readonly log: Logger;
  private reqFile?: BlockFile;
  private repFile?: BlockFile;
  private readonly incarnation = randomU64();
  private readonly table: RequestTable;
  private readonly limiter: KeyedLimiter;
  private readonly writers = new Map<number, CoalescedWriter>();
  private readonly sleeper = new Sleeper();
  private accepting = false; // the poll loop runs and new handler calls may start
  private writable = false; // replies may be written
  private started = false;
  private lost = false;
  private loopDone: Promise<void> = Promise.resolve();
  private lastEvent?: Buffer;
  private loopErrors = 0;

  constructor(private readonly o: SpmMailboxOptions) {
    this.maxHosts = o.maxHosts ?? 250;
    if (!validHostId(o.spmHostId, this.maxHosts)) throw new RangeError(`SPM host id ${o.spmHostId} is not in 1..${this.maxHosts}`);
    this.spmHostId = o.spmHostId;
    this.log = (o.log ?? silentLogger).child({ component: 'spm-mailbox', spmHostId: o.spmHostId });
    this.table = new RequestTable(o.spmHostId, this.incarnation);
    this.limiter = new KeyedLimiter(o.concurrency ?? 10, (err) => this.log.error('serving a request failed', { err }));
  }

  /** Serving requests (false after stop() or once stillSpm() said no). */
  get running(): boolean {
    return this.accepting;
  }

  /** Handler calls running and waiting now. */
  get load(): { running: number; queued: number } {
    return { running: this.limiter.running, queued: this.limiter.queued };
  }

  async start(): Promise<void> {
    if (this.started) throw new MailboxUnavailableError('an SPM mailbox instance starts once; make a new one');
    this.started = true;
    const bytes = areaBytes(this.maxHosts);
    const common = { maxIoBytes: bytes, direct: this.o.direct ?? 'auto', sync: this.o.sync ?? false, log: this.log };
    const timer = new PhaseTimer();
    this.reqFile = await BlockFile.open(this.o.requestsPath, { ...common, writable: false });
    this.repFile = await BlockFile.open(this.o.repliesPath, { ...common, writable: true });
    try {
      await this.reqFile.ensureSize(bytes);
      await this.repFile.ensureSize(bytes);
      if (!(await this.o.stillSpm())) throw new MailboxUnavailableError('not the SPM: stillSpm() returned false', { spmHostId: this.spmHostId });
      this.writable = true;
      timer.mark('open');
      await this.repFile.write(0, emptyRepliesArea(this.maxHosts, this.spmHostId, this.incarnation));
      timer.mark('clearReplies');
      this.accepting = true;
      await this.scan('start');
      timer.mark('firstScan');
    } catch (e) {
      this.accepting = false;
      this.writable = false;
      await this.reqFile.close();
      await this.repFile.close();
      throw e;
    }
    this.loopDone = this.loop();
    this.log.info('SPM mailbox started', {
      maxHosts: this.maxHosts, pending: this.limiter.queued + this.limiter.running, incarnation: requestIdString(this.incarnation),
      direct: { requests: this.reqFile.direct, replies: this.repFile.direct }, ...timer.fields(),
    });
  }

  /**
   * Stops polling; waits up to drainMs for running handlers (writing their
   * replies while still SPM), then closes. Requests not started yet stay
   * pending in the requests area for the next SPM.
   */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.accepting = false;
    this.limiter.close();
    this.sleeper.wakeAll();
    await this.loopDone;
    const drainMs = this.o.drainMs ?? 5000;
    const timeout = (ms: number) => new Promise<false>((r) => setTimeout(() => r(false), ms).unref());
    const drained = await Promise.race([this.limiter.settled().then(() => true), timeout(drainMs)]);
    await Promise.race([Promise.allSettled([...this.writers.values()].map((w) => w.idle())), timeout(drainMs)]);
    this.writable = false;
    await this.reqFile?.close();
    await this.repFile?.close();
    this.log.info('SPM mailbox stopped', { drained, abandoned: this.limiter.running, ...this.stats });
  }

  private async loop(): Promise<void> {
    const scanMs = this.o.scanIntervalMs ?? 2000;
    let nextScan = performance.now() + scanMs;
    while (this.accepting) {
      await this.sleeper.sleep(this.o.eventPollMs ?? 50);
      if (!this.accepting) break;
      try {
        if (performance.now() >= nextScan) {
          if (!(await this.guard())) break;
          await this.scan('periodic');
          nextScan = performance.now() + scanMs;
        } else {
          const ev = await this.reqFile!.read(0, BLOCK_SIZE);
          if (!this.lastEvent?.equals(ev)) {
            this.stats.eventWakeups++;
            await this.scan('event', ev);
            nextScan = performance.now() + scanMs;
          }
        }
        for (const [hostId, w] of this.writers) if (w.dirty && !w.busy) this.writeReplies(hostId); // retry failed writes
        this.loopErrors = 0;
      } catch (err) {
        if (++this.loopErrors === 1 || this.loopErrors % 100 === 0) this.log.warn('reading the requests area failed', { failures: this.loopErrors, err });
      }
    }
  }

  /** Reads the event block (unless given), then every host block, and acts on the changed ones. */
  private async scan(why: string, event?: Buffer): Promise<void> {
    // The event block is read before the host blocks: an HSM writes its block
    // before the event block, so a changed event guarantees the new host block.
    this.lastEvent = event ?? (await this.reqFile!.read(0, BLOCK_SIZE));
    const buf = await this.reqFile!.read(BLOCK_SIZE, this.maxHosts * BLOCK_SIZE);
    this.stats.scans++;
    if (!this.accepting) return;
    for (let hostId = 1; hostId <= this.maxHosts; hostId++) {
      const raw = buf.subarray((hostId - 1) * BLOCK_SIZE, hostId * BLOCK_SIZE);
      if (this.table.unchanged(hostId, raw)) continue;
      const r = decodeBlock(raw, { kind: 'request', ownerHostId: hostId });
      if (!r.ok) {
        this.stats.badBlocks++;
        const n = this.table.badBlock(hostId, raw);
        if (n === 1 || n % 100 === 0) this.log.warn('invalid request block ignored', { hostId, error: r.error, count: n, why });
        continue;
      }
      const change = this.table.apply(hostId, raw, r.block.slots);
      for (const { job, was } of change.withdrawn) {
        if (was === 'running') this.log.info('request withdrawn while its handler runs; its result will be dropped', this.describe(job));
      }
      for (const job of change.resent) {
        this.stats.repliesRewritten++;
        this.log.info('re-sent request: writing its reply again', this.describe(job));
      }
      for (const job of change.added) {
        this.log.debug('new request', this.describe(job));
        this.limiter.add(`${job.req.domainId}/${job.req.volumeId}`, () => this.run(job));
      }
      if (change.replyDirty) this.writeReplies(hostId);
    }
  }

  private describe(job: Job): Record<string, unknown> {
    const { requestId, domainId, volumeId, sizeMiB } = job.req;
    return { hostId: job.hostId, slot: job.slot, requestId: requestIdString(requestId), domainId, volumeId, sizeMiB, attempt: job.attempt };
  }

  private async run(job: Job): Promise<void> {
    job.timer.mark('wait');
    if (job.phase !== 'queued' || !this.accepting) return;
    job.phase = 'running';
    const { opcode, domainId, volumeId, sizeMiB } = job.req;
    let reason: number = ReasonCode.none;
    let reasonText = '';
    let extendMs = 0;
    if (opcode !== Opcode.extend) {
      reason = ReasonCode.unsupportedOp;
      reasonText = `unsupported opcode ${opcode}`;
    } else if (!Number.isSafeInteger(sizeMiB) || sizeMiB < 1) {
      reason = ReasonCode.badRequest;
      reasonText = `bad size ${sizeMiB} MiB`;
    } else {
      if (!(await this.guard()) || !this.table.current(job)) return;
      const t0 = performance.now();
      try {
        await this.o.extend(domainId, volumeId, sizeMiB);
      } catch (err) {
        reason = mailboxReason(err);
        reasonText = err instanceof Error ? err.message : String(err);
        this.log.warn('extend handler failed', { ...this.describe(job), err });
      }
      extendMs = performance.now() - t0;
      job.timer.mark('extend');
    }
    if (!this.table.current(job) || !this.writable) {
      this.log.info('handler result dropped (request withdrawn or mailbox stopped)', { ...this.describe(job), ...job.timer.fields() });
      return;
    }
    job.phase = 'done';
    job.reply = {
      state: reason === ReasonCode.none ? 'ok' : 'failed', opcode, requestId: job.req.requestId, attempt: job.attempt,
      domainId, volumeId, sizeMiB: Number.isSafeInteger(sizeMiB) ? sizeMiB : 0, reason, reasonText, spmHostId: this.spmHostId, extendMs,
    };
    // "extend request served" is logged by the write that puts the reply on disk: this one, or a retry by the poll loop.
    await this.writeReplies(job.hostId).catch((err: unknown) => {
      this.log.warn('writing a reply failed; retried by the poll loop', { ...this.describe(job), err });
    });
  }

  /** Once per job, when its reply first reached the disk: counts it and logs "extend request served". */
  private served(job: Job): void {
    if (job.replied || !job.reply) return;
    job.replied = true;
    job.timer.mark('reply');
    const { state, reason, reasonText } = job.reply;
    if (reason === ReasonCode.none) this.stats.served++; else this.stats.failed++;
    this.log.info('extend request served', {
      ...this.describe(job), status: state, reason: reasonName(reason), ...(reasonText ? { reasonText } : {}), ...job.timer.fields(),
    });
  }

  /** Rewrites a host's reply block from the table (coalesced; guarded by stillSpm()). */
  private writeReplies(hostId: number): Promise<void> {
    let w = this.writers.get(hostId);
    if (!w) {
      w = new CoalescedWriter(async () => {
        if (!(await this.guard())) throw new MailboxUnavailableError('not writing replies: no longer the SPM, or stopped', { hostId });
        // The block and the jobs it answers, taken together (no await in between).
        const block = this.table.replyBlock(hostId);
        const answered = this.table.answered(hostId);
        await this.repFile!.write(blockOffset(hostId), block);
        for (const job of answered) this.served(job);
      });
      this.writers.set(hostId, w);
    }
    const p = w.request();
    p.catch(() => undefined); // callers that care await it; the poll loop retries dirty writers
    return p;
  }

  /** The lease check. False (or a throw) stops this mailbox for good. */
  private async guard(): Promise<boolean> {
    if (!this.writable) return false;
    let ok = false;
    let err: unknown;
    try {
      ok = await this.o.stillSpm();
    } catch (e) {
      err = e;
    }
    if (!ok) this.lose(err === undefined ? 'stillSpm() returned false' : 'stillSpm() failed', err);
    return ok && this.writable;
  }

  private lose(why: string, err?: unknown): void {
    if (this.lost) return;
    this.lost = true;
    this.accepting = false;
    this.writable = false;
    this.limiter.close();
    this.sleeper.wakeAll();
    this.log.error('no longer the SPM: the mailbox stops serving', { why, ...(err === undefined ? {} : { err }), running: this.limiter.running });
    try {
      this.o.onLost?.(why);
    } catch (e) {
      this.log.warn('onLost callback threw', { err: e });
    }
  }
}
