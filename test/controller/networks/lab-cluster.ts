// A controller over two multi-host lab hosts, as the daemon is built: the REST server
// (test/controller/http/harness.ts) whose jobs run on a ControllerRuntime (links, health
// monitor, executor) with every part installed (installParts), and in each lab host a real agent on
// the lab's libvirtd, enrolled with a one-time token (the host certificate names its lab
// address, the agent trusts the controller's CA alone). Each host also gets two spare nics for
// cluster networks: veth pairs hvdata0/hvdata0p and hvdata1/hvdata1p inside its own namespace,
// so nothing of the host's management nic (eth0) or of the main namespace's networking is
// touched. The controller can be restarted on the same store (restartController).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { enroll } from '../../../agent/cli/enroll.js';
import { resolveDecisionSettings, type DecisionSettings } from '../../../controller/decision-settings.js';
import type { LogFn } from '../../../controller/agents/log-fn.js';
import type { ControllerCredentials } from '../../../controller/agents/agent-link.js';
import type { InstalledNetworks } from '../../../controller/networks/install.js';
import { installParts } from '../../../controller/install-parts.js';
import type { SchedHost } from '../../../controller/scheduler/sched-types.js';
import type { VmsPart } from '../../../controller/vms/install.js';
import { runtimePlacementView } from '../../../controller/vms/placement-view.js';
import { ControllerRuntime } from '../../../controller/runtime/controller-runtime.js';
import { bounded, scratchDir, testConfig } from '../../agent/harness.js';
import { spawnLabAgent, type LabAgent } from '../../agent/storage/lab-agents.js';
import { assertLabRoute, labDown, labUp, type LabHost } from '../../lab/multihost/lab.js';
import { startApi, type Answer, type Api } from '../http/harness.js';

export const AGENT_PORT = 54321;
/** The spare nics every lab host gets (each one's peer end, <nic>p, stays in the same namespace). */
export const DATA_NIC = 'hvdata0';
export const SECOND_NIC = 'hvdata1';

export interface LabNode {
  name: string;
  hostId: string;
  lab: LabHost;
  agent: LabAgent;
  /** its scratch dir: certificates, the agent's network files */
  dir: string;
}

export interface LabCluster {
  api: Api;
  /** the running controller's (replaced by restartController) */
  runtime: ControllerRuntime;
  networks: InstalledNetworks;
  /** the running controller's VM part */
  vms: VmsPart;
  /** The scheduler's hosts of the cluster as the running controller's placement sees them (the VM part's view). */
  schedHosts(clusterId: string): Promise<SchedHost[]>;
  settings: DecisionSettings;
  nodes: LabNode[];
  /** Every controller log line so far (level, msg, fields). */
  logs: { level: string; msg: string; fields: Record<string, unknown>; at: number }[];
  call(method: string, path: string, body?: unknown): Promise<Answer>;
  /** Polls GET /jobs/{id} until it is succeeded or failed (bounded). */
  jobEnd(jobId: string, timeoutMs?: number): Promise<Answer['body']>;
  /**
   * Stops the controller's runtime (links, monitor, loops, executor: an unfinished job stays as
   * it is in the store) and starts a new one on the same store, which resumes unfinished jobs;
   * the REST server hands new jobs to it.
   */
  restartController(): Promise<void>;
  /** Starts the node's agent again (after kill), with the same config and certificate. */
  respawn(node: LabNode): Promise<void>;
  /**
   * The host removed from the controller (DELETE /hosts/{id}) with its agent stopped, then
   * enrolled again under NAME with a new token and certificate, and its agent started on them:
   * to the controller a host enrolled later. BEFORE runs while the agent is down.
   */
  enrollAgain(node: LabNode, name: string, before?: () => Promise<void>): Promise<void>;
  /** `ip -j link show DEV` inside the node's namespace: the link, or undefined if there is none. */
  link(node: LabNode, dev: string): Promise<{ ifname: string; master?: string; operstate?: string; flags?: string[] } | undefined>;
  close(): Promise<void>;
}

/** Calls FN every stepMs until it gives a value (not undefined), or throws after timeoutMs naming WHAT. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, stepMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) break;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

export interface LabClusterOptions {
  settings?: Record<string, number>;
  /** hook scripts every agent gets: point -> {file name -> script text} */
  hooks?: Record<string, Record<string, string>>;
  /** devices the test makes in the hosts (its bridges), deleted first in case a dead run left them */
  leftovers?: string[];
  echo?: boolean;
}

export async function labCluster(o: LabClusterOptions = {}): Promise<LabCluster> {
  const undo: { what: string; fn: () => Promise<unknown>; ms: number }[] = [];
  const close = async (): Promise<void> => {
    for (const u of undo.splice(0).reverse()) await bounded(u.what, u.fn(), u.ms);
  };
  const logs: LabCluster['logs'] = [];
  const log: LogFn = (level, msg, fields) => {
    logs.push({ level, msg, fields, at: performance.now() });
    if (o.echo) process.stderr.write(`[controller] ${level} ${msg} ${JSON.stringify(fields)}\n`);
  };
  const settings = resolveDecisionSettings({
    pollIntervalMs: 1_000, pollTimeoutMs: 1_000, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 5_000, agentKeepaliveMs: 2_000,
    networkObserveIntervalMs: 2_000, networkRetryIntervalMs: 5_000, networkConnectivityTimeoutMs: 10_000, ...o.settings,
  });
  try {
    undo.push({ what: 'labDown', fn: () => labDown(), ms: 120_000 });
    const labs = await labUp(2);
    for (const lab of labs) {
      await assertLabRoute(lab.address);
      // What a run that died left in a lab host that is still up (labUp keeps running hosts).
      for (const dev of [...(o.leftovers ?? []), DATA_NIC, SECOND_NIC]) await lab.exec(['ip', 'link', 'del', dev], { timeoutMs: 10_000 });
      for (const nic of [DATA_NIC, SECOND_NIC]) {
        undo.push({ what: `${nic} on ${lab.name}`, fn: () => lab.exec(['ip', 'link', 'del', nic], { timeoutMs: 10_000 }), ms: 15_000 });
        await mustExec(lab, ['ip', 'link', 'add', nic, 'type', 'veth', 'peer', 'name', `${nic}p`]);
        await mustExec(lab, ['ip', 'link', 'set', nic, 'up']);
        await mustExec(lab, ['ip', 'link', 'set', `${nic}p`, 'up']);
      }
    }
    const nodes: LabNode[] = [];
    undo.push({ what: 'agents stop', fn: async () => { for (const n of nodes) await n.agent.stop(); }, ms: 60_000 });
    let current: { runtime: ControllerRuntime; networks: InstalledNetworks; vms: VmsPart } | undefined;
    const api = await startApi();
    undo.push({ what: 'api close', fn: () => api.close(), ms: 30_000 });
    const credentials: ControllerCredentials = { key: readFileSync(api.pki.clientKey), cert: readFileSync(api.pki.clientCert), ca: api.caPem };
    // The server outlives a controller restart: it hands jobs to whichever runtime runs.
    api.ctx.jobs = { submit: (j) => current?.runtime.executor.submit(j), resume: async () => undefined, close: async () => undefined };
    api.ctx.hostsChanged = () => current?.runtime.kick();
    const startController = async () => {
      const runtime = new ControllerRuntime({ store: api.store, settings, log, credentials });
      // Every part, as main.ts installs them: the host fitness is the storage and networks parts' together.
      const { networks, vms } = installParts(runtime, api.store, settings, log, api.ctx);
      current = { runtime, networks, vms };
      await runtime.start();
    };
    undo.push({ what: 'runtime close', fn: async () => current?.runtime.close(), ms: 60_000 });
    await startController();

    /** A token from POST /hosts, `hostvisor enroll` with it, and the agent's config on the certificate it got. */
    const enrolled = async (lab: LabHost, name: string, dir: string) => {
      const tok = await api.call('POST', '/api/v1/hosts', { body: { name, address: lab.address, port: AGENT_PORT } });
      if (tok.status !== 201) throw new Error(`POST /hosts for ${name}: ${tok.status} ${tok.text}`);
      const pkiDir = join(dir, `pki-${name}`);
      const { hostId } = await enroll({ controller: api.url, token: tok.body.token, pkiDir, name });
      // The network files in the scratch dir: the lab hosts share the main namespace's /var/lib and /run.
      const config = await testConfig({
        'rpc.host': '0.0.0.0', 'rpc.port': AGENT_PORT, 'pki.dir': pkiDir, 'pki.createDevCa': false,
        'network.confDir': join(dir, 'netconf'), 'network.runDir': join(dir, 'run'), 'network.resolvConf': join(dir, 'resolv.conf'),
      });
      for (const [point, scripts] of Object.entries(o.hooks ?? {})) {
        mkdirSync(join(config['hooks.dir'], point), { recursive: true, mode: 0o755 });
        for (const [file, text] of Object.entries(scripts)) writeFileSync(join(config['hooks.dir'], point, file), text, { mode: 0o755 });
      }
      return { hostId, config };
    };
    for (const lab of labs) {
      const name = `h${lab.index}`;
      const dir = scratchDir(`hv-net-${name}-`);
      mkdirSync(join(dir, 'netconf'));
      writeFileSync(join(dir, 'resolv.conf'), '');
      const { hostId, config } = await enrolled(lab, name, dir);
      nodes.push({ name, hostId, lab, dir, agent: await spawnLabAgent(lab, config, { echo: !!o.echo }) });
    }

    const call = (method: string, path: string, body?: unknown) => api.call(method, path, body === undefined ? {} : { body });
    return {
      api, settings, nodes, logs, call, close,
      get runtime() { return current!.runtime; },
      get networks() { return current!.networks; },
      get vms() { return current!.vms; },
      async schedHosts(clusterId) {
        const { runtime, vms } = current!;
        const view = runtimePlacementView({ monitor: runtime.monitor, latest: runtime.sink.latest, ...vms });
        const hosts = (await api.store.hosts.list({ clusterId })).filter((h) => h.certFingerprint !== null);
        await vms.facts.ensure(hosts.map((h) => h.id));
        return view.schedHosts(hosts);
      },
      async restartController() {
        await current?.runtime.close();
        await startController();
      },
      jobEnd: (jobId, timeoutMs = 120_000) => until(`job ${jobId} ends`, async () => {
        const j = await call('GET', `/api/v1/jobs/${jobId}`);
        return j.body?.state === 'succeeded' || j.body?.state === 'failed' ? j.body : undefined;
      }, timeoutMs),
      async respawn(node) {
        if (!node.agent.exited()) throw new Error(`the agent in ${node.lab.name} still runs`);
        node.agent = await spawnLabAgent(node.lab, node.agent.config, { echo: !!o.echo });
      },
      async enrollAgain(node, name, before) {
        const del = await api.call('DELETE', `/api/v1/hosts/${node.hostId}`);
        if (del.status !== 204) throw new Error(`DELETE /hosts/${node.name}: ${del.status} ${del.text}`);
        await node.agent.stop();
        await before?.();
        const { hostId, config } = await enrolled(node.lab, name, node.dir);
        Object.assign(node, { name, hostId, agent: await spawnLabAgent(node.lab, config, { echo: !!o.echo }) });
      },
      async link(node, dev) {
        const r = await node.lab.exec(['ip', '-j', '-d', 'link', 'show', 'dev', dev], { timeoutMs: 10_000 });
        if (r.code !== 0) return undefined;
        return (JSON.parse(r.stdout) as { ifname: string; master?: string; operstate?: string; flags?: string[] }[])[0];
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}

async function mustExec(lab: LabHost, argv: string[]): Promise<void> {
  const r = await lab.exec(argv, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`${lab.name}: ${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
}
