// Child processes for host networking (ip, the DHCP client). Every run has a
// timeout; on expiry the process group is killed with SIGKILL and a
// NetworkCommandError (timedOut) is raised. A non-zero exit raises
// NetworkCommandError with argv, rc and stderr.
//
// Code takes a NetRunner, so unit tests can record command lines instead of
// running them (the VLAN and bond commands cannot run on this kernel).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
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

const CAP = 4 * 1024 * 1024;
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

export const runCommand: NetRunner = (argv, opts) => {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new TypeError('runCommand: empty argv'));
  const log = opts.log ?? silentLogger;
  const t0 = performance.now();
  return new Promise<NetRunResult>((resolve, reject) => {
    // detached: its own process group, so a timeout kills whatever it started too.
    const child = spawn(resolveTool(cmd), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, LC_ALL: 'C', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    child.stdout!.on('data', (d: Buffer) => { if (stdout.length < CAP) stdout += d.toString('utf8'); });
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < CAP) stderr += d.toString('utf8'); });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, opts.timeoutMs);
    const finish = (rc: number, spawnErr?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const ms = Math.round((performance.now() - t0) * 10) / 10;
      if (timedOut) {
        log.warn('network command timed out', { argv, timeoutMs: opts.timeoutMs });
        reject(new NetworkCommandError(argv, -1, stderr, { timedOut: true, timeoutMs: opts.timeoutMs }));
        return;
      }
      log.debug('network command', { argv, rc, ms });
      if (!(opts.okCodes ?? [0]).includes(rc)) {
        reject(new NetworkCommandError(argv, rc, spawnErr ? String(spawnErr) : stderr, spawnErr ? { cause: spawnErr } : undefined));
        return;
      }
      resolve({ rc, stdout, stderr, ms });
    };
    child.once('close', (code, signal) => finish(code ?? (signal ? 128 : 255)));
    child.once('error', (err) => finish(127, err));
  });
};
