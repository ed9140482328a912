// Runs a helper program (qemu-img, lvm, losetup, ip, a DHCP client...) with a
// timeout: on expiry the whole process group is killed with SIGKILL. The
// caller decides what a failure means (each area raises its own error class).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface ProcessOptions {
  timeoutMs: number;
  /** Written to the child's stdin, which is then closed; otherwise stdin is /dev/null. */
  input?: Buffer | string;
  /** Extra environment on top of process.env (LC_ALL=C is always set: we parse output). */
  env?: NodeJS.ProcessEnv;
  /** stderr kept at most (bytes). */
  stderrCap?: number;
  /** Aborting kills the whole process group (SIGKILL), as a timeout does; the result says `aborted`. */
  signal?: AbortSignal;
}

export interface ProcessResult {
  rc: number;
  stdout: Buffer;
  stderr: string;
  ms: number;
  timedOut: boolean;
  /** Killed because opts.signal was aborted. */
  aborted: boolean;
  spawnError?: Error;
}

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

/** Never rejects: the result says how it ended. */
export function runProcess(argv: readonly string[], opts: ProcessOptions): Promise<ProcessResult> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new TypeError('runProcess: empty argv'));
  const cap = opts.stderrCap ?? 64 * 1024;
  const t0 = performance.now();
  if (opts.signal?.aborted) return Promise.resolve({ rc: 137, stdout: Buffer.alloc(0), stderr: '', ms: 0, timedOut: false, aborted: true });
  return new Promise((resolve) => {
    // detached: its own process group, so a timeout kills whatever it started too.
    const child = spawn(resolveTool(cmd), args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, LC_ALL: 'C', ...opts.env },
    });
    const out: Buffer[] = [];
    let stderr = '';
    let timedOut = false;
    let aborted = false;
    let settled = false;
    child.stdout!.on('data', (d: Buffer) => { out.push(d); });
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < cap) stderr += d.toString('utf8'); });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => { /* the child may exit before reading everything; its rc tells */ });
      child.stdin!.end(opts.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, opts.timeoutMs);
    const onAbort = () => {
      aborted = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (rc: number, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const ms = Math.round((performance.now() - t0) * 10) / 10;
      resolve({ rc, stdout: Buffer.concat(out), stderr, ms, timedOut, aborted, ...(spawnError ? { spawnError } : {}) });
    };
    // 'close' (not 'exit'): all output has been read.
    child.once('close', (code, signal) => finish(code ?? (signal ? 128 : 255)));
    child.once('error', (err) => finish(127, err));
  });
}
