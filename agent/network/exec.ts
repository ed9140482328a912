// Child processes for host networking (ip, the DHCP client). Every run has a
// timeout; on expiry the process group is killed with SIGKILL and a
// NetworkCommandError (timedOut) is raised. A non-zero exit raises
// NetworkCommandError with argv, rc and stderr.
//
// Code takes a NetRunner, so unit tests can record command lines instead of
// running them (the VLAN and bond commands cannot run on this kernel).
import { runProcess } from '../process.js';
import { silentLogger, type Logger } from '../log.js';
import { NetworkCommandError } from './errors.js';

export interface NetRunOptions {
  timeoutMs: number;
  /** Exit codes that are not errors (default [0]). */
  okCodes?: readonly number[];
  env?: NodeJS.ProcessEnv;
  log?: Logger;
}

export interface NetRunResult {
  rc: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export type NetRunner = (argv: readonly string[], opts: NetRunOptions) => Promise<NetRunResult>;

export { resolveTool } from '../process.js';

export const runCommand: NetRunner = async (argv, opts) => {
  const log = opts.log ?? silentLogger;
  const r = await runProcess(argv, { timeoutMs: opts.timeoutMs, stderrCap: 4 * 1024 * 1024, ...(opts.env ? { env: opts.env } : {}) });
  if (r.timedOut) {
    log.warn('network command timed out', { argv, timeoutMs: opts.timeoutMs });
    throw new NetworkCommandError(argv, -1, r.stderr, { timedOut: true, timeoutMs: opts.timeoutMs });
  }
  log.debug('network command', { argv, rc: r.rc, ms: r.ms });
  if (!(opts.okCodes ?? [0]).includes(r.rc)) {
    throw new NetworkCommandError(argv, r.rc, r.spawnError ? String(r.spawnError) : r.stderr, r.spawnError ? { cause: r.spawnError } : undefined);
  }
  return { rc: r.rc, stdout: r.stdout.toString('utf8'), stderr: r.stderr, ms: r.ms };
};
