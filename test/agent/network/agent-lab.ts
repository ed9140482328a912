// A real hostvisord inside a throwaway "host" network namespace, and an
// engine stand-in (peer-client.ts) inside the "peer" namespace, wired by the
// veth "nics" of netlab.ts. Everything the client says crosses those nics,
// so a setupNetworks that moves the host's address really cuts it off.
//
// The agent runs with `ip netns exec <host> node dist/agent/main.js`, against
// libvirt's in-process test:///default driver: these tests need no VMs, and
// the main libvirtd (with other tests' VMs) must not be recovered by a second
// agent. Its network settings point into the lab's folder (store, DHCP files,
// resolv.conf), never at the machine's own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { UdhcpcClient } from '../../../agent/network/dhcp.js';
import { Ip } from '../../../agent/network/ip.js';
import type { Config } from '../../../agent/config/settings.js';
import { MAIN_JS, REPO, stopChild, testConfig, testPki, type Overrides } from '../harness.js';
import { netLab, type NetLab } from './netlab.js';

export const AGENT_PORT = 54321;
const PEER_CLIENT_JS = join(REPO, 'dist', 'test', 'agent', 'network', 'peer-client.js');

/** An error answer relayed by the peer client (code is the agent's, or 1007 for a client-side timeout). */
export class PeerCallError extends Error {
  override readonly name = 'PeerCallError';
  constructor(message: string, readonly code: number | undefined, readonly data: Record<string, unknown> | undefined) { super(message); }
}

export interface PeerEvent { conn: string; event: string; params: Record<string, unknown>; at: number }

/** The engine stand-in in the peer namespace; bounded waits everywhere. */
export class PeerClient {
  readonly events: PeerEvent[] = [];
  private next = 1;
  private readonly pending = new Map<number, (m: Record<string, unknown>) => void>();

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let m: Record<string, unknown>;
      try { m = JSON.parse(line) as Record<string, unknown>; } catch { return; }
      if (typeof m['event'] === 'string') {
        this.events.push({ conn: String(m['conn']), event: m['event'], params: m['params'] as Record<string, unknown>, at: performance.now() });
        return;
      }
      const done = this.pending.get(Number(m['id']));
      this.pending.delete(Number(m['id']));
      done?.(m);
    });
  }

  private send(cmd: Record<string, unknown>, waitMs: number): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new PeerCallError(`peer client: no answer to ${String(cmd['op'])} in ${waitMs} ms`, undefined, undefined)); }, waitMs);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        const e = m['error'] as { code?: number; message: string; data?: Record<string, unknown> } | undefined;
        if (e) reject(new PeerCallError(e.message, e.code, e.data));
        else resolve(m['result']);
      });
      this.child.stdin!.write(JSON.stringify({ id, ...cmd }) + '\n');
    });
  }

  /** Opens connection `conn` to the agent at ADDR (a lab address); rejects if it cannot within connectTimeoutMs. */
  connect(conn: string, addr: string, o: { connectTimeoutMs?: number; timeoutMs?: number } = {}): Promise<void> {
    if (!addr.startsWith('10.250.')) throw new Error(`refusing to connect to ${addr}: lab addresses only`);
    const connectTimeoutMs = o.connectTimeoutMs ?? 3000;
    return this.send({ op: 'connect', conn, url: `wss://${addr}:${AGENT_PORT}/`, connectTimeoutMs, timeoutMs: o.timeoutMs ?? 30_000 }, connectTimeoutMs + 5000) as Promise<void>;
  }

  /** One call on connection `conn`; the client gives up after timeoutMs (answering 1007). */
  call<T = Record<string, unknown>>(conn: string, method: string, params: unknown = {}, timeoutMs = 30_000): Promise<T> {
    return this.send({ op: 'call', conn, method, params, timeoutMs }, timeoutMs + 5000) as Promise<T>;
  }

  close(conn: string): Promise<void> {
    return this.send({ op: 'close', conn }, 5000) as Promise<void>;
  }

  /** Tries connect + Host.ping2 once on a fresh connection `probe`: true if the agent answered. */
  async reaches(addr: string, timeoutMs = 1500): Promise<boolean> {
    try {
      await this.connect('probe', addr, { connectTimeoutMs: timeoutMs, timeoutMs });
      await this.call('probe', 'Host.ping2', {}, timeoutMs);
      return true;
    } catch {
      return false;
    } finally {
      await this.close('probe').catch(() => undefined);
    }
  }
}

export interface AgentNetLab {
  lab: NetLab;
  config: Config;
  hooksDir: string;
  agent: ChildProcess;
  /** Every stderr line of the agent (JSON logs). */
  logs: string[];
  client: PeerClient;
  /** Parsed agent log records with this msg. */
  logged(msg: string): Record<string, unknown>[];
  cleanup(): Promise<void>;
}

export interface AgentNetLabOptions {
  nics?: number;
  /** Runs in the host namespace before the agent starts (addresses on nics, peer servers...). */
  prepare?: (lab: NetLab) => Promise<void>;
  /** Hook scripts to install before the agent starts: point → {file name → script text}. */
  hooks?: Record<string, Record<string, string>>;
  overrides?: Overrides;
}


export async function agentNetLab(tag: string, o: AgentNetLabOptions = {}): Promise<AgentNetLab> {
  const lab = await netLab(tag, o.nics ?? 1);
  let agent: ChildProcess | undefined;
  let peer: ChildProcess | undefined;
  const cleanup = async (): Promise<void> => {
    peer?.stdin?.end();
    await stopChild(peer, 3000);
    await stopChild(agent, 20_000);
    // DHCP clients the agent started (they outlive it by design, to renew): its files are named host.<dev>.*.
    const dhcp = new UdhcpcClient({ runDir: join(lab.dir, 'run') });
    const pidFiles = await readdir(join(lab.dir, 'run')).catch(() => [] as string[]);
    for (const f of pidFiles) {
      const m = /^host\.(.+)\.pid$/.exec(f);
      if (m) await dhcp.stop(new Ip(), m[1]!).catch(() => undefined);
    }
    await lab.cleanup();
  };
  try {
    await o.prepare?.(lab);
    // Inside the lab's folder (root-owned, 0700), which the hook security check accepts and cleanup removes.
    const hooksDir = join(lab.dir, 'hooks');
    mkdirSync(hooksDir, { mode: 0o755 });
    for (const [point, scripts] of Object.entries(o.hooks ?? {})) {
      mkdirSync(join(hooksDir, point), { mode: 0o755 });
      for (const [name, text] of Object.entries(scripts)) writeFileSync(join(hooksDir, point, name), text, { mode: 0o755 });
    }
    const config = await testConfig({
      'rpc.host': '0.0.0.0', 'rpc.port': AGENT_PORT, 'libvirt.uri': 'test:///default', 'hooks.dir': hooksDir,
      'network.confDir': join(lab.dir, 'netconf'), 'network.runDir': join(lab.dir, 'run'), 'network.resolvConf': join(lab.dir, 'resolv.conf'),
      'network.dhcpTimeoutMs': 20_000, 'log.level': 'debug',
      ...o.overrides,
    });
    const file = join(lab.dir, 'agent.toml');
    writeFileSync(file, Object.entries(config).map(([k, v]) => `"${k}" = ${JSON.stringify(v)}`).join('\n') + '\n');
    agent = spawn('ip', ['netns', 'exec', lab.host, process.execPath, MAIN_JS, '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    const logs: string[] = [];
    const child = agent;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`agent in ${lab.host} not ready in 60 s:\n${logs.slice(-20).join('\n')}`)), 60_000);
      createInterface({ input: child.stderr! }).on('line', (l) => {
        logs.push(l);
        if (process.env['HV_TEST_LOG']) process.stderr.write(`[agent] ${l}\n`);
        if (l.includes('"msg":"ready"')) { clearTimeout(t); resolve(); }
      });
      child.once('exit', (code, sig) => { clearTimeout(t); reject(new Error(`agent exited with ${code ?? sig}:\n${logs.slice(-20).join('\n')}`)); });
    });
    peer = spawn('ip', ['netns', 'exec', lab.peer, process.execPath, PEER_CLIENT_JS], {
      stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, HV_PKI_DIR: await testPki() },
    });
    return {
      lab, config, hooksDir, agent, logs, client: new PeerClient(peer),
      logged: (msg) => logs.filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`)).map((l) => JSON.parse(l) as Record<string, unknown>),
      cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/**
 * Host.setupNetworks on connection CONN while the engine keeps confirming
 * with CONFIRM_WITH every 250 ms on the same connection (as an engine polls
 * after sending it), until the call answers.
 */
export async function setupConfirmed(client: PeerClient, conn: string, params: unknown, confirmWith = 'Host.confirmConnectivity'): Promise<{ result: Record<string, any>; confirms: number }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  let done = false;
  const call = client.call<Record<string, any>>(conn, 'Host.setupNetworks', params, 60_000).finally(() => { done = true; }); // eslint-disable-line @typescript-eslint/no-explicit-any
  call.catch(() => undefined);
  let confirms = 0;
  for (let i = 0; !done && i < 240; i++) {
    await new Promise((r) => setTimeout(r, 250));
    if (done) break;
    await client.call(conn, confirmWith, {}, 5000).then(() => { confirms++; }, () => undefined);
  }
  return { result: await call, confirms };
}

/** A hook script (python, our hooking module) that appends the JSON it gets to <lab dir>/<point>.jsonl. */
export const recordHook = (point: string): string => `#!/usr/bin/python3
import json, os, hooking
lab = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(lab, '${point}.jsonl'), 'a') as f:
    f.write(json.dumps(hooking.read_json()) + '\\n')
`;

/** What recordHook(point) saw, oldest first. */
export function hookRecords(env: AgentNetLab, point: string): { request: Record<string, any> }[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  let text = '';
  try { text = readFileSync(join(env.lab.dir, `${point}.jsonl`), 'utf8'); } catch { /* none yet */ }
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { request: Record<string, any> }); // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Calls FN every stepMs until it resolves true or timeoutMs passes; returns the ms it took, or undefined. */
export async function within(fn: () => Promise<boolean>, timeoutMs: number, stepMs = 200): Promise<number | undefined> {
  const t0 = performance.now();
  for (let i = 0; performance.now() - t0 < timeoutMs && i < 10_000; i++) {
    if (await fn()) return Math.round(performance.now() - t0);
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return undefined;
}
