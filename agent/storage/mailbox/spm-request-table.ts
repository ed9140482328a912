// What the SPM knows about each host's slots: the request it last saw in each
// slot (a "job"), whether the job has been answered, and from that the content
// of the host's reply block. apply() takes a freshly read request block and
// says what changed: new requests to serve, withdrawn ones, re-sends of
// answered ones (their reply may have been lost), and whether the host's reply
// block must be rewritten. No I/O here.
import { PhaseTimer } from '../../log.js';
import { SLOTS_PER_HOST, encodeBlock, type ReplySlot, type RequestSlot, type Slot } from './format.js';

export interface Job {
  hostId: number;
  slot: number;
  req: RequestSlot;
  /** The latest attempt seen in the request area. */
  attempt: number;
  phase: 'queued' | 'running' | 'done' | 'withdrawn';
  reply?: ReplySlot;
  /** Phases from when the SPM saw the request. */
  timer: PhaseTimer;
  /** Its reply reached the disk once ("extend request served" is logged then, and only then). */
  replied?: boolean;
}

export interface ApplyResult {
  added: Job[];
  /** Jobs whose slot the HSM cleared or reused, with the phase they were in. */
  withdrawn: { job: Job; was: Job['phase'] }[];
  /** Answered jobs the HSM sent again. */
  resent: Job[];
  /** The host's reply block differs from what is on disk. */
  replyDirty: boolean;
}

interface Host {
  jobs: (Job | undefined)[];
  lastRaw?: Buffer;
  generation: bigint;
  badBlocks: number;
}

export class RequestTable {
  private readonly hosts = new Map<number, Host>();

  constructor(private readonly spmHostId: number, private readonly incarnation: bigint) {}

  /** True if `raw` is the very block last applied for this host (nothing to do). */
  unchanged(hostId: number, raw: Buffer): boolean {
    return this.hosts.get(hostId)?.lastRaw?.equals(raw) ?? false;
  }

  /** Remembers a host's raw block even when it did not decode; returns how many bad blocks in a row. */
  badBlock(hostId: number, raw: Buffer): number {
    const h = this.host(hostId);
    h.lastRaw = Buffer.from(raw);
    return ++h.badBlocks;
  }

  apply(hostId: number, raw: Buffer, slots: Slot[]): ApplyResult {
    const h = this.host(hostId);
    h.lastRaw = Buffer.from(raw);
    h.badBlocks = 0;
    const out: ApplyResult = { added: [], withdrawn: [], resent: [], replyDirty: false };
    const withdraw = (job: Job) => {
      if (job.phase === 'done') out.replyDirty = true; // its reply must be cleared
      out.withdrawn.push({ job, was: job.phase });
      job.phase = 'withdrawn';
    };
    slots.forEach((s, i) => {
      const job = h.jobs[i];
      if (s?.state === 'request') {
        if (job && job.req.requestId === s.requestId) {
          if (s.attempt !== job.attempt) {
            job.attempt = s.attempt;
            if (job.phase === 'done') {
              out.replyDirty = true;
              out.resent.push(job);
            }
          }
          return;
        }
        if (job) withdraw(job);
        const nj: Job = { hostId, slot: i, req: s, attempt: s.attempt, phase: 'queued', timer: new PhaseTimer() };
        h.jobs[i] = nj;
        out.added.push(nj);
      } else if (job) {
        withdraw(job);
        h.jobs[i] = undefined;
      }
    });
    return out;
  }

  /** True while `job` is the live request of its slot. */
  current(job: Job): boolean {
    return this.hosts.get(job.hostId)?.jobs[job.slot] === job && job.phase !== 'withdrawn';
  }

  /** Hosts the SPM has state for. */
  hostIds(): number[] {
    return [...this.hosts.keys()];
  }

  /** The host's answered jobs: those replyBlock() puts in its block. */
  answered(hostId: number): Job[] {
    return this.host(hostId).jobs.filter((j): j is Job => j?.phase === 'done' && j.reply !== undefined);
  }

  /** The host's reply block as it should be on disk now (answered jobs only), with a new generation. */
  replyBlock(hostId: number): Buffer {
    const h = this.host(hostId);
    return encodeBlock({
      kind: 'reply', ownerHostId: hostId, writerHostId: this.spmHostId, incarnation: this.incarnation,
      generation: ++h.generation, writtenAtMs: Date.now(),
      slots: h.jobs.map((j): Slot => (j?.phase === 'done' && j.reply ? { ...j.reply, attempt: j.attempt } : undefined)),
    });
  }

  private host(hostId: number): Host {
    let h = this.hosts.get(hostId);
    if (!h) {
      // Generation 1 is the empty block the SPM wrote at start.
      h = { jobs: new Array<Job | undefined>(SLOTS_PER_HOST).fill(undefined), generation: 1n, badBlocks: 0 };
      this.hosts.set(hostId, h);
    }
    return h;
  }
}
