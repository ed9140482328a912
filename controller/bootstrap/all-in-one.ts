// hostvisor-allinone (`npm start`): a one-host Hostvisor, ready to use. It runs the controller
// (port 8443) and this host's agent as supervised child processes, and brings the setup to its
// wanted state, each step checked first so a second run changes nothing:
//   1. the controller's CA and the admin's credentials (/etc/pki/hostvisor/admin, which
//      hostvisor-ctl uses with no flags);
//   2. this host enrolled in cluster `default` with a one-time token, as a remote host would be;
//   3. a file storage domain under /var/lib/hostvisor/storage as the pool master;
//   4. the host Up and SPM (the controller's loops do this; we wait and report).
// Each part is also its own systemd unit for real deployments (packaging/systemd).
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { ApiCallError, ApiClient, loadCredentials } from '../cli/api-client.js';
import { ensureClientCredentials, ensureControllerPki, fingerprint } from '../pki/ca.js';
import { SupervisedProcess } from './supervised-process.js';
import { runToEnd } from './run-to-end.js';
import type { Host } from '../model/hosts.js';
import type { Job } from '../model/jobs.js';
import type { StorageDomain } from '../model/storage.js';

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface AllInOneOptions {
  port: number;
  pkiDir: string;
  agentPkiDir: string;
  storage: string;
  db: string;
  agentConfig?: string;
  /** the agent's rpc.port, for the host record the controller dials */
  agentPort: number;
  nodeFlags: string[];
  readyTimeoutS: number;
}

type HostView = Host & { spm: boolean };

/** The agent as its unit runs it: the one-file bundle (scripts/bundle-agent.mjs) when built, else tsc's output. */
function agentScript(): string {
  const bundle = join(DIST, 'agent', 'hostvisord.js');
  return existsSync(bundle) ? bundle : join(DIST, 'agent', 'main.js');
}

class BootstrapError extends Error {
  override readonly name = 'BootstrapError';
  readonly code = 7001;
}

function say(msg: string): void {
  process.stdout.write(`[all-in-one] ${msg}\n`);
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new BootstrapError(`${what}: not within ${Math.round(timeoutMs / 1000)} s${last ? ` (last: ${(last as Error).message})` : ''}`);
}

async function waitJob(api: ApiClient, job: Job, timeoutMs: number): Promise<Job> {
  const done = await until(`job ${job.kind} ${job.id}`, timeoutMs, async () => {
    const j = await api.call<Job>('GET', `/api/v1/jobs/${job.id}`);
    return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
  });
  if (done.state === 'failed') throw new BootstrapError(`job ${job.kind} failed: ${done.error?.code}: ${done.error?.message}`);
  return done;
}

/** Enrols this host unless the agent's certificate is already the one the controller recorded. */
async function ensureEnrolled(api: ApiClient, o: AllInOneOptions, url: string): Promise<void> {
  const name = hostname();
  const hostCert = join(o.agentPkiDir, 'certs', 'hostcert.pem');
  const have = existsSync(hostCert) ? fingerprint(readFileSync(hostCert)) : null;
  const known = (await api.call<HostView[]>('GET', '/api/v1/hosts')).find((h) => h.name === name);
  if (known && known.certFingerprint !== null && known.certFingerprint === have) { say(`host ${name} is enrolled`); return; }
  if (known) {
    throw new BootstrapError(`host ${name} is recorded by the controller with another certificate than ${hostCert}; `
      + `remove it (hostvisor-ctl hosts delete ${name}) to enrol this host again`);
  }
  const t = await api.call<{ token: string }>('POST', '/api/v1/hosts', { name, address: 'localhost', port: o.agentPort });
  const args = [join(DIST, 'agent', 'cli', 'hostvisor.js'), 'enroll', '--controller', url, '--token', t.token, '--name', name,
    ...(o.agentConfig ? ['--config', o.agentConfig] : [])];
  const r = await runToEnd(process.execPath, args, 60_000);
  if (r.code !== 0) throw new BootstrapError(`hostvisor enroll failed (${r.code}): ${r.output.trim()}`);
  say(`host ${name} enrolled in cluster default`);
}

async function ensureStorage(api: ApiClient, o: AllInOneOptions): Promise<void> {
  const domains = await api.call<StorageDomain[]>('GET', '/api/v1/clusters/default/storage-domains');
  if (domains.some((d) => d.master)) { say(`storage domain ${domains.find((d) => d.master)!.name} is the pool master`); return; }
  const job = await api.call<Job>('POST', '/api/v1/clusters/default/storage-domains', { name: 'local', spec: { type: 'file', root: o.storage } });
  say(`creating the file storage domain under ${o.storage} (job ${job.id})`);
  await waitJob(api, job, 300_000);
}

export async function allInOne(o: AllInOneOptions): Promise<void> {
  const url = `https://localhost:${o.port}`;
  const pki = await ensureControllerPki(join(o.pkiDir, 'controller'));
  const admin = await ensureClientCredentials(pki.ca, 'admin', join(o.pkiDir, 'admin'));
  const controller = new SupervisedProcess({ name: 'controller', command: process.execPath,
    args: [join(DIST, 'controller', 'main.js'), '--port', String(o.port), '--db', o.db, '--pki', join(o.pkiDir, 'controller'),
      '--admin-creds', join(o.pkiDir, 'admin'), '--read-only-creds', join(o.pkiDir, 'read-only')] });
  const agent = new SupervisedProcess({ name: 'agent', command: process.execPath,
    args: [...o.nodeFlags, agentScript(), ...(o.agentConfig ? ['--config', o.agentConfig] : [])] });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping the agent (VMs keep running) and the controller`);
    await Promise.all([agent.stop(), controller.stop()]);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  controller.start();
  try {
    const api = new ApiClient(new URL(url), loadCredentials(dirname(admin.cert)));
    await until('the controller answering', 60_000, async () => (await api.call('GET', '/api/v1/health')) ?? undefined);
    await ensureEnrolled(api, o, url);
    agent.start();
    await ensureStorage(api, o);
    const host = await until('this host Up and SPM', o.readyTimeoutS * 1000, async () => {
      const h = (await api.call<HostView[]>('GET', '/api/v1/hosts')).find((x) => x.name === hostname());
      return h && h.status === 'Up' && h.spm ? h : undefined;
    });
    say(`ready: host ${host.name} is ${host.status} and SPM; the controller is ${url}; try: hostvisor-ctl hosts list`);
  } catch (e) {
    // A setup that cannot finish leaves nothing running behind it: the next `npm start` retries.
    stopping = true;
    await Promise.all([agent.stop(), controller.stop()]);
    throw e;
  }
}

export async function main(argv: string[]): Promise<void> {
  const o = new Command('hostvisor-allinone')
    .option('--port <n>', 'controller HTTPS port', (v) => Number(v), 8443)
    .option('--pki-dir <dir>', 'the controller CA and the admin credentials go under it', '/etc/pki/hostvisor')
    .option('--agent-pki-dir <dir>', "the agent's pki.dir", '/etc/pki/hostvisor')
    .option('--storage <dir>', 'the local file storage domain', '/var/lib/hostvisor/storage')
    .option('--db <path>', 'the controller store (SQLite)', '/var/lib/hostvisor/controller.db')
    .option('--agent-config <file>', "the agent's config file")
    .option('--agent-port <n>', "the agent's rpc.port", (v) => Number(v), 54321)
    .option('--node-flag <flag>', 'a node flag for the agent (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--ready-timeout <s>', 'how long to wait for the host to be Up and SPM', (v) => Number(v), 300)
    .parse(argv, { from: 'user' }).opts<{ port: number; pkiDir: string; agentPkiDir: string; storage: string; db: string; agentConfig?: string; agentPort: number; nodeFlag: string[]; readyTimeout: number }>();
  await allInOne({ port: o.port, pkiDir: o.pkiDir, agentPkiDir: o.agentPkiDir, storage: o.storage, db: o.db, agentConfig: o.agentConfig, agentPort: o.agentPort,
    nodeFlags: o.nodeFlag, readyTimeoutS: o.readyTimeout });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    const msg = e instanceof ApiCallError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
    process.stderr.write(`hostvisor-allinone: ${msg}\n`);
    process.exit(1);
  });
}
