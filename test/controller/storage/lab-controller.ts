// Test helper: a controller in this process, built as main.ts builds it (the ControllerRuntime
// with installStorage, the REST server over mTLS) on a SQLite file, listening on the multi-host
// lab's main address, so agents inside lab hosts can enroll with it and it can reach them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureClientCredentials, ensureControllerPki, type ControllerPki } from '../../../controller/pki/ca.js';
import { Enrollment } from '../../../controller/enrollment/enroll.js';
import { buildServer, type ApiServer } from '../../../controller/http/server.js';
import { ControllerRuntime } from '../../../controller/runtime/controller-runtime.js';
import { installStorage } from '../../../controller/storage/install.js';
import { installParts } from '../../../controller/install-parts.js';
import type { ApiContext } from '../../../controller/http/context.js';
import type { StorageDeps } from '../../../controller/storage/storage-deps.js';
import type { DecisionSettings } from '../../../controller/decision-settings.js';
import type { LogFn } from '../../../controller/agents/log-fn.js';
import { Store } from '../../../controller/store/store.js';
import { freePort, scratchDir } from '../../agent/harness.js';
import { callApi, type Answer, type CallOptions } from '../http/harness.js';

export interface InProcessController {
  url: string;
  store: Store;
  runtime: ControllerRuntime;
  storage: StorageDeps;
  /** every part, with allParts */
  parts?: ReturnType<typeof installParts>;
  pki: ControllerPki;
  /** every log line, as JSON text */
  logs: string[];
  call(method: string, path: string, o?: CallOptions): Promise<Answer>;
  close(): Promise<void>;
}

export async function inProcessController(o: { listen: string; settings: DecisionSettings; echo?: boolean;
  /** every part (installParts: storage, networks, VMs, migration) rather than storage alone */
  allParts?: boolean }): Promise<InProcessController> {
  const dir = scratchDir('hv-ctl-lab-');
  const pki = await ensureControllerPki(join(dir, 'pki'), [o.listen]);
  const admin = await ensureClientCredentials(pki.ca, 'admin', join(dir, 'admin'));
  const store = await Store.open({ engine: 'sqlite', path: join(dir, 'controller.db') });
  const logs: string[] = [];
  const log: LogFn = (level, msg, fields) => {
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
    logs.push(line);
    if (o.echo) process.stderr.write(`[ctl] ${line}\n`);
  };
  const caPem = readFileSync(pki.ca.caCert);
  const runtime = new ControllerRuntime({
    store, settings: o.settings, log, credentials: { key: readFileSync(pki.clientKey), cert: readFileSync(pki.clientCert), ca: caPem },
  });
  const ctx: ApiContext = { store, enrollment: new Enrollment(store, pki.ca), jobs: runtime.executor, hostsChanged: () => runtime.kick() };
  const parts = o.allParts ? installParts(runtime, store, o.settings, log, ctx) : undefined;
  const storage = parts ? parts.storage : installStorage(runtime, store, o.settings, log);
  const server: ApiServer = await buildServer({
    ctx,
    tls: { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: caPem },
    logger: { level: process.env['HV_TEST_LOG'] ? 'info' : 'silent' },
  });
  const port = await freePort();
  await server.listen({ host: o.listen, port });
  await runtime.start();
  const creds = { cert: readFileSync(admin.cert), key: readFileSync(admin.key) };
  return {
    url: `https://${o.listen}:${port}`, store, runtime, storage, ...(parts && { parts }), pki, logs,
    call: (method, path, co) => callApi({ host: o.listen, port, ca: caPem, creds }, method, path, co),
    async close() {
      await server.close();
      await runtime.close();
      await store.close();
    },
  };
}
