// A controller in the test process, built as main.ts builds it: the REST API (its own CA, a
// SQLite store), the runtime (links to real agents, the health monitor, the job executor) and
// the VM part installed with installVms. Log lines are kept for the test to read, and printed
// with HV_TEST_LOG.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControllerCredentials } from '../../../controller/agents/agent-link.js';
import type { LogFn } from '../../../controller/agents/log-fn.js';
import type { DecisionSettings } from '../../../controller/decision-settings.js';
import type { Job } from '../../../controller/model/jobs.js';
import type { Host } from '../../../controller/model/hosts.js';
import { ControllerRuntime } from '../../../controller/runtime/controller-runtime.js';
import { installVms, type VmsPart } from '../../../controller/vms/install.js';
import { startApi, type Answer, type Api } from '../http/harness.js';

export interface LogLine { level: string; msg: string; fields: Record<string, unknown> }

export interface TestController {
  api: Api;
  runtime: ControllerRuntime;
  vms: VmsPart;
  logs: LogLine[];
  /** GET until `pred` holds (polling every 100 ms), bounded; returns the last answer */
  until(path: string, pred: (a: Answer) => boolean, ms: number, what: string): Promise<Answer>;
  /** waits for the job at this Location to end; returns it */
  jobEnd(location: string, ms?: number): Promise<Job>;
  close(): Promise<void>;
}

/** Hosts named a, b, ... on local test-driver agents (by their ports), in the default cluster; resolves once all are Up. */
export async function addLocalHosts(c: TestController, ports: readonly number[]): Promise<Host[]> {
  const cluster = await c.api.store.clusters.get('default');
  const hosts: Host[] = [];
  for (const [i, port] of ports.entries()) {
    hosts.push(await c.api.store.hosts.create({ name: String.fromCharCode(97 + i), address: 'localhost', port, clusterId: cluster.id, certFingerprint: 'test' }));
  }
  c.runtime.kick();
  await c.until('/api/v1/hosts', (a) => a.body.length === ports.length && a.body.every((x: { status: string }) => x.status === 'Up'), 15_000, 'every host Up');
  return hosts;
}

/** The controller's own client credentials (what it reaches enrolled agents with). */
export function controllerCredentials(api: Api): ControllerCredentials {
  return { key: readFileSync(api.pki.clientKey), cert: readFileSync(api.pki.clientCert), ca: api.caPem };
}

/** `api`: an API already serving (hosts enrolled through it before the runtime starts); default a new one. */
export async function startController(o: { settings: DecisionSettings; credentials: ControllerCredentials | 'own'; api?: Api;
  /** another part installed on the same runtime (e.g. installMigration) */
  install?: (runtime: ControllerRuntime, vms: VmsPart, log: LogFn) => void }): Promise<TestController> {
  const api = o.api ?? await startApi();
  const credentials = o.credentials === 'own' ? controllerCredentials(api) : o.credentials;
  const logs: LogLine[] = [];
  const log: LogFn = (level, msg, fields) => {
    logs.push({ level, msg, fields });
    if (process.env.HV_TEST_LOG) process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
  };
  const runtime = new ControllerRuntime({ store: api.store, credentials, settings: o.settings, log, hostSyncIntervalMs: 500 });
  const vms = installVms(runtime, api.store, o.settings, log, api.ctx);
  o.install?.(runtime, vms, log);
  api.ctx.jobs = runtime.executor;
  api.ctx.hostsChanged = () => runtime.kick();
  await runtime.start();

  async function until(path: string, pred: (a: Answer) => boolean, ms: number, what: string): Promise<Answer> {
    const end = performance.now() + ms;
    for (;;) {
      const a = await api.call('GET', path);
      if (pred(a)) return a;
      if (performance.now() > end) throw new Error(`${what}: not within ${ms} ms; last answer ${a.status} ${a.text.slice(0, 600)}`);
      await sleep(100);
    }
  }
  return {
    api, runtime, vms, logs, until,
    async jobEnd(location, ms = 30_000) {
      const a = await until(location, (x) => x.body?.state === 'succeeded' || x.body?.state === 'failed', ms, `job ${location}`);
      return a.body as Job;
    },
    async close() {
      await runtime.close();
      if (!o.api) await api.close(); // one passed in is its owner's to close
    },
  };
}
