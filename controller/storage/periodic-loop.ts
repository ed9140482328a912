// A level-triggered loop: one pass every periodMs, never two at once, and one soon after a
// kick() (an agent reconnected, a job wants the pool now). Each pass reads the whole state
// again, so a pass that failed or was skipped is made good by the next one.
import type { RuntimeLoop } from '../runtime/controller-runtime.js';
import { errorFields, type LogFn } from '../agents/log-fn.js';

export class PeriodicLoop implements RuntimeLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private started = false;
  private closed = false;

  constructor(private readonly name: string, private readonly periodMs: () => number, private readonly pass: () => Promise<void>,
    private readonly log: LogFn) {}

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.run();
  }

  /** A pass as soon as the one running (if any) ends. */
  kick(): void {
    if (!this.started || this.closed) return;
    if (this.running) { this.again = true; return; }
    clearTimeout(this.timer);
    this.run();
  }

  /** Resolves when the pass running now (if any) has ended: for tests and jobs that want a fresh view. */
  async settled(): Promise<void> {
    await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private run(): void {
    this.timer = undefined;
    if (this.closed) return;
    this.again = false;
    this.running = this.pass()
      .catch((e: unknown) => this.log('error', `${this.name}: a pass failed; the next one reads everything again`, errorFields(e)))
      .finally(() => {
        this.running = null;
        if (this.closed) return;
        if (this.again) this.run();
        else this.timer = setTimeout(() => this.run(), this.periodMs());
      });
  }
}
