// A real hostvisord as a child process (libvirt's in-process test:///default
// driver: these tests need events and restarts, not guests) on a loopback
// port, with the mTLS options a client needs to reach it. It can be killed
// with -9, stopped and continued, and started again on the same port.
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { spawnAgent, stopChild, testConfig, waitExit, type Overrides } from '../../agent/harness.js';
import { pkiPaths } from '../../../agent/pki/dev-ca.js';
import type { Config } from '../../../agent/config/settings.js';

export interface TlsTarget { url: string; key: Buffer; cert: Buffer; ca: Buffer }

export interface AgentProcessOptions {
  /** config overrides (e.g. another libvirt.uri) */
  overrides?: Overrides;
  /** the log message that says it is up (default "ready"; "listening" for one still recovering) */
  readyMsg?: string;
}

export class AgentProcess {
  private child: ChildProcess | undefined;
  /** The current process's log lines (JSON), as it writes them. */
  logs: string[] = [];

  private constructor(readonly config: Config, readonly target: TlsTarget, private readonly o: AgentProcessOptions) {}

  static async start(o: AgentProcessOptions = {}): Promise<AgentProcess> {
    const config = await testConfig({ 'libvirt.uri': 'test:///default', ...o.overrides });
    const p = pkiPaths(config['pki.dir']);
    const a = new AgentProcess(config, {
      url: `wss://localhost:${config['rpc.port']}/`,
      key: readFileSync(p.clientKey), cert: readFileSync(p.clientCert), ca: readFileSync(p.caCert),
    }, o);
    await a.restart();
    return a;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  /** Starts the agent (again) on the same port and PKI; resolves once it logged "ready". */
  async restart(): Promise<void> {
    const { child, logs } = await spawnAgent(this.config, {}, this.o.readyMsg !== undefined ? { readyMsg: this.o.readyMsg } : {});
    this.child = child;
    this.logs = logs;
  }

  /** kill -9, and waits (bounded) until it is gone. */
  async kill9(): Promise<void> {
    const c = this.child;
    if (!c) return;
    // SIGKILL alone: a stopped process dies of it too. A SIGCONT first would let
    // a stopped agent run for a moment and answer calls a test holds in flight.
    c.kill('SIGKILL');
    if (!(await waitExit(c, 10_000))) throw new Error(`agent ${c.pid} still there 10 s after SIGKILL`);
    this.child = undefined;
  }

  /** SIGSTOP resolves once the kernel shows the process stopped (state T), so nothing sent afterwards is answered. */
  async signal(sig: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    const c = this.child;
    if (!c) return;
    c.kill(sig);
    if (sig !== 'SIGSTOP') return;
    for (let i = 0; i < 200; i++) {
      if (/^\d+ \(.*\) T /.test(readFileSync(`/proc/${c.pid}/stat`, 'utf8'))) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`agent ${c.pid} not stopped 2 s after SIGSTOP`);
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGCONT');
    await stopChild(this.child, 5_000);
    this.child = undefined;
  }
}
