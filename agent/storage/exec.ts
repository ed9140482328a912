// Child processes for storage: qemu-img, lvm, losetup, truncate, dd. Every run
// has a timeout; on expiry the whole process group is killed (SIGKILL) and a
// StorageCommandTimeoutError is raised. stderr is captured for the error and
// the log; a non-zero exit raises StorageCommandError with argv and rc.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { silentLogger, type Logger } from '../log.js';
import { StorageCommandError, StorageCommandTimeoutError } from './errors.js';

export interface RunOptions {
  timeoutMs: number;
  /** Written to the child's stdin, which is then closed. */
  input?: Buffer | string;
  /** Exit codes that are not errors (default [0]). */
  okCodes?: readonly number[];
  /** Extra environment on top of process.env. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
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

const STDERR_CAP = 64 * 1024;
const SBIN = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const resolved = new Map<string, string>();

/** The absolute path of a tool: $PATH first, then the sbin folders (an agent's PATH may lack them). */
export function resolveTool(name: string): string {
  if (name.includes('/')) return name;
  const hit = resolved.get(name);
  if (hit) return hit;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      resolved.set(name, p);
      return p;
    } catch { /* next */ }
  }
  return name;
}

export const run: Runner = (argv, opts) => {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new TypeError('run: empty argv'));
  const log = opts.log ?? silentLogger;
  const t0 = performance.now();
  return new Promise<RunResult>((resolve, reject) => {
    // detached: its own process group, so a timeout kills whatever it started too.
    const child = spawn(resolveTool(cmd), args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, LC_ALL: 'C', ...opts.env },
    });
    const out: Buffer[] = [];
    let stderr = '';
    let timedOut = false;
    let settled = false;
    child.stdout!.on('data', (d: Buffer) => { out.push(d); });
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < STDERR_CAP) stderr += d.toString('utf8'); });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => { /* the child may exit before reading everything; its rc tells */ });
      child.stdin!.end(opts.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, opts.timeoutMs);
    const finish = (rc: number, spawnErr?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ms = Math.round((performance.now() - t0) * 10) / 10;
      const stdoutBuf = Buffer.concat(out);
      if (timedOut) {
        log.warn('storage command timed out', { argv, timeoutMs: opts.timeoutMs });
        reject(new StorageCommandTimeoutError(argv, opts.timeoutMs, stderr));
        return;
      }
      const ok = (opts.okCodes ?? [0]).includes(rc);
      log.debug('storage command', { argv, rc, ms });
      if (!ok) {
        reject(new StorageCommandError(argv, rc, spawnErr ? String(spawnErr) : stderr, spawnErr ? { cause: spawnErr } : undefined));
        return;
      }
      resolve({ rc, stdout: stdoutBuf.toString('utf8'), stdoutBuf, stderr, ms });
    };
    // 'close' (not 'exit'): all output has been read.
    child.once('close', (code, signal) => finish(code ?? (signal ? 128 : 255)));
    child.once('error', (err) => finish(127, err));
  });
};
