// The SPM's side of the extension mailbox. It polls the requests area's event
// block often (eventPollMs) and reads every host block on a change and every
// scanIntervalMs anyway; validates each block's checksum; runs the extend
// handler for each new request (bounded concurrency, one at a time per volume);
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
  BLOCK_SIZE, Opcode, ReasonCode, SLOTS_PER_HOST, areaBytes, blockOffset, decodeBlock, emptyHostBlock, encodeBlock,
  randomU64, reasonName, requestIdString, validHostId, type ReplySlot, type RequestSlot, type Slot,
} from './format.js';

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
  log?: Logger;
}

interface Job {
  hostId: number;
  slot: number;
  req: RequestSlot;
  /** The latest attempt seen in the request area. */
  attempt: number;
  phase: 'queued' | 'running' | 'done' | 'cancelled';
  reply?: ReplySlot;
  timer: PhaseTimer;
}

interface HostState {
  jobs: (Job | undefined)[];
  lastRaw?: Buffer;
  generation: bigint;
  writer: CoalescedWriter;
  badBlocks: number;
}

export interface SpmMailboxStats {
  served: number;
  failed: number;
  repliesRewritten: number;
  scans: number;
  eventWakeups: number;
  badBlocks: number;
  running: number;
  queued: number;
}

export class SpmMailbox {
  readonly spmHostId: number;
  private readonly o: Required<Omit<SpmMailboxOptions, 'log' | 'onLost' | 'direct'>> & { direct: DirectIoMode };
  private readonly log: Logger;
  private readonly onLost: ((why: string) => void) | undefined;
  private reqFile?: BlockFile;
  private repFile?: BlockFile;
  private readonly incarnation = randomU64();
  private accepting = false; // the poll loop runs and new handler calls may start
  private writable = false; // replies may be written
  private started = false;
  private lost = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly wakers = new Set<() => void>();
  private lastEvent?: Buffer;
  private readonly hosts = new Map<number, HostState>();
  private readonly queue: Job[] = [];
  private readonly runningJobs = new Set<Promise<void>>();
  private readonly busyVolumes = new Set<string>();
  private loopErrors = 0;
  readonly stats: SpmMailboxStats = { served: 0, failed: 0, repliesRewritten: 0, scans: 0, eventWakeups: 0, badBlocks: 0, running: 0, queued: 0 };

  constructor(opts: SpmMailboxOptions) {
    this.o = {
      requestsPath: opts.requestsPath, repliesPath: opts.repliesPath, spmHostId: opts.spmHostId,
      maxHosts: opts.maxHosts ?? 250, extend: opts.extend, stillSpm: opts.stillSpm,
      eventPollMs: opts.eventPollMs ?? 50, scanIntervalMs: opts.scanIntervalMs ?? 2000,
      concurrency: opts.concurrency ?? 10, drainMs: opts.drainMs ?? 5000, direct: opts.direct ?? 'auto',
    };
    if (!validHostId(opts.spmHostId, this.o.maxHosts)) throw new RangeError(`SPM host id ${opts.spmHostId} is not in 1..${this.o.maxHosts}`);
    this.spmHostId = opts.spmHostId;
    this.onLost = opts.onLost;
    this.log = (opts.log ?? silentLogger).child({ component: 'spm-mailbox', spmHostId: opts.spmHostId });
  }

  /** Serving requests (false after stop() or once stillSpm() said no). */
  get running(): boolean {
    return this.accepting;
  }

  async start(): Promise<void> {
    if (this.started) throw new MailboxUnavailableError('an SPM mailbox instance starts once; make a new one');
    this.started = true;
    const bytes = areaBytes(this.o.maxHosts);
    const common = { maxIoBytes: bytes, direct: this.o.direct, log: this.log };
    const timer = new PhaseTimer();
    this.reqFile = await BlockFile.open(this.o.requestsPath, { ...common, writable: false });
    this.repFile = await BlockFile.open(this.o.repliesPath, { ...common, writable: true });
    try {
      await this.reqFile.ensureSize(bytes);
      await this.repFile.ensureSize(bytes);
      if (!(await this.o.stillSpm())) throw new MailboxUnavailableError('not the SPM: stillSpm() returned false', { spmHostId: this.spmHostId });
      this.writable = true;
      timer.mark('open');
      // Announce this SPM in block 0 and rewrite every host's reply block empty, in one write.
      const area = Buffer.alloc(bytes);
      encodeBlock({ kind: 'spm', ownerHostId: 0, writerHostId: this.spmHostId, incarnation: this.incarnation, generation: 1n, writtenAtMs: Date.now(), slots: [] }).copy(area, 0);
      for (let h = 1; h <= this.o.maxHosts; h++) {
        encodeBlock(emptyHostBlock('reply', h, this.spmHostId, this.incarnation, 1n)).copy(area, blockOffset(h));
      }
      await this.repFile.write(0, area);
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
      maxHosts: this.o.maxHosts, pending: this.queue.length + this.runningJobs.size, incarnation: requestIdString(this.incarnation),
      direct: { requests: this.reqFile.direct, replies: this.repFile.direct }, ...timer.fields(),
    });
  }

  /** Stops polling; waits up to drainMs for running handlers (writing their replies), then closes. Requests not yet started stay pending for the next SPM. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.accepting = false;
    for (const w of this.wakers) w();
    await this.loopDone;
    const drained = await Promise.race([
      Promise.allSettled([...this.runningJobs]).then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), this.o.drainMs).unref()),
    ]);
    await Promise.race([
      Promise.allSettled([...this.hosts.values()].map((h) => h.writer.idle())),
      new Promise((r) => setTimeout(r, this.o.drainMs).unref()),
    ]);
    this.writable = false;
    this.queue.length = 0;
    await this.reqFile?.close();
    await this.repFile?.close();
    this.log.info('SPM mailbox stopped', { drained, abandoned: this.runningJobs.size, ...this.stats });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); this.wakers.delete(done); resolve(); };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private async loop(): Promise<void> {
    let nextScan = performance.now() + this.o.scanIntervalMs;
    while (this.accepting) {
      await this.sleep(this.o.eventPollMs);
      if (!this.accepting) break;
      try {
        if (performance.now() >= nextScan) {
          if (!(await this.guard())) break;
          await this.scan('periodic');
          nextScan = performance.now() + this.o.scanIntervalMs;
        } else {
          const ev = await this.reqFile!.read(0, BLOCK_SIZE);
          if (!this.lastEvent || !ev.equals(this.lastEvent)) {
            this.stats.eventWakeups++;
            await this.scan('event', ev);
            nextScan = performance.now() + this.o.scanIntervalMs;
          }
        }
        for (const [hostId, h] of this.hosts) if (h.writer.dirty && !h.writer.busy) this.writeReplies(hostId);
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
    const buf = await this.reqFile!.read(BLOCK_SIZE, this.o.maxHosts * BLOCK_SIZE);
    this.stats.scans++;
    if (!this.accepting) return;
    for (let hostId = 1; hostId <= this.o.maxHosts; hostId++) {
      const raw = buf.subarray((hostId - 1) * BLOCK_SIZE, hostId * BLOCK_SIZE);
      const hs = this.hosts.get(hostId);
      if (hs?.lastRaw?.equals(raw)) continue;
      const r = decodeBlock(raw, { kind: 'request', ownerHostId: hostId });
      const state = hs ?? this.hostState(hostId);
      state.lastRaw = Buffer.from(raw);
      if (!r.ok) {
        this.stats.badBlocks++;
        if (++state.badBlocks === 1 || state.badBlocks % 100 === 0) this.log.warn('invalid request block ignored', { hostId, error: r.error, count: state.badBlocks, why });
        continue;
      }
      this.processHost(hostId, state, r.block.slots);
    }
    this.pump();
  }

  private hostState(hostId: number): HostState {
    const hs: HostState = {
      jobs: new Array<Job | undefined>(SLOTS_PER_HOST).fill(undefined), generation: 1n, badBlocks: 0,
      writer: new CoalescedWriter(() => this.writeReplyBlock(hostId)),
    };
    this.hosts.set(hostId, hs);
    return hs;
  }

  private processHost(hostId: number, hs: HostState, slots: Slot[]): void {
    let dirty = false;
    slots.forEach((s, i) => {
      const job = hs.jobs[i];
      if (s?.state === 'request') {
        if (job && job.req.requestId === s.requestId) {
          if (s.attempt !== job.attempt) {
            job.attempt = s.attempt;
            if (job.phase === 'done') {
              // A re-send of an answered request: the reply may have been lost. Write it again.
              dirty = true;
              this.stats.repliesRewritten++;
              this.log.info('re-sent request: writing its reply again', this.describe(job));
            }
          }
          return;
        }
        if (job) dirty = this.cancel(job) || dirty;
        const nj: Job = { hostId, slot: i, req: s, attempt: s.attempt, phase: 'queued', timer: new PhaseTimer() };
        hs.jobs[i] = nj;
        this.queue.push(nj);
        this.log.debug('new request', this.describe(nj));
      } else if (job) {
        // The HSM cleared (or replaced) the slot: forget the request, clear its reply.
        dirty = this.cancel(job) || dirty;
        hs.jobs[i] = undefined;
      }
    });
    if (dirty) this.writeReplies(hostId);
  }

  /** Withdraws a job; true if it had a reply on disk that must now be cleared. */
  private cancel(job: Job): boolean {
    const hadReply = job.phase === 'done';
    if (job.phase === 'queued') {
      const i = this.queue.indexOf(job);
      if (i >= 0) this.queue.splice(i, 1);
    }
    if (job.phase === 'running') this.log.info('request withdrawn while its handler runs; its result will be dropped', this.describe(job));
    job.phase = 'cancelled';
    return hadReply;
  }

  private describe(job: Job): Record<string, unknown> {
    const { requestId, domainId, volumeId, sizeMiB } = job.req;
    return { hostId: job.hostId, slot: job.slot, requestId: requestIdString(requestId), domainId, volumeId, sizeMiB, attempt: job.attempt };
  }

  private pump(): void {
    while (this.accepting && this.runningJobs.size < this.o.concurrency) {
      const i = this.queue.findIndex((j) => !this.busyVolumes.has(`${j.req.domainId}/${j.req.volumeId}`));
      if (i < 0) break;
      const job = this.queue.splice(i, 1)[0]!;
      const key = `${job.req.domainId}/${job.req.volumeId}`;
      this.busyVolumes.add(key);
      const p: Promise<void> = this.run(job).catch((err: unknown) => this.log.error('serving a request failed', { ...this.describe(job), err })).finally(() => {
        this.runningJobs.delete(p);
        this.busyVolumes.delete(key);
        this.stats.running = this.runningJobs.size;
        this.pump();
      });
      this.runningJobs.add(p);
    }
    this.stats.running = this.runningJobs.size;
    this.stats.queued = this.queue.length;
  }

  private async run(job: Job): Promise<void> {
    job.timer.mark('wait');
    if (job.phase !== 'queued') return;
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
      if (!(await this.guard())) return;
      if (job.phase !== 'running') return; // withdrawn meanwhile
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
    if (job.phase !== 'running' || !this.writable) {
      this.log.info('handler result dropped (request withdrawn or mailbox stopped)', { ...this.describe(job), ...job.timer.fields() });
      return;
    }
    job.phase = 'done';
    job.reply = {
      state: reason === ReasonCode.none ? 'ok' : 'failed', opcode, requestId: job.req.requestId, attempt: job.attempt,
      domainId, volumeId, sizeMiB: Number.isSafeInteger(sizeMiB) ? sizeMiB : 0, reason, reasonText, spmHostId: this.spmHostId, extendMs,
    };
    try {
      await this.writeReplies(job.hostId);
    } catch (err) {
      this.log.warn('writing a reply failed; retried by the poll loop', { ...this.describe(job), err });
      return;
    }
    job.timer.mark('reply');
    if (reason === ReasonCode.none) this.stats.served++; else this.stats.failed++;
    this.log.info('extend request served', {
      ...this.describe(job), status: job.reply.state, reason: reasonName(reason), ...(reasonText ? { reasonText } : {}), ...job.timer.fields(),
    });
  }

  private writeReplies(hostId: number): Promise<void> {
    const hs = this.hosts.get(hostId) ?? this.hostState(hostId);
    const p = hs.writer.request();
    p.catch(() => undefined); // callers that care await it; the poll loop retries dirty writers
    return p;
  }

  private async writeReplyBlock(hostId: number): Promise<void> {
    const hs = this.hosts.get(hostId)!;
    if (!(await this.guard())) throw new MailboxUnavailableError('not writing replies: no longer the SPM or stopped', { hostId });
    await this.repFile!.write(blockOffset(hostId), encodeBlock({
      kind: 'reply', ownerHostId: hostId, writerHostId: this.spmHostId, incarnation: this.incarnation,
      generation: ++hs.generation, writtenAtMs: Date.now(),
      slots: hs.jobs.map((j): Slot => (j?.phase === 'done' && j.reply ? { ...j.reply, attempt: j.attempt } : undefined)),
    }));
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
    for (const w of this.wakers) w();
    this.log.error('no longer the SPM: the mailbox stops serving', { why, ...(err === undefined ? {} : { err }), running: this.runningJobs.size, queued: this.queue.length });
    try {
      this.onLost?.(why);
    } catch (e) {
      this.log.warn('onLost callback threw', { err: e });
    }
  }
}
