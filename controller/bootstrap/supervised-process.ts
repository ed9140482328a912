// One child process of the all-in-one runner: started, its output passed through line by line
// with a prefix, restarted with a growing delay if it dies, and stopped with SIGTERM then
// SIGKILL after a bound. Restarting is safe for both: the agent leaves VMs running and
// reconciles, the controller resumes its jobs.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface SupervisedOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** first restart delay; doubled after each quick death, up to maxRestartDelayMs */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** a run at least this long resets the delay */
  healthyAfterMs?: number;
  stopTimeoutMs?: number;
  out?: (line: string) => void;
}

export class SupervisedProcess {
  private child: ChildProcess | undefined;
  private stopping = false;
  private delay: number;
  private timer: NodeJS.Timeout | undefined;
  restarts = 0;

  constructor(private readonly o: SupervisedOptions) {
    this.delay = o.restartDelayMs ?? 1_000;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.stopping || this.child) return;
    const out = this.o.out ?? ((l: string) => process.stdout.write(l + '\n'));
    const startedAt = performance.now();
    const child = spawn(this.o.command, this.o.args, { env: this.o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (l) => out(`[${this.o.name}] ${l}`));
    }
    child.on('error', (e) => out(`[${this.o.name}] could not start: ${e.message}`));
    child.on('exit', (code, signal) => {
      this.child = undefined;
      if (this.stopping) return;
      if (performance.now() - startedAt >= (this.o.healthyAfterMs ?? 30_000)) this.delay = this.o.restartDelayMs ?? 1_000;
      out(`[${this.o.name}] exited (${signal ?? `code ${code}`}); restarting in ${this.delay} ms`);
      this.timer = setTimeout(() => { this.restarts++; this.start(); }, this.delay);
      this.delay = Math.min(this.delay * 2, this.o.maxRestartDelayMs ?? 30_000);
    });
  }

  /** Stops it for good (no restart): SIGTERM, then SIGKILL after stopTimeoutMs. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), this.o.stopTimeoutMs ?? 15_000);
    await exited;
    clearTimeout(kill);
  }

  /** Restarts it now (after enrolment, to pick up the new certificates). */
  async restart(): Promise<void> {
    await this.stop();
    this.stopping = false;
    this.start();
  }
}
