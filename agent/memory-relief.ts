// Gives memory back after a burst. A burst of large or deeply nested
// requests (rejected or not) grows the V8 heap and glibc's malloc arenas;
// V8 shrinks its heap by itself some seconds later, but the freed malloc
// pages (Buffers, TLS and WebSocket buffers) stay resident in the middle of
// the arenas, where only malloc_trim returns them: an idle agent measured
// 83 MiB before such a burst and 175-225 MiB for good after it.
//
// Level-triggered: every check, if the resident size is more than the slack
// above where it settled after the last release (or the lowest seen), run one
// memory-reducing GC and then malloc_trim, and take the result as the new
// settled size. So a burst costs one GC and one trim, not one per check, and
// a legitimate rise (more VMs, more state) is released once and then kept.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from './log.js';
import { collectGarbageNow, mallocStats, trimMalloc } from './libvirt/process-memory.js';

export interface MemoryReliefOptions {
  /** How often the resident size is checked; 0 turns relief off. */
  checkMs: number;
  /** How far above its settled size the resident size may be before memory is released. */
  slackBytes: number;
  log: Logger;
  /** The process's resident size in bytes (a parameter for tests). */
  rss?: () => number;
}

export interface Release {
  beforeBytes: number;
  afterBytes: number;
  ms: number;
  /** malloc_trim gave pages back. */
  trimmed: boolean;
}

/**
 * Once the GC has run, the ArrayBuffer sweeper frees dead Buffers' memory on
 * a background thread; trimming before it is done would miss that memory.
 */
const SWEEP_WAIT_MS = 50;

export class MemoryRelief {
  private settled: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private releasing = false;
  private readonly rss: () => number;

  constructor(private readonly opts: MemoryReliefOptions) {
    this.rss = opts.rss ?? (() => process.memoryUsage.rss());
  }

  start(): void {
    if (this.opts.checkMs <= 0 || this.timer) return;
    this.settled = this.rss();
    this.timer = setInterval(() => { void this.check(); }, this.opts.checkMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check: releases (and resolves to what it did) if the resident size rose past the slack. */
  async check(): Promise<Release | undefined> {
    if (this.releasing) return undefined;
    const rss = this.rss();
    if (this.settled === undefined || rss < this.settled) {
      this.settled = rss;
      return undefined;
    }
    if (rss - this.settled <= this.opts.slackBytes) return undefined;
    return this.release();
  }

  /** GC, then malloc_trim; the result is the new settled size. */
  async release(): Promise<Release> {
    this.releasing = true;
    try {
      const t0 = performance.now();
      const beforeBytes = this.rss();
      collectGarbageNow();
      await sleep(SWEEP_WAIT_MS);
      const trimmed = trimMalloc();
      const afterBytes = this.rss();
      this.settled = afterBytes;
      const r: Release = { beforeBytes, afterBytes, ms: Math.round(performance.now() - t0 - SWEEP_WAIT_MS), trimmed };
      const m = mallocStats();
      this.opts.log.info('memory released', {
        rssBeforeMiB: mib(beforeBytes), rssAfterMiB: mib(afterBytes), ms: r.ms, trimmed,
        ...(m ? { mallocInUseMiB: mib(m.inUseBytes), mallocFreeMiB: mib(m.freeBytes) } : {}),
      });
      return r;
    } finally {
      this.releasing = false;
    }
  }
}

const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
