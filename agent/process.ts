// The one way the agent runs a program (qemu-img, lvm, losetup, ip, a hook,
// openssl, systemd-notify...):
//  - the child gets its own process group, and a timeout or an abort kills the
//    whole group with SIGKILL, so nothing it started outlives it;
//  - stdout and stderr are read to the end (a child never blocks on a full
//    pipe) but kept only up to a cap each;
//  - the run ends when the child exits: output still in the pipes is read, but
//    a grandchild that keeps them open (a daemon it forked) is not waited for
//    beyond a short grace period.
// runProcess() never rejects and says how the run ended; a Runner (made by
// createRunner) turns a failure into the caller's named error class. Storage
// and network code take a Runner so tests can record command lines.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { HostvisorError } from '../api/errors.js';
import { silentLogger, type Logger } from './log.js';

export interface ProcessOptions {
  timeoutMs: number;
  /** Written to the child's stdin, which is then closed; otherwise stdin is /dev/null. */
  input?: Buffer | string;
  /** Variables added to the child's environment. */
  env?: NodeJS.ProcessEnv;
  /** The environment `env` is added to (default process.env). */
  baseEnv?: NodeJS.ProcessEnv;
  /** 'C' (default) sets LC_ALL=C, since callers parse the output; 'inherit' leaves the locale alone. */
  locale?: 'C' | 'inherit';
  /** stdout bytes kept (default 64 MiB); the rest is read and dropped. */
  stdoutCapBytes?: number;
  /** stderr bytes kept (default 64 KiB). */
  stderrCapBytes?: number;
  /** After the child exits, how long to wait for its pipes to close (default 100 ms). */
  pipeGraceMs?: number;
  /** Aborting kills the whole process group (SIGKILL), as a timeout does; the result says `aborted`. */
  signal?: AbortSignal;
  /** Sees stdout as it arrives (progress output), besides keeping it. */
  onStdout?: (chunk: Buffer) => void;
}

export interface ProcessResult {
  /** The exit code; 128 + n when killed by signal n; 127 when it could not be started. */
  rc: number;
  /** The signal that ended it, if one did. */
  exitSignal?: NodeJS.Signals;
  stdout: Buffer;
  stderr: string;
  /** Output beyond a cap was dropped. */
  truncated: boolean;
  ms: number;
  timedOut: boolean;
  /** Killed because opts.signal was aborted. */
  aborted: boolean;
  spawnError?: Error;
}

export const DEFAULT_STDOUT_CAP = 64 * 1024 * 1024;
export const DEFAULT_STDERR_CAP = 64 * 1024;
export const DEFAULT_PIPE_GRACE_MS = 100;

const SBIN = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const resolved = new Map<string, string>();

/** The absolute path of a tool: $PATH first, then the sbin folders (a service's PATH may lack them). */
export function resolveTool(name: string): string {
  if (name.includes('/')) return name;
  const hit = resolved.get(name);
  if (hit) return hit;
  for (const d of [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN]) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      resolved.set(name, p);
      return p;
    } catch { /* next */ }
  }
  return name;
}

/** Collects a stream's bytes up to a cap, and counts what it drops. */
class Capped {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;
  constructor(private readonly cap: number) {}
  push(d: Buffer): void {
    const room = this.cap - this.kept;
    if (room <= 0) { this.dropped += d.length; return; }
    const part = d.length <= room ? d : d.subarray(0, room);
    this.chunks.push(part);
    this.kept += part.length;
    this.dropped += d.length - part.length;
  }
  buffer(): Buffer { return Buffer.concat(this.chunks); }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** Runs argv[0] with argv[1..]. Never rejects: the result says how it ended. */
export function runProcess(argv: readonly string[], opts: ProcessOptions): Promise<ProcessResult> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new TypeError('runProcess: empty argv'));
  const t0 = performance.now();
  const empty = { stdout: Buffer.alloc(0), stderr: '', truncated: false, timedOut: false };
  if (opts.signal?.aborted) return Promise.resolve({ ...empty, rc: 137, ms: 0, aborted: true });
  const env = { ...(opts.baseEnv ?? process.env), ...(opts.locale === 'inherit' ? {} : { LC_ALL: 'C' }), ...opts.env };
  return new Promise((resolve) => {
    // detached: its own process group, so a timeout kills whatever it started too.
    const child = spawn(resolveTool(cmd), args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
      env,
    });
    const out = new Capped(opts.stdoutCapBytes ?? DEFAULT_STDOUT_CAP);
    const err = new Capped(opts.stderrCapBytes ?? DEFAULT_STDERR_CAP);
    let timedOut = false;
    let aborted = false;
    let exit: { rc: number; exitSignal?: NodeJS.Signals } | undefined;
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    let chunksRead = 0;
    child.stdout!.on('data', (d: Buffer) => { chunksRead++; out.push(d); opts.onStdout?.(d); });
    child.stderr!.on('data', (d: Buffer) => { chunksRead++; err.push(d); });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => { /* the child may exit before reading everything; its rc tells */ });
      child.stdin!.end(opts.input);
    }
    const killGroup = (): void => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    };
    const timer = setTimeout(() => { timedOut = true; killGroup(); }, opts.timeoutMs);
    const onAbort = (): void => { aborted = true; killGroup(); };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      opts.signal?.removeEventListener('abort', onAbort);
      // A daemon the child left behind may hold the pipes open: stop reading them.
      child.stdout!.destroy();
      child.stderr!.destroy();
      const ms = Math.round((performance.now() - t0) * 10) / 10;
      resolve({
        rc: spawnError ? 127 : exit?.rc ?? 255, ...(exit?.exitSignal ? { exitSignal: exit.exitSignal } : {}),
        stdout: out.buffer(), stderr: err.buffer().toString('utf8'), truncated: out.dropped + err.dropped > 0,
        ms, timedOut, aborted, ...(spawnError ? { spawnError } : {}),
      });
    };
    // The grace ends only after the pipes were quiet for its whole length AND one more poll of
    // them (setImmediate runs after the event loop's I/O phase), so the timer can never win against
    // output already waiting in a pipe. Defensive: a run once "succeeded" with no output under
    // load (qemu-img measure, rc 0, no JSON); that the grace caused it is suspected, not proven.
    const armGrace = (): void => {
      const seen = chunksRead;
      grace = setTimeout(() => setImmediate(() => (chunksRead === seen ? finish() : armGrace())), opts.pipeGraceMs ?? DEFAULT_PIPE_GRACE_MS);
    };
    child.once('exit', (code, sig) => {
      exit = { rc: code ?? 128 + (sig ? SIGNAL_NUMBERS[sig] ?? 0 : 0), ...(sig ? { exitSignal: sig } : {}) };
      // Output already written is in the pipes and is read before 'close'; only a grandchild delays it.
      armGrace();
    });
    child.once('close', () => { if (exit) finish(); });
    child.once('error', (e) => finish(e));
  });
}

// ---------- a daemon ----------

export interface DetachedChild {
  pid: number | undefined;
  /** Settles when it exits: its exit code, null when killed by a signal, 127 when it could not start. */
  exited: Promise<number | null>;
}

/**
 * Starts a long-running program (the DHCP client) in its own session, with
 * stdout and stderr written to `logFile` (emptied first), and does not wait for it: the
 * caller tracks it by its pid file and stops it by pid.
 */
export function startDetached(argv: readonly string[], opts: { logFile: string; env?: NodeJS.ProcessEnv }): DetachedChild {
  const [cmd, ...args] = argv;
  if (!cmd) throw new TypeError('startDetached: empty argv');
  const logFd = openSync(opts.logFile, 'w');
  try {
    const child = spawn(resolveTool(cmd), args, { detached: true, stdio: ['ignore', logFd, logFd], env: { ...process.env, ...opts.env } });
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(127));
    });
    child.unref();
    return { pid: child.pid, exited };
  } finally {
    closeSync(logFd);
  }
}

// ---------- Runner: a run that raises the caller's errors ----------

export interface RunOptions {
  timeoutMs: number;
  /** Written to the child's stdin, which is then closed. */
  input?: Buffer | string;
  /** Exit codes that are not errors (default [0]). */
  okCodes?: readonly number[];
  /** Variables added to process.env for the child. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Aborting kills the command (its process group) and raises the runner's aborted error. */
  signal?: AbortSignal;
  /** Sees stdout as it arrives (qemu-img convert -p's progress). */
  onStdout?: (chunk: Buffer) => void;
}

export interface RunResult {
  rc: number;
  stdout: string;
  /** The same output, undecoded (dd reads binary). */
  stdoutBuf: Buffer;
  stderr: string;
  ms: number;
}

/** Runs argv[0] with argv[1..]; rejects with the runner's error classes. The seam tests replace. */
export type Runner = (argv: readonly string[], opts: RunOptions) => Promise<RunResult>;

/** How a runner reports a failure: each area raises its own named errors. */
export interface CommandErrors {
  failed(argv: readonly string[], rc: number, stderr: string, cause?: Error): Error;
  timedOut(argv: readonly string[], timeoutMs: number, stderr: string): Error;
  aborted(argv: readonly string[], ms: number): Error;
}

export interface RunnerConfig {
  /** Names the area in the log lines ("storage command", "network command timed out"). */
  area: string;
  errors: CommandErrors;
}

export function createRunner(config: RunnerConfig): Runner {
  const { area, errors } = config;
  return async (argv, opts) => {
    const log = opts.log ?? silentLogger;
    const r = await runProcess(argv, {
      timeoutMs: opts.timeoutMs, ...(opts.input !== undefined ? { input: opts.input } : {}), ...(opts.env ? { env: opts.env } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onStdout ? { onStdout: opts.onStdout } : {}),
    });
    if (r.aborted) {
      log.info(`${area} command stopped`, { argv: argv.slice(0, 3), ms: r.ms });
      throw errors.aborted(argv, r.ms);
    }
    if (r.timedOut) {
      log.warn(`${area} command timed out`, { argv, timeoutMs: opts.timeoutMs });
      throw errors.timedOut(argv, opts.timeoutMs, r.stderr);
    }
    log.debug(`${area} command`, { argv, rc: r.rc, ms: r.ms, ...(r.truncated ? { truncated: true } : {}) });
    if (!(opts.okCodes ?? [0]).includes(r.rc)) {
      throw errors.failed(argv, r.rc, r.spawnError ? String(r.spawnError) : r.stderr, r.spawnError);
    }
    return { rc: r.rc, stdout: r.stdout.toString('utf8'), stdoutBuf: r.stdout, stderr: r.stderr, ms: r.ms };
  };
}

// ---------- the agent's own commands (no area of their own) ----------

type Opts = { cause?: unknown; data?: Record<string, unknown> };

/** A program the agent runs for itself (openssl, systemd-notify) failed, or was stopped. */
export class CommandError extends HostvisorError {
  override readonly name = 'CommandError';
  constructor(readonly argv: readonly string[], readonly rc: number, readonly stderr: string, opts?: Opts) {
    super('internalError', `${argv.slice(0, 2).join(' ')} failed (rc=${rc}): ${stderr.trim().split('\n').at(-1) ?? ''}`, {
      ...opts, data: { argv: [...argv], rc, stderr: stderr.slice(-2000), ...opts?.data },
    });
  }
}

/** A program the agent runs for itself did not finish in time and was killed. */
export class CommandTimeoutError extends HostvisorError {
  override readonly name = 'CommandTimeoutError';
  constructor(readonly argv: readonly string[], readonly timeoutMs: number, readonly stderr: string) {
    super('timeout', `${argv.slice(0, 2).join(' ')} timed out after ${timeoutMs} ms and was killed`, {
      data: { argv: [...argv], timeoutMs, stderr: stderr.slice(-2000) },
    });
  }
}

/** The runner for the agent's own commands: CommandError, CommandTimeoutError. */
export const run: Runner = createRunner({
  area: 'agent',
  errors: {
    failed: (argv, rc, stderr, cause) => new CommandError(argv, rc, stderr, cause ? { cause } : undefined),
    timedOut: (argv, timeoutMs, stderr) => new CommandTimeoutError(argv, timeoutMs, stderr),
    aborted: (argv, ms) => new CommandError(argv, 137, `stopped after ${Math.round(ms)} ms`, { data: { aborted: true } }),
  },
});
