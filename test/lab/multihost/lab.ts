/**
 * Hostvisor multi-host lab for tests: several virtualization "hosts" on this one machine, each with
 * its own network, mount and UTS namespaces, libvirtd (+ virtlogd) and sanlock daemon, and one
 * shared storage directory (standing in for the SAN). The work is done by lab.sh next to this file
 * (see its header for the layout); this module drives it and runs commands inside the hosts.
 *
 *   const hosts = await labUp(2);
 *   const conn = await Connection.open(hosts[0]!.libvirtUri);
 *   const agent = hosts[1]!.spawn(['node', 'dist/agent/main.js', '--config', cfg]);
 *   ...
 *   await labDown();
 *
 * Network safety: lab addresses (10.250.0.N) exist only inside the lab namespaces and on the main
 * namespace's leg hvlab0 (10.250.0.254/24); the rest of 10.250.0.0/16 is blackholed. Before a
 * test connects from the main namespace to a lab address, it may call assertLabRoute(address).
 * Needs root.
 */
import { execFile, spawn as spawnChild, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LAB_DIR, repoRoot } from '../guest.js';
import { acquireLabLock, labLockOwner, labLockHeld, releaseLabLock, tryAcquireLabLock } from './lab-lock.js';

/** Lab working directory of the multi-host lab. */
export const MULTIHOST_DIR: string = join(LAB_DIR, 'multihost');
/** Shared storage: the same path, the same files, on every lab host and in the main namespace. */
export const SHARED_DIR: string = join(MULTIHOST_DIR, 'shared');
/** The main namespace's own address on the lab network. */
export const LAB_MAIN_ADDRESS = '10.250.0.254';
/** The main namespace's interface on the lab network. */
export const LAB_MAIN_LEG = 'hvlab0';
/** Where the machine's cgroup-v1 hierarchies are mounted (lab hosts' CPU groups: cpuGroups()). */
const CGROUP_ROOT = '/sys/fs/cgroup';
/** Hosts are numbered 1..LAB_MAX_HOSTS. */
export const LAB_MAX_HOSTS = 32;

export interface LabExecOptions {
  /** Variables added to (or, with value undefined, removed from) this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Working directory inside the host; default this process's cwd (the same path exists there). */
  cwd?: string;
  /** Killed with SIGKILL after this long; default 60 000 ms. */
  timeoutMs?: number;
  /** Written to the command's stdin (which is closed either way). */
  input?: string | Buffer;
}

export interface LabExecResult {
  stdout: string;
  stderr: string;
  /** Exit status, or null when the command was ended by a signal (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LabSpawnOptions {
  /** Variables added to (or, with value undefined, removed from) this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Working directory inside the host; default this process's cwd. */
  cwd?: string;
  /** Default 'pipe'. */
  stdio?: StdioOptions;
}

export interface LabHost {
  /** hvlab-hN: the host's hostname and the name of its network namespace. */
  name: string;
  /** N, 1-based. */
  index: number;
  /** 10.250.0.N: its address on the lab network (interface eth0 inside the host). */
  address: string;
  /** Its directory in the main namespace: run/libvirt, run/sanlock, lib/libvirt, etc/libvirt, log, guests, ... */
  dir: string;
  /** Its libvirtd, from the main namespace: qemu+unix:///system?socket=<dir>/run/libvirt/libvirt-sock */
  libvirtUri: string;
  /** <dir>/run/sanlock: the host's /run/sanlock (sanlock.sock, sanlock.pid). */
  sanlockDir: string;
  /** <dir>/log: libvirtd.log, virtlogd.log and qemu/ under libvirt/, sanlock.log, the daemons' *.out. */
  logDir: string;
  /** <dir>/guests: a place for serial logs and other per-host guest files (same path inside the host). */
  guestsDir: string;
  /** The shared storage directory (SHARED_DIR). */
  sharedDir: string;
  /**
   * The host's cgroup-v1 CPU groups (lab.sh), the same paths inside the host; undefined when the
   * machine has no such hierarchy. Its daemons, their QEMU processes and whatever spawn() starts
   * are in them, so cpuacct.usage there is this host's CPU (agent setting host.cpuAccountingCgroup).
   */
  cpuGroups(): { cpuacct?: string; cpu?: string };
  /** Runs a command (no shell) inside the host's net, mount and UTS namespaces and collects its output. */
  exec(cmd: string[], opts?: LabExecOptions): Promise<LabExecResult>;
  /**
   * Starts a command (no shell) inside the host's namespaces and returns it at once: the
   * ChildProcess is the command itself (nsenter execs it), so signals reach it directly. It joins
   * the host's CPU groups as it starts (what it forks from then on is born in them).
   * labDown() ends whatever is still running in the host.
   */
  spawn(cmd: string[], opts?: LabSpawnOptions): ChildProcess;
  /** Pids of the host's daemons, from their pid files (undefined when not running). */
  daemonPids(): Promise<{ libvirtd?: number; virtlogd?: number; sanlock?: number }>;
}

/** Path of lab.sh (the source tree's; shell scripts are not compiled). */
export function labScript(): string {
  return join(repoRoot(), 'test', 'lab', 'multihost', 'lab.sh');
}

function checkIndex(index: number): number {
  if (!Number.isInteger(index) || index < 1 || index > LAB_MAX_HOSTS) {
    throw new Error(`lab host index must be an integer in 1..${LAB_MAX_HOSTS}, not ${index}`);
  }
  return index;
}

function mergeEnv(extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** The nsenter argv that runs `cmd` inside host `index`. */
export function labNsenterArgs(index: number, cmd: string[], cwd: string = process.cwd()): string[] {
  checkIndex(index);
  if (cmd.length === 0) throw new Error('empty command');
  const ns = join(MULTIHOST_DIR, 'ns');
  return [
    `--net=/run/netns/hvlab-h${index}`,
    `--mount=${join(ns, `h${index}.mnt`)}`,
    `--uts=${join(ns, `h${index}.uts`)}`,
    `--wd=${cwd}`,
    '--',
    ...cmd,
  ];
}

async function readPid(file: string, comm: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const actual = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    if (actual !== comm || /^State:\s*[ZX]/m.test(status)) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}

/** The LabHost handle of host `index` (whether or not it is up). */
export function labHost(index: number): LabHost {
  checkIndex(index);
  const dir = join(MULTIHOST_DIR, 'hosts', `h${index}`);
  const sanlockDir = join(dir, 'run', 'sanlock');
  const host: LabHost = {
    name: `hvlab-h${index}`,
    index,
    address: `10.250.0.${index}`,
    dir,
    libvirtUri: `qemu+unix:///system?socket=${join(dir, 'run', 'libvirt', 'libvirt-sock')}`,
    sanlockDir,
    logDir: join(dir, 'log'),
    guestsDir: join(dir, 'guests'),
    sharedDir: SHARED_DIR,
    cpuGroups() {
      const groups: { cpuacct?: string; cpu?: string } = {};
      for (const c of ['cpuacct', 'cpu'] as const) {
        const dir = join(CGROUP_ROOT, c, `hvlab-h${index}`);
        if (existsSync(join(dir, 'cgroup.procs'))) groups[c] = dir;
      }
      return groups;
    },
    exec(cmd, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 60_000;
      return new Promise((resolve, reject) => {
        const child = spawnChild('nsenter', labNsenterArgs(index, cmd, opts.cwd), {
          env: mergeEnv(opts.env),
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        child.stdout!.on('data', (b: Buffer) => out.push(b));
        child.stderr!.on('data', (b: Buffer) => err.push(b));
        child.stdin!.on('error', () => {}); // the command may exit without reading its input
        child.stdin!.end(opts.input ?? '');
        child.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const stdout = Buffer.concat(out).toString('utf8');
          const stderr = Buffer.concat(err).toString('utf8');
          if (timedOut) {
            reject(new Error(`${host.name}: ${cmd.join(' ')} timed out after ${timeoutMs} ms\n${stdout}${stderr}`.trimEnd()));
          } else {
            resolve({ stdout, stderr, code, signal });
          }
        });
      });
    },
    spawn(cmd, opts = {}) {
      const child = spawnChild('nsenter', labNsenterArgs(index, cmd, opts.cwd), {
        env: mergeEnv(opts.env),
        stdio: opts.stdio ?? 'pipe',
      });
      // Synchronously, before the event loop lets the child's setup get far (nsenter execs the
      // command in the same process); a group that is gone (host down) is skipped.
      for (const dir of Object.values(host.cpuGroups())) {
        if (child.pid === undefined) break;
        try { writeFileSync(join(dir, 'cgroup.procs'), String(child.pid)); } catch { /* the host is going down */ }
      }
      return child;
    },
    async daemonPids() {
      const [libvirtd, virtlogd, sanlock] = await Promise.all([
        readPid(join(dir, 'run', 'libvirt', 'libvirtd.pid'), 'libvirtd'),
        readPid(join(dir, 'run', 'libvirt', 'virtlogd.pid'), 'virtlogd'),
        readPid(join(sanlockDir, 'sanlock.pid'), 'sanlock'),
      ]);
      const pids: { libvirtd?: number; virtlogd?: number; sanlock?: number } = {};
      if (libvirtd !== undefined) pids.libvirtd = libvirtd;
      if (virtlogd !== undefined) pids.virtlogd = virtlogd;
      if (sanlock !== undefined) pids.sanlock = sanlock;
      return pids;
    },
  };
  return host;
}

/** Runs lab.sh with a hard timeout; resolves with its output, rejects with it on failure. */
export function runLabScript(args: string[], timeoutMs = 180_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('/bin/bash', [labScript(), ...args], {
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, HOSTVISOR_LAB: LAB_DIR },
    }, (err, stdout, stderr) => {
      if (err) {
        const how = err.killed ? `timed out after ${timeoutMs} ms` : `failed (${err.code ?? err.signal})`;
        reject(new Error(`lab.sh ${args.join(' ')} ${how}\n${stdout}${stderr}`.trimEnd()));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/**
 * Brings up lab hosts 1..n (hosts already running are kept as they are) and resolves once every
 * libvirtd and sanlock daemon answers. Takes a few seconds per batch of hosts (they start in parallel).
 * This process owns the lab from here to the whole-lab labDown() (see lab-lock.ts): another
 * process's labUp waits for it, up to `lockWaitMs` (default $HVLAB_LOCK_WAIT_S or 600 s).
 */
export async function labUp(n: number, opts: { lockWaitMs?: number } = {}): Promise<LabHost[]> {
  checkIndex(n);
  // A new owner keeps a running host only if it is as it was made (lab.sh host_clean): a host
  // the previous owner left parked (labDown with keep) is reused, anything else is made again.
  const fresh = !labLockHeld();
  await acquireLabLock(MULTIHOST_DIR, opts.lockWaitMs ?? Number(process.env['HVLAB_LOCK_WAIT_S'] || 600) * 1000);
  const { stderr } = await runLabScript(['up', ...(fresh ? ['--fresh'] : []), String(n)]);
  // Which hosts were reused or made again, and why (the lane's log says where its time went).
  if (fresh) process.stderr.write(stderr.split('\n').filter((l) => /reused|not as it was made|^lab\.sh: up /.test(l)).map((l) => `${l.slice(0, 600)}\n`).join(''));
  return Array.from({ length: n }, (_, i) => labHost(i + 1));
}

/** $HVLAB_KEEP=1 (npm test's lab lane): the whole-lab labDown parks the lab instead (see labDown). */
function keepByDefault(): boolean {
  return process.env['HVLAB_KEEP'] === '1';
}

/**
 * Without indices: tears the whole lab down (every host, its namespaces and mounts, the lab
 * network; the blackhole route stays, shared with the network fixtures). With host indices: takes just those hosts down, leaving
 * the network and the other hosts up. Idempotent. The whole-lab form ends this process's
 * ownership of the lab; while another live process owns it, labDown does nothing (and says so).
 *
 * By default a host goes down gracefully (its domains destroyed, sanlock leaves its lockspaces,
 * SIGTERM to everything in it, SIGKILL after 2 s). With `kill: true` it is a power cut: SIGKILL to
 * every process in the host at once, and its sanlock leases stay on disk until they expire.
 *
 * With `keep` (default: $HVLAB_KEEP=1, which npm test sets for its lab lane) the whole-lab form by
 * the owner only lets the lab go, its hosts left running: the next owner's labUp reuses each host
 * that is exactly as it was made (no process, domain, lease, link, mount... a test left) and makes
 * the others again, so a file that cleans up after itself saves the next one the lab's set-up.
 */
export async function labDown(indices?: number[], opts: { kill?: boolean; keep?: boolean } = {}): Promise<void> {
  const args = indices === undefined ? [] : indices.map((i) => String(checkIndex(i)));
  if (indices !== undefined && args.length === 0) return;
  if (indices === undefined && !opts.kill && (opts.keep ?? keepByDefault()) && labLockHeld()) {
    await releaseLabLock();
    return;
  }
  // Never tear down a lab another live process owns; a lab nobody owns (leftovers) may go.
  const owned = labLockHeld();
  if (!owned && !(await tryAcquireLabLock(MULTIHOST_DIR))) {
    process.stderr.write(`lab: labDown skipped: the lab is in use by ${labLockOwner(MULTIHOST_DIR)}\n`);
    return;
  }
  try {
    await runLabScript(['down', ...(opts.kill ? ['--kill'] : []), ...args]);
  } finally {
    if (indices === undefined || !owned) await releaseLabLock();
  }
}

/** lab.sh status output (one line per host, then the network). Never rejects. */
export async function labStatus(): Promise<string> {
  try {
    return (await runLabScript(['status'], 60_000)).stdout;
  } catch (e) {
    return String(e);
  }
}

/**
 * Rejects unless the main namespace routes `address` over the lab leg (hvlab0): call this before
 * any connection from the main namespace to a lab address.
 */
export function assertLabRoute(address: string): Promise<void> {
  if (!/^10\.250\.0\.\d{1,3}$/.test(address)) {
    return Promise.reject(new Error(`${address} is not a lab address (10.250.0.0/24)`));
  }
  return new Promise((resolve, reject) => {
    execFile('ip', ['-4', 'route', 'get', address], { timeout: 5_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip route get ${address}: ${stderr || String(err)}`));
      else if (!new RegExp(`\\bdev ${LAB_MAIN_LEG}\\b`).test(stdout)) {
        reject(new Error(`UNSAFE: ${address} does not route via ${LAB_MAIN_LEG}: ${stdout.trim()}`));
      } else resolve();
    });
  });
}
