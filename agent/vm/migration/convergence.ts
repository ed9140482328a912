// Drives one running libvirt migration towards its end: the convergence
// schedule (schedule.ts) stepped by memory iterations, and KubeVirt's
// deadlines (timeouts.ts), both fed by the migration-iteration event and the
// monitor's job-stats samples. It applies their actions on the domain, one at a
// time, and remembers why it aborted so the error can name the step.
import type { Domain } from '../../libvirt/index.js';
import type { Logger } from '../../log.js';
import { START, postcopyStarted, stepSchedule, type ConvergenceActionT, type ConvergenceScheduleT, type ScheduleState } from './schedule.js';
import { checkTimeouts, startTimeouts, type TimeoutLimits, type TimeoutState } from './timeouts.js';

/** The step a migration ended at when this ended it. */
export interface ConvergenceAbort { step: 'abort by schedule' | 'progressTimeout' | 'completionTimeout'; message: string }

export interface ConvergenceView {
  postcopy: boolean;
  maxDowntime: number | undefined;
  /** The highest memory iteration seen, event or job stats. */
  iteration: number | undefined;
}

export class ConvergenceMonitor {
  private state: ScheduleState = START;
  private timeouts: TimeoutState;
  private initDone = false;
  /** Actions run in order, never two at once (an event and a sample may arrive together). */
  private chain: Promise<void> = Promise.resolve();
  private ended = false;
  aborted: ConvergenceAbort | undefined;
  readonly view: ConvergenceView = { postcopy: false, maxDowntime: undefined, iteration: undefined };

  constructor(
    private readonly dom: Domain,
    private readonly schedule: ConvergenceScheduleT,
    private readonly limits: TimeoutLimits,
    private readonly log: Logger,
    private readonly changed: () => void,
    nowMs = performance.now(),
  ) {
    this.timeouts = startTimeouts(nowMs);
  }

  /** libvirt's MIGRATION_ITERATION event. */
  iteration(n: number): Promise<void> {
    return this.enqueue(async () => { await this.stepTo(n); });
  }

  /** One job-stats sample of the monitor. */
  sample(s: { memoryIteration?: number; dataRemaining?: number }, nowMs = performance.now()): Promise<void> {
    return this.enqueue(async () => {
      if (s.memoryIteration !== undefined) await this.stepTo(s.memoryIteration);
      if (this.ended || this.view.postcopy) return;
      const r = checkTimeouts(this.limits, this.timeouts, nowMs, s.dataRemaining);
      this.timeouts = r.state;
      if (r.due) await this.abort({ step: r.due, message: r.message ?? r.due });
    });
  }

  /** The libvirt job ended: nothing more is applied. */
  stop(): void { this.ended = true; }

  private enqueue(f: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.ended || this.aborted) return;
      await this.runInit();
      await f();
    }).catch((e: unknown) => this.log.warn('convergence step failed', { err: e }));
    return this.chain;
  }

  /** Init actions need the libvirt job running; until they succeed, each event or sample tries again. */
  private async runInit(): Promise<void> {
    if (this.initDone) return;
    try {
      for (const a of this.schedule.init) await this.apply(a);
      this.initDone = true;
    } catch (e) {
      this.log.debug('init actions not applied yet', { err: e });
    }
  }

  private async stepTo(iteration: number): Promise<void> {
    const r = stepSchedule(this.schedule, this.state, iteration);
    this.state = r.state;
    if (r.state.last !== undefined) this.view.iteration = r.state.last;
    if (!r.action || this.ended) return;
    this.log.info('convergence schedule step', { iteration, action: r.action.name, params: r.action.params });
    try {
      await this.apply(r.action);
    } catch (e) {
      // As VDSM: a failed step (e.g. post-copy refused) is logged; the next new iteration runs the next one.
      this.log.warn('convergence action failed', { action: r.action.name, err: e });
    }
  }

  private async apply(a: ConvergenceActionT): Promise<void> {
    switch (a.name) {
      case 'setDowntime': {
        const ms = Number(a.params[0]);
        await this.dom.migrateSetMaxDowntime(ms);
        this.view.maxDowntime = ms;
        break;
      }
      case 'postcopy':
        await this.dom.migrateStartPostCopy();
        this.view.postcopy = true;
        this.state = postcopyStarted(this.state);
        break;
      case 'abort':
        await this.abort({ step: 'abort by schedule', message: `the convergence schedule aborted the migration at memory iteration ${this.state.last ?? '?'}` });
        return;
    }
    this.changed();
  }

  private async abort(why: ConvergenceAbort): Promise<void> {
    this.aborted = why;
    this.log.warn('aborting the migration', { step: why.step, reason: why.message });
    await this.dom.abortJob();
  }
}
