// Test harness: runs a real hostvisord (in this process, or as a child
// process that tests may kill -9) on a free loopback port with its own
// development PKI, and connects real mTLS clients to it.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { Hostvisord } from '../../agent/daemon.js';
import { applyOverrides, defaults } from '../../agent/config/load.js';
import type { Config } from '../../agent/config/settings.js';
import { ensureDevPki, pkiPaths } from '../../agent/pki/dev-ca.js';
import { HostvisorClient } from '../../api/client/client.js';
import { createLogger, silentLogger, type Logger } from '../../agent/log.js';
import { refuseInLabLane } from '../lanes.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * The node flags and environment hostvisord.service runs the agent with (its
 * ExecStart= words before the script, its Environment= lines), and the script
 * (under dist/, here in this checkout): agents spawned here get the same, so
 * tests and benchmarks run what ships.
 */
export function unitLaunch(): { nodeArgs: string[]; env: Record<string, string>; script: string } {
  const unit = readFileSync(join(REPO, 'packaging', 'systemd', 'hostvisord.service'), 'utf8');
  const exec = /^ExecStart=(\S+) (.*?) ?\S*\/(dist\/agent\/\S+\.js) /m.exec(unit);
  if (!exec) throw new Error('hostvisord.service: no ExecStart= running node on a script under dist/agent/');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(\w+)=(\S*)$/gm)) env[m[1]!] = m[2]!;
  return { nodeArgs: exec[2] ? exec[2].split(/\s+/) : [], env, script: join(REPO, exec[3]!) };
}

/**
 * The agent as it ships (the unit's script: the bundle scripts/bundle-agent.mjs makes of
 * dist/agent/main.js). Made again here when any of its inputs is newer, so that a test
 * run after a bare `tsc` never runs yesterday's code.
 */
export const MAIN_JS = unitLaunch().script;
ensureAgentBundle();

function ensureAgentBundle(): void {
  const meta = MAIN_JS.replace(/\.js$/, '.meta.json');
  let built = 0;
  let inputs: string[] = [];
  try {
    built = statSync(MAIN_JS).mtimeMs;
    inputs = (JSON.parse(readFileSync(meta, 'utf8')) as { inputs: string[] }).inputs;
  } catch { /* not built yet */ }
  const stale = built === 0 || inputs.some((f) => {
    try { return statSync(join(REPO, f)).mtimeMs > built; } catch { return true; }
  });
  if (stale) execFileSync(process.execPath, [join(REPO, 'scripts', 'bundle-agent.mjs')], { stdio: 'inherit', timeout: 120_000 });
}

/** A scratch folder under the temp dir, removed when this test process exits (tests never reuse them). */
const scratchDirs: string[] = [];
export function scratchDir(prefix: string): string {
  if (scratchDirs.length === 0) {
    process.once('exit', () => { for (const d of scratchDirs) rmSync(d, { recursive: true, force: true }); });
  }
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

/**
 * One PKI per test process (making certificates takes ~100 ms). The promise is shared, so two
 * agents configured at once both wait for the keys (sharing only the folder name let the second
 * start before its key was written: ENOENT hostkey.pem, seen with two lab agents started together).
 */
let sharedPki: Promise<string> | undefined;
export function testPki(): Promise<string> {
  sharedPki ??= (async () => {
    const dir = scratchDir('hv-pki-');
    await ensureDevPki(dir, { hostNames: ['localhost'] });
    return dir;
  })();
  return sharedPki;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export type Overrides = Partial<Record<keyof Config, string | number | boolean>>;

export async function testConfig(overrides: Overrides = {}): Promise<Config> {
  return applyOverrides(defaults(), {
    'rpc.host': '127.0.0.1',
    'rpc.port': await freePort(),
    'pki.dir': await testPki(),
    'pki.createDevCa': false,
    'stats.vmIntervalMs': 1000,
    'stats.hostIntervalMs': 1000,
    'virt.domainType': 'qemu',
    'hooks.dir': scratchDir('hv-hooks-'),
    'hooks.runDir': scratchDir('hv-run-'),
    ...overrides,
  }, 'test');
}

export async function connectClient(config: Config, o: { timeoutMs?: number } = {}): Promise<HostvisorClient> {
  const p = pkiPaths(config['pki.dir']);
  return HostvisorClient.connect({
    url: `wss://localhost:${config['rpc.port']}/`,
    key: readFileSync(p.clientKey), cert: readFileSync(p.clientCert), ca: readFileSync(p.caCert),
    timeoutMs: o.timeoutMs ?? 60_000,
  });
}

/** An agent in the main namespace on a real libvirt URI (not test:///) uses the main host's libvirtd. */
function refuseMainLibvirtInLabLane(what: string, uri: string): void {
  if (!uri.startsWith('test:')) refuseInLabLane(`${what} (an agent in the main namespace on ${uri})`);
}

/** An agent in this process. */
export async function startAgent(overrides: Overrides = {}, log: Logger = process.env.HV_TEST_LOG ? createLogger() : silentLogger): Promise<{ agent: Hostvisord; config: Config; stop: () => Promise<void> }> {
  refuseMainLibvirtInLabLane('startAgent', String(overrides['libvirt.uri'] ?? defaults()['libvirt.uri']));
  const config = await testConfig(overrides);
  const agent = new Hostvisord(config, log);
  await agent.start();
  return { agent, config, stop: () => agent.stop() };
}

/** Resolves true once `child` has exited, false after `ms`. */
export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => { child.off('exit', on); resolve(false); }, ms);
    const on = (): void => { clearTimeout(t); resolve(true); };
    child.once('exit', on);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone (bounded). */
export async function stopChild(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitExit(child, graceMs)) return;
  child.kill('SIGKILL');
  await waitExit(child, 5000);
}

/** Teardown step: resolves when `p` settles or after `ms`; a failure or timeout is said on stderr, never thrown. */
export async function bounded(what: string, p: Promise<unknown>, ms = 30_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(() => 'ok', (e: unknown) => `failed: ${String(e)}`),
    new Promise((res) => { timer = setTimeout(() => res('timed out'), ms); }),
  ]);
  clearTimeout(timer);
  if (r !== 'ok') process.stderr.write(`teardown ${what}: ${String(r)}\n`);
}

/**
 * An agent as a child process, so a test can kill -9 it. Resolves once it logged "ready" (or
 * `readyMsg`: "listening" for an agent that cannot finish recovering yet).
 */
export async function spawnAgent(config: Config, env: NodeJS.ProcessEnv = {}, o: { readyMsg?: string } = {}): Promise<{ child: ChildProcess; logs: string[] }> {
  refuseMainLibvirtInLabLane('spawnAgent', config['libvirt.uri']);
  const dir = scratchDir('hv-agent-');
  const file = join(dir, 'agent.toml');
  writeFileSync(file, Object.entries(config).map(([k, v]) => `"${k}" = ${JSON.stringify(v)}`).join('\n') + '\n');
  const launch = unitLaunch();
  const child = spawn(process.execPath, [...launch.nodeArgs, launch.script, '--config', file], { env: { ...process.env, ...launch.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`agent not ready in 60 s:\n${logs.slice(-20).join('\n')}`)), 60_000);
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        logs.push(l);
        if (l.includes(`"msg":"${o.readyMsg ?? 'ready'}"`)) { clearTimeout(t); resolve(); }
      }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`agent exited with ${code}:\n${logs.slice(-20).join('\n')}`)); });
  });
  try {
    await ready;
  } catch (e) {
    child.kill('SIGKILL'); // never leak an agent that did not come up
    throw e;
  }
  return { child, logs };
}

/** Collects VM_status events per VM, and waits for a given status. */
export class StatusWatch {
  readonly events: { vmId: string; body: Record<string, unknown>; at: number }[] = [];
  private waiters: { vmId: string; status: string; resolve: (b: Record<string, unknown>) => void }[] = [];

  constructor(client: HostvisorClient) {
    client.onEvent((method, params) => {
      const m = method.match(/^\|virt\|VM_status\|(.+)$/);
      if (!m) return;
      const vmId = m[1]!;
      const body = params[vmId] as Record<string, unknown>;
      this.events.push({ vmId, body, at: performance.now() });
      this.waiters = this.waiters.filter((w) => {
        if (w.vmId === vmId && body.status === w.status) { w.resolve(body); return false; }
        return true;
      });
    });
  }

  /** Waits for a `status` event for the VM; with `since` (a performance.now() mark) only for a later one. */
  wait(vmId: string, status: string, timeoutMs: number, since = -Infinity): Promise<Record<string, unknown>> {
    const seen = this.events.find((e) => e.vmId === vmId && e.body.status === status && e.at >= since);
    if (seen) return Promise.resolve(seen.body);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${vmId}: no ${status} event within ${timeoutMs} ms; saw ${this.statuses(vmId).join(' -> ')}`)), timeoutMs);
      this.waiters.push({ vmId, status, resolve: (b) => { clearTimeout(t); resolve(b); } });
    });
  }

  statuses(vmId: string): string[] {
    return this.events.filter((e) => e.vmId === vmId).map((e) => String(e.body.status));
  }
}

import { randomUUID } from 'node:crypto';
import { GUEST_DIR, serialPathFor, ensureRunDir } from '../lab/guest.js';
import type { ParamsOf } from '../../api/schema.js';

export type VmSpecParam = NonNullable<ParamsOf<'VM.create'>['spec']>;

/** A VM.create spec for the lab's tiny guest (TCG), its serial console in a file. */
export function tinyGuest(name: string, o: { cmdline?: string[]; disks?: VmSpecParam['disks']; nics?: VmSpecParam['nics']; graphics?: 'vnc'; customProperties?: Record<string, string> } = {}): { vmID: string; spec: VmSpecParam; serial: string } {
  ensureRunDir();
  const serial = serialPathFor(name);
  const spec: VmSpecParam = {
    name, memoryMiB: 128, vcpus: 1, domainType: 'qemu',
    kernel: join(GUEST_DIR, 'vmlinux'), initrd: join(GUEST_DIR, 'initrd.img'),
    cmdline: ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', ...(o.cmdline ?? [])].join(' '),
    serialLog: serial,
  };
  if (o.disks) spec.disks = o.disks;
  if (o.nics) spec.nics = o.nics;
  if (o.graphics) spec.graphics = o.graphics;
  if (o.customProperties) spec.customProperties = o.customProperties;
  return { vmID: randomUUID(), spec, serial };
}
