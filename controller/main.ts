// hostvisor-controller: the controller daemon. Makes its PKI on first start (CA, server and
// client certificates, the admin's and a read-only client's credentials), opens the store,
// and serves the REST API on port 8443.
//
//   hostvisor-controller [--listen ADDR] [--port N] [--db PATH | --postgres URL] [--pki DIR]
//                        [--admin-creds DIR] [--read-only-creds DIR] [--server-name NAME]...
//                        [--settings FILE]
//
// --settings FILE: a JSON object overriding decision settings (controller/decision-settings.ts,
// each checked against its range), e.g. {"pollIntervalMs": 1000}; without it, the defaults.
//
// It links to every enrolled agent with its own client certificate, follows their health, and
// runs jobs with the executor (controller/runtime).
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { Enrollment } from './enrollment/enroll.js';
import { buildServer } from './http/server.js';
import type { ApiContext } from './http/context.js';
import { installParts } from './install-parts.js';
import { ControllerRuntime } from './runtime/controller-runtime.js';
import { resolveDecisionSettings } from './decision-settings.js';
import { loadDecisionSettingsFile } from './settings-file.js';
import { pinoLogFn } from './runtime/pino-log.js';
import { ensureClientCredentials, ensureControllerPki } from './pki/ca.js';
import { DEFAULT_SQLITE_PATH } from './store/connect.js';
import { Store } from './store/store.js';

const SHUTDOWN_TIMEOUT_MS = 10_000;

interface Opts {
  listen: string; port: number; db: string; postgres?: string; pki: string;
  adminCreds: string; readOnlyCreds: string; serverName: string[]; logLevel: string; settings?: string;
}

export async function main(argv: string[]): Promise<void> {
  const o = new Command('hostvisor-controller')
    .option('--listen <addr>', 'address to listen on', '::')
    .option('--port <n>', 'HTTPS port', (v) => Number(v), 8443)
    .option('--db <path>', 'SQLite database', DEFAULT_SQLITE_PATH)
    .option('--postgres <url>', 'PostgreSQL connection string (instead of SQLite)')
    .option('--pki <dir>', 'the controller CA and its certificates', '/etc/pki/hostvisor/controller')
    .option('--admin-creds <dir>', 'where the admin client credentials are written', '/etc/pki/hostvisor/admin')
    .option('--read-only-creds <dir>', 'where read-only client credentials are written', '/etc/pki/hostvisor/read-only')
    .option('--server-name <name>', 'another name or address for the server certificate (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .option('--settings <file>', 'JSON object of decision settings overriding the defaults (names and ranges: controller/decision-settings.ts)')
    .parse(argv, { from: 'user' }).opts<Opts>();

  // Settings first: a bad file stops the start before anything is made.
  const { overrides, settings } = o.settings ? loadDecisionSettingsFile(o.settings) : { overrides: {}, settings: resolveDecisionSettings() };
  const pki = await ensureControllerPki(o.pki, o.serverName);
  await ensureClientCredentials(pki.ca, 'admin', o.adminCreds);
  await ensureClientCredentials(pki.ca, 'read-only', o.readOnlyCreds);
  const store = await Store.open(o.postgres ? { engine: 'postgres', connection: { connectionString: o.postgres } } : { engine: 'sqlite', path: o.db });
  let runtime: ControllerRuntime | undefined;
  const api: ApiContext = { store, enrollment: new Enrollment(store, pki.ca), get jobs() { return runtime!.executor; }, hostsChanged: () => runtime?.kick() };
  const server = await buildServer({
    ctx: api,
    tls: { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: readFileSync(pki.ca.caCert) },
    logger: { level: o.logLevel },
  });
  runtime = new ControllerRuntime({
    store, settings, log: pinoLogFn(server.log),
    credentials: { key: readFileSync(pki.clientKey), cert: readFileSync(pki.clientCert), ca: readFileSync(pki.ca.caCert) },
  });
  installParts(runtime, store, settings, pinoLogFn(server.log), api);
  await runtime.start();
  await server.listen({ host: o.listen, port: o.port });
  server.log.info({ store: store.engine, pki: o.pki, adminCreds: o.adminCreds, settings: overrides }, 'controller ready');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.log.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), SHUTDOWN_TIMEOUT_MS);
    force.unref();
    void server.close().then(() => runtime?.close()).then(() => store.close()).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`hostvisor-controller: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
