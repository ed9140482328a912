// Network test fixture: a throwaway "host" namespace with veth "nics" whose
// other ends sit in a "peer" namespace (the engine/gateway side).
//
// Safety (shared/lab/README.md): before any namespace exists the main
// namespace gets `blackhole 10.250.0.0/16` (kept: another fixture uses the
// same rule); only 10.250.x.x addresses are used, only inside our
// namespaces; every ping and server runs inside a namespace and is bounded.
// Names: hvtest-net-<pid>-<tag>-{h,p}. cleanup() stops what we started (by
// pid), deletes the namespaces and the scratch folder, and never throws.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, silentLogger, type Logger } from '../../../agent/log.js';
import { runCommand, type RunResult } from '../../../agent/network/exec.js';
import { Ip } from '../../../agent/network/ip.js';
import { UdhcpcClient } from '../../../agent/network/dhcp.js';
import { NetConfStore } from '../../../agent/network/persist.js';
import { HostNetworks, type HostNetworksOptions } from '../../../agent/network/index.js';

export const testLog: Logger = process.env['HV_TEST_LOG'] ? createLogger({ level: 'debug' }) : silentLogger;
export const PREFIX = `hvtest-net-${process.pid}`;
const BLACKHOLE = '10.250.0.0/16';

/** Runs argv (no shell), never throws; bounded. */
export async function sh(argv: string[], timeoutMs = 10_000): Promise<RunResult> {
  return runCommand(argv, { timeoutMs, okCodes: Array.from({ length: 256 }, (_, i) => i) })
    .catch((e: Error) => ({ rc: -1, stdout: '', stdoutBuf: Buffer.alloc(0), stderr: e.message, ms: 0 }));
}

async function must(argv: string[]): Promise<string> {
  const r = await runCommand(argv, { timeoutMs: 10_000 });
  return r.stdout;
}

/** `blackhole 10.250.0.0/16` in the main namespace, added if absent and kept. */
export async function ensureBlackhole(): Promise<void> {
  const r = await must(['ip', 'route', 'show', 'type', 'blackhole', BLACKHOLE]);
  // Another test process may add it at the same moment ("File exists"): the check below decides.
  if (!r.trim()) await sh(['ip', 'route', 'add', 'blackhole', BLACKHOLE]);
  const check = await must(['ip', 'route', 'show', 'type', 'blackhole', BLACKHOLE]);
  if (!check.includes('10.250.0.0/16')) throw new Error('blackhole route missing: refusing to create namespaces');
}

/** Namespaces left by earlier runs of these tests whose process is gone. */
async function removeStale(): Promise<void> {
  for (const line of (await sh(['ip', 'netns', 'list'])).stdout.split('\n')) {
    const m = /^(hvtest-net-(\d+)-\S+)/.exec(line);
    if (!m || Number(m[2]) === process.pid) continue;
    if (!existsSync(`/proc/${m[2]}`)) await sh(['ip', 'netns', 'del', m[1]!]);
  }
}

export interface NetLab {
  host: string;
  peer: string;
  ip: Ip;
  dir: string;
  /** nic names in the host namespace; nics[i] is wired to peers[i] in the peer namespace. */
  nics: string[];
  peers: string[];
  inHost(argv: string[], timeoutMs?: number): Promise<RunResult>;
  inPeer(argv: string[], timeoutMs?: number): Promise<RunResult>;
  /** From the peer namespace: true once one of up to `count` (2) echo requests is answered, each given 1 s; bounded. */
  ping(addr: string, count?: number): Promise<boolean>;
  /** A HostNetworks on this lab's namespace, with its store and DHCP files under dir. */
  networks(opts?: Partial<HostNetworksOptions>): HostNetworks;
  /** Starts a process in the peer namespace; cleanup() kills it by pid. */
  spawnInPeer(argv: string[], logFile: string): ChildProcess;
  cleanup(): Promise<void>;
}

export async function netLab(tag: string, nicCount = 1): Promise<NetLab> {
  await ensureBlackhole();
  await removeStale();
  const host = `${PREFIX}-${tag}-h`;
  const peer = `${PREFIX}-${tag}-p`;
  const dir = await mkdtemp(join(tmpdir(), `${PREFIX}-${tag}-`));
  const children: ChildProcess[] = [];
  const nics = Array.from({ length: nicCount }, (_, i) => `hvnic${i}`);
  const peers = Array.from({ length: nicCount }, (_, i) => `peer${i}`);
  const ip = new Ip({ netns: host, timeoutMs: 10_000, log: testLog });
  const lab: NetLab = {
    host, peer, ip, dir, nics, peers,
    inHost: (argv, ms) => sh(['ip', 'netns', 'exec', host, ...argv], ms),
    inPeer: (argv, ms) => sh(['ip', 'netns', 'exec', peer, ...argv], ms),
    async ping(addr, count = 2) {
      if (!addr.startsWith('10.250.')) throw new Error(`refusing to ping ${addr}: lab addresses only`);
      // One request per ping run, so an answered one returns at once: `ping -c 2` waits its 1 s
      // interval for the second request even after the first was answered, a second per call.
      for (let i = 0; i < count; i++) {
        const r = await sh(['ip', 'netns', 'exec', peer, 'busybox', 'ping', '-c', '1', '-W', '1', addr], 4000);
        if (r.rc === 0) return true;
      }
      return false;
    },
    networks(opts = {}) {
      return new HostNetworks({
        ip, log: testLog,
        dhcp: new UdhcpcClient({ runDir: join(dir, 'run'), log: testLog }),
        store: new NetConfStore(join(dir, 'netconf')),
        dhcpTimeoutMs: 20_000,
        ...opts,
      });
    },
    spawnInPeer(argv, logFile) {
      const c = spawn('ip', ['netns', 'exec', peer, ...argv], { stdio: ['ignore', 'ignore', 'ignore'], detached: false, env: { ...process.env, HV_LOG: logFile } });
      children.push(c);
      return c;
    },
    async cleanup() {
      for (const c of children) {
        if (c.exitCode === null && c.pid !== undefined) {
          try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ }
          for (let i = 0; i < 20 && c.exitCode === null && c.signalCode === null; i++) await sleep(50);
        }
      }
      // DHCP clients started by the code under test: stop them by their pid files.
      const dhcp = new UdhcpcClient({ runDir: join(dir, 'run') });
      for (const n of ['hvnic0', 'hvnic1', 'hvnic2', 'hvnet1', 'hvnet2', 'hvdhcp']) await dhcp.stop(ip, n).catch(() => undefined);
      await sh(['ip', 'netns', 'del', host]);
      await sh(['ip', 'netns', 'del', peer]);
      await rm(`/etc/netns/${host}`, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await must(['ip', 'netns', 'add', host]);
    await must(['ip', 'netns', 'add', peer]);
    await must(['ip', '-n', host, 'link', 'set', 'lo', 'up']);
    await must(['ip', '-n', peer, 'link', 'set', 'lo', 'up']);
    for (let i = 0; i < nicCount; i++) {
      await must(['ip', 'link', 'add', nics[i]!, 'netns', host, 'type', 'veth', 'peer', 'name', peers[i]!, 'netns', peer]);
      await must(['ip', '-n', peer, 'link', 'set', peers[i]!, 'up']);
      await must(['ip', '-n', host, 'link', 'set', nics[i]!, 'up']);
    }
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
  return lab;
}

/** Reads a small file, '' if absent. */
export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/** Polls FN every stepMs until it is true or timeoutMs passes. */
export async function waitFor(fn: () => Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return true;
    await sleep(stepMs);
  }
  return fn();
}
