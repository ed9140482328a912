// Gives memory back after a burst. A burst of large or deeply nested
// requests (rejected or not) grows the V8 heap and glibc's malloc arenas;
// V8 shrinks its heap by itself some seconds later, but the pages malloc
// freed (Buffers, TLS and WebSocket buffers) stay resident in the middle of
// its arenas, where only malloc_trim returns them: an idle agent measured
// 83 MiB before such a burst and 175-225 MiB for good after it, 100+ MiB of
// that free pages in glibc's main arena.
//
// Level-triggered: each check, if the resident size is more than the slack
// above the lowest it has been (the idle agent) and the burst is over (the
// event loop was mostly idle since the last check), malloc_trim on the
// thread pool and, with a backoff, ask V8 for a memory-reducing GC done
// incrementally (a forced full GC held the event loop for 200+ ms on a
// loaded agent). The next check's trim returns what that GC freed. Memory in
// use cannot be returned: while it stays up, the checks cost a trim each, and
// the GC requests thin out (1, 2, 4 ... checks apart, at most MAX_GC_BACKOFF).
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from './log.js';
import { mallocStats, memoryPressure, trimMalloc } from './libvirt/process-memory.js';

export interface MemoryReliefOptions {
  /** How often the resident size is checked; 0 turns relief off. */
  checkMs: number;
  /** How far above its lowest the resident size may be before memory is released. */
  slackBytes: number;
  log: Logger;
  /** The process's resident size in bytes (a parameter for tests). */
  rss?: () => number;
  /** Event loop utilization since the last check above which the agent counts as busy (a parameter for tests). */
  busyUtilization?: number;
}

export interface Release {
  beforeBytes: number;
  afterBytes: number;
  /** How long malloc_trim took (on the thread pool). */
  trimMs: number;
  trimmed: boolean;
  /** A memory-reducing GC was asked for (it runs in the next seconds, in steps). */
  gcRequested: boolean;
}

/** Checks between GC requests at most, while the resident size stays up. */
const MAX_GC_BACKOFF = 32;
/** Busier than this since the last check, the burst is still on: releasing now would be undone at once. */
const BUSY_UTILIZATION = 0.5;

export class MemoryRelief {
  private floor: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Checks to skip before the next GC request, and the current spacing. */
  private gcWait = 0;
  private gcBackoff = 1;
  private rssAtGc = 0;
  private checking = false;
  private elu: EventLoopUtilization | undefined;
  private readonly rss: () => number;

  constructor(private readonly opts: MemoryReliefOptions) {
    this.rss = opts.rss ?? (() => process.memoryUsage.rss());
  }

  /** The lowest resident size seen: what the agent takes at rest. */
  get floorBytes(): number | undefined {
    return this.floor;
  }

  start(): void {
    if (this.opts.checkMs <= 0 || this.timer) return;
    this.floor = this.rss();
    this.elu = performance.eventLoopUtilization();
    this.timer = setInterval(() => { void this.check(); }, this.opts.checkMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check: what it released, if the resident size was past the slack and the agent not busy. */
  async check(): Promise<Release | undefined> {
    if (this.checking) return undefined;
    const beforeBytes = this.rss();
    const now = performance.eventLoopUtilization();
    const busy = this.elu !== undefined && performance.eventLoopUtilization(now, this.elu).utilization > (this.opts.busyUtilization ?? BUSY_UTILIZATION);
    this.elu = now;
    if (this.floor === undefined || beforeBytes < this.floor) this.floor = beforeBytes;
    if (beforeBytes - this.floor <= this.opts.slackBytes) {
      this.gcWait = 0;
      this.gcBackoff = 1;
      return undefined;
    }
    if (busy) return undefined;
    this.checking = true;
    const t0 = performance.now();
    let trimmed: boolean;
    try {
      trimmed = await trimMalloc();
    } finally {
      this.checking = false;
    }
    const trimMs = Math.round((performance.now() - t0) * 10) / 10;
    // Asked again at once if the resident size grew past the slack since the last request: a new burst.
    const gcRequested = this.gcWait === 0 || beforeBytes > this.rssAtGc + this.opts.slackBytes;
    if (gcRequested) {
      memoryPressure('moderate');
      this.rssAtGc = beforeBytes;
      this.gcWait = this.gcBackoff;
      this.gcBackoff = Math.min(MAX_GC_BACKOFF, this.gcBackoff * 2);
    } else {
      this.gcWait--;
    }
    const afterBytes = this.rss();
    const r: Release = { beforeBytes, afterBytes, trimMs, trimmed, gcRequested };
    const m = mallocStats();
    const fields = {
      rssBeforeMiB: mib(beforeBytes), rssAfterMiB: mib(afterBytes), floorMiB: mib(this.floor), trimMs, gcRequested,
      ...(m ? { mallocInUseMiB: mib(m.inUseBytes), mallocFreeMiB: mib(m.freeBytes) } : {}),
    };
    // Worth a line when it gave something back; otherwise only at debug (it repeats while memory is in use).
    if (beforeBytes - afterBytes >= 1024 * 1024) this.opts.log.info('memory released', fields);
    else this.opts.log.debug('memory release', fields);
    return r;
  }
}

const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
