// The controller as a real child process (dist/controller/main.js on its own SQLite database, or
// the PostgreSQL its --postgres names, and PKI), which a test can kill -9 and start again on the
// same store and files; and agents enrolled
// with it by token (`hostvisor enroll`), on libvirt's test driver, as child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { enroll } from '../../../agent/cli/enroll.js';
import type { Config } from '../../../agent/config/settings.js';
import { HostvisorClient } from '../../../api/client/client.js';
import { ApiClient, loadCredentials } from '../../../controller/cli/api-client.js';
import { REPO, freePort, scratchDir, spawnAgent, stopChild, testConfig, waitExit } from '../../agent/harness.js';

export const CONTROLLER_JS = join(REPO, 'dist', 'controller', 'main.js');

export class ControllerProcess {
  private child: ChildProcess | undefined;
  /** every log line (pino JSON) of every run, in order */
  readonly logs: string[] = [];
  readonly client: ApiClient;

  /** `args`: more daemon options (e.g. --postgres URL, --settings FILE), given again at every restart. */
  private constructor(readonly dir: string, readonly port: number, private readonly args: string[] = []) {
    this.client = new ApiClient(new URL(this.url), loadCredentials(join(dir, 'admin')));
  }

  get url(): string {
    return `https://localhost:${this.port}`;
  }

  /** Starts a controller on a fresh directory; resolves once it is ready (it made its PKI and admin credentials). */
  static async start(o: { args?: string[] } = {}): Promise<ControllerProcess> {
    const dir = scratchDir('hv-ctl-');
    const port = await freePort();
    const child = await ControllerProcess.spawn(dir, port, [], o.args ?? []);
    const c = new ControllerProcess(dir, port, o.args ?? []);
    c.adopt(child.child, child.lines);
    return c;
  }

  private static async spawn(dir: string, port: number, logs: string[], args: string[]): Promise<{ child: ChildProcess; lines: string[] }> {
    const child = spawn(process.execPath, [CONTROLLER_JS, '--listen', '127.0.0.1', '--port', String(port), '--db', join(dir, 'controller.db'),
      '--pki', join(dir, 'pki'), '--admin-creds', join(dir, 'admin'), '--read-only-creds', join(dir, 'read-only'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = logs;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`controller not ready in 60 s:\n${lines.slice(-20).join('\n')}`)), 60_000);
      let buf = '';
      const take = (d: Buffer): void => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        for (const l of parts) {
          lines.push(l);
          if (process.env.HV_TEST_LOG) process.stderr.write(`[ctl] ${l}\n`);
          if (l.includes('"msg":"controller ready"')) { clearTimeout(timer); resolve(); }
        }
      };
      child.stdout!.on('data', take);
      child.stderr!.on('data', take);
      child.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`controller exited with ${code ?? sig}:\n${lines.slice(-20).join('\n')}`)); });
    }).catch((e: unknown) => { child.kill('SIGKILL'); throw e; });
    return { child, lines };
  }

  private adopt(child: ChildProcess, lines: string[]): void {
    this.child = child;
    if (lines !== this.logs) this.logs.push(...lines.splice(0));
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  /** kill -9, and waits (bounded) until it is gone. */
  async kill9(): Promise<void> {
    const c = this.child;
    if (!c) return;
    c.kill('SIGKILL');
    if (!(await waitExit(c, 10_000))) throw new Error(`controller ${c.pid} still there 10 s after SIGKILL`);
    this.child = undefined;
  }

  /** Starts it again on the same database and PKI. */
  async restart(): Promise<void> {
    const { child } = await ControllerProcess.spawn(this.dir, this.port, this.logs, this.args);
    this.child = child;
  }

  async stop(): Promise<void> {
    await stopChild(this.child, 10_000);
    this.child = undefined;
  }

  /** The controller's own client credentials (what it reaches agents with): a test reads the agents with them. */
  agentCredentials(): { key: Buffer; cert: Buffer; ca: Buffer } {
    const pki = join(this.dir, 'pki');
    return { key: readFileSync(join(pki, 'private', 'client.key')), cert: readFileSync(join(pki, 'client.pem')), ca: readFileSync(join(pki, 'ca.pem')) };
  }
}

export interface EnrolledAgent {
  name: string;
  config: Config;
  child: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
  /** an mTLS client to it with the controller's own credentials */
  connect(): Promise<HostvisorClient>;
}

/** Token (POST /hosts), `hostvisor enroll`, then the agent started on the enrolled pki.dir (test driver). */
export async function enrolledAgent(ctl: ControllerProcess, name: string, overrides: Partial<Config> = {}): Promise<EnrolledAgent> {
  const port = await freePort();
  const tok = await ctl.client.call<{ token: string }>('POST', '/api/v1/hosts', { name, address: 'localhost', port });
  const pkiDir = scratchDir(`hv-enrolled-${name}-`);
  await enroll({ controller: ctl.url, token: tok.token, pkiDir, name });
  const config = await testConfig({ 'pki.dir': pkiDir, 'pki.createDevCa': false, 'rpc.port': port, 'libvirt.uri': 'test:///default', ...overrides });
  const { child, logs } = await spawnAgent(config);
  return {
    name, config, child, logs,
    stop: () => stopChild(child, 5_000),
    connect: () => HostvisorClient.connect({ url: `wss://localhost:${port}/`, ...ctl.agentCredentials(), timeoutMs: 10_000 }),
  };
}
