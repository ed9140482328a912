// Test helper: a sanlock daemon in this (the main) mount namespace.
//
// Reuses a daemon that already answers on /run/sanlock/sanlock.sock (and then
// never stops it). Otherwise starts one with the lab's settings: no watchdog,
// no RR scheduling, no mlockall (`-w 0 -h 0 -l 0`), as root, under an
// LD_PRELOAD shim that reports a refused setrlimit as success (the daemon
// raises RLIMIT_MEMLOCK/RTPRIO and root lacks CAP_SYS_RESOURCE here; see the
// lab README). Lab settings only, never production.
//
// stop() only stops a daemon this helper started, and only while no lockspace
// is joined in it: tests run concurrently (several developers, one machine)
// and another test may have found this daemon running and be using it. A
// daemon left running is reused by the next run. Stopping is SIGTERM (the
// daemon exits once it has no lockspaces), then SIGKILL after a few seconds.
// If the test process dies without stop(), the daemon stays, likewise.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Sanlock } from '../../../agent/storage/sanlock.js';
import { refuseInLabLane } from '../../lanes.js';

const execFileP = promisify(execFile);

/** The lab's setrlimit shim (/work/shared/lab/setrlimit-shim.c), compiled per run. */
const SHIM_C = `#define _GNU_SOURCE
#include <sys/resource.h>
#include <dlfcn.h>
int setrlimit(__rlimit_resource_t r, const struct rlimit *l) {
  int (*real)(__rlimit_resource_t, const struct rlimit *) = dlsym(RTLD_NEXT, "setrlimit");
  (void)real(r, l);
  return 0;
}
`;

export interface SanlockDaemon {
  /** false: a daemon was already running and is left alone. */
  readonly startedByUs: boolean;
  readonly pid: number | undefined;
  /** The started daemon's stderr log (it runs with -D). */
  readonly logPath: string | undefined;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/** Why sanlock cannot run here, or undefined when it can be tried. */
export async function sanlockUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root';
  try {
    await execFileP('sanlock', ['version'], { timeout: 10_000 });
  } catch {
    return 'the sanlock daemon package is not installed';
  }
  try {
    await execFileP('gcc', ['--version'], { timeout: 10_000 });
  } catch {
    return 'gcc is needed to build the setrlimit shim';
  }
  return undefined;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

export async function ensureSanlockDaemon(opts: { startTimeoutMs?: number } = {}): Promise<SanlockDaemon> {
  refuseInLabLane('the main sanlock daemon (ensureSanlockDaemon)');
  const sanlock = new Sanlock();
  if (await sanlock.daemonRunning()) {
    return { startedByUs: false, pid: undefined, logPath: undefined, logTail: () => '', stop: async () => {} };
  }

  // /var/tmp, not /tmp: sanlock opens lease files with O_DIRECT, which tmpfs refuses.
  const dir = mkdtempSync('/var/tmp/hostvisor-sanlockd-');
  const shimC = join(dir, 'setrlimit-shim.c');
  const shim = join(dir, 'setrlimit-shim.so');
  writeFileSync(shimC, SHIM_C);
  await execFileP('gcc', ['-shared', '-fPIC', '-o', shim, shimC, '-ldl'], { timeout: 60_000 });

  const logPath = join(dir, 'sanlock.log');
  const logFd = openSync(logPath, 'a');
  const child = spawn('sanlock', ['daemon', '-D', '-w', '0', '-h', '0', '-l', '0', '-U', 'root', '-G', 'root'], {
    env: { ...process.env, LD_PRELOAD: shim },
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  child.unref();
  let spawnError: Error | undefined;
  child.once('error', (e) => { spawnError = e; });

  const logTail = (lines = 30): string => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };

  const up = await waitFor(async () => {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) return true;
    return sanlock.daemonRunning();
  }, opts.startTimeoutMs ?? 15_000);
  if (!up || spawnError || child.exitCode !== null || child.signalCode !== null) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
    const tail = logTail();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`sanlock daemon did not start (${spawnError?.message ?? `exit ${child.exitCode ?? child.signalCode}`}):\n${tail}`);
  }

  let stopped = false;
  return {
    startedByUs: true,
    pid: child.pid,
    logPath,
    logTail,
    async stop() {
      if (stopped) return;
      stopped = true;
      const inUse = await sanlock.getLockspaces().then((l) => l.length, () => 0);
      if (inUse > 0) {
        process.stderr.write(`sanlock daemon ${child.pid} left running: ${inUse} lockspace(s) still joined (another test may be using it)\n`);
        return;
      }
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        // SIGTERM does nothing while lockspaces are joined: one joined since the check above is someone's, so no SIGKILL then.
        const gone = await Promise.race([exited(child).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))]);
        if (!gone) {
          if (await sanlock.getLockspaces().then((l) => l.length > 0, () => false)) {
            process.stderr.write(`sanlock daemon ${child.pid} left running: a lockspace was joined while it was stopping\n`);
            return;
          }
          child.kill('SIGKILL');
          await exited(child);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
