// Test helper: a hostvisord running inside a multi-host lab host (its net,
// mount and UTS namespaces), and an mTLS client to it from the main namespace.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Config } from '../../../agent/config/settings.js';
import { pkiPaths } from '../../../agent/pki/dev-ca.js';
import { HostvisorClient } from '../../../api/client/client.js';
import { MAIN_JS, scratchDir, stopChild, waitExit } from '../harness.js';
import { assertLabRoute, type LabHost } from '../../lab/multihost/lab.js';

export interface LabAgent {
  host: LabHost;
  config: Config;
  child: ChildProcess;
  /** Every stderr line (JSON log lines) so far. */
  logs: string[];
  exited(): boolean;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once the process is gone (bounded). */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
}

/** Starts an agent inside `host`; resolves once it logged "ready" (60 s at most). */
export async function spawnLabAgent(host: LabHost, config: Config, o: { readyTimeoutMs?: number; echo?: boolean } = {}): Promise<LabAgent> {
  const dir = scratchDir(`hv-agent-h${host.index}-`);
  const file = join(dir, 'agent.toml');
  writeFileSync(file, Object.entries(config).map(([k, v]) => `"${k}" = ${JSON.stringify(v)}`).join('\n') + '\n');
  const child = host.spawn([process.execPath, MAIN_JS, '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`agent on ${host.name} not ready in time:\n${logs.slice(-20).join('\n')}`)), o.readyTimeoutMs ?? 60_000);
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        logs.push(l);
        if (o.echo) process.stderr.write(`[h${host.index}] ${l}\n`);
        if (l.includes('"msg":"ready"')) { clearTimeout(t); resolve(); }
      }
    });
    child.once('exit', (code, sig) => { clearTimeout(t); reject(new Error(`agent on ${host.name} exited with ${code ?? sig}:\n${logs.slice(-20).join('\n')}`)); });
    child.once('error', (e) => { clearTimeout(t); reject(e); });
  });
  const agent: LabAgent = {
    host, config, child, logs,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop(graceMs = 10_000) {
      await stopChild(child, graceMs);
    },
    async kill() {
      if (agent.exited()) return;
      child.kill('SIGKILL');
      await waitExit(child, 5_000);
    },
  };
  try {
    await ready;
  } catch (e) {
    child.kill('SIGKILL'); // never leak an agent that did not come up
    throw e;
  }
  return agent;
}

/** An mTLS client from the main namespace to an agent in a lab host (the test cert names localhost). */
export async function connectLabClient(agent: LabAgent, o: { timeoutMs?: number } = {}): Promise<HostvisorClient> {
  await assertLabRoute(agent.host.address);
  const p = pkiPaths(agent.config['pki.dir']);
  return HostvisorClient.connect({
    url: `wss://${agent.host.address}:${agent.config['rpc.port']}/`,
    servername: 'localhost',
    key: readFileSync(p.clientKey), cert: readFileSync(p.clientCert), ca: readFileSync(p.caCert),
    timeoutMs: o.timeoutMs ?? 60_000,
  });
}
