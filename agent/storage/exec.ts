// Child processes for storage: qemu-img, lvm, losetup, truncate, dd. Every run
// has a timeout; on expiry the whole process group is killed (SIGKILL) and a
// StorageCommandTimeoutError is raised. stderr is captured for the error and
// the log; a non-zero exit raises StorageCommandError with argv and rc.
import { runProcess } from '../process.js';
import { silentLogger, type Logger } from '../log.js';
import { OperationAbortedError, StorageCommandError, StorageCommandTimeoutError } from './errors.js';

export interface RunOptions {
  timeoutMs: number;
  /** Written to the child's stdin, which is then closed. */
  input?: Buffer | string;
  /** Exit codes that are not errors (default [0]). */
  okCodes?: readonly number[];
  /** Extra environment on top of process.env. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Aborting kills the command (its process group) and raises OperationAbortedError. */
  signal?: AbortSignal;
}

export interface RunResult {
  rc: number;
  stdout: string;
  /** The same output, undecoded (dd reads binary). */
  stdoutBuf: Buffer;
  stderr: string;
  ms: number;
}

/** Runs argv[0] with argv[1..]. Storage code takes a Runner so tests can record command lines. */
export type Runner = (argv: readonly string[], opts: RunOptions) => Promise<RunResult>;

export { resolveTool } from '../process.js';

export const run: Runner = async (argv, opts) => {
  const log = opts.log ?? silentLogger;
  const r = await runProcess(argv, {
    timeoutMs: opts.timeoutMs, ...(opts.input !== undefined ? { input: opts.input } : {}), ...(opts.env ? { env: opts.env } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (r.aborted) {
    log.info('storage command stopped', { argv: argv.slice(0, 3), ms: r.ms });
    throw new OperationAbortedError(`${argv.slice(0, 2).join(' ')} was stopped after ${Math.round(r.ms)} ms`, { data: { argv: [...argv] } });
  }
  if (r.timedOut) {
    log.warn('storage command timed out', { argv, timeoutMs: opts.timeoutMs });
    throw new StorageCommandTimeoutError(argv, opts.timeoutMs, r.stderr);
  }
  log.debug('storage command', { argv, rc: r.rc, ms: r.ms });
  if (!(opts.okCodes ?? [0]).includes(r.rc)) {
    throw new StorageCommandError(argv, r.rc, r.spawnError ? String(r.spawnError) : r.stderr, r.spawnError ? { cause: r.spawnError } : undefined);
  }
  return { rc: r.rc, stdout: r.stdout.toString('utf8'), stdoutBuf: r.stdout, stderr: r.stderr, ms: r.ms };
};
