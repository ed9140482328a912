// A real controller API server for tests: its own CA and certificates (made with openssl), a
// SQLite store in a temp dir, HTTPS on 127.0.0.1, and a client that speaks as a chosen identity.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ensureCa, ensureClientCredentials, ensureControllerPki, issue, type ControllerPki } from '../../../controller/pki/ca.js';
import { Enrollment } from '../../../controller/enrollment/enroll.js';
import { PendingJobRunner } from '../../../controller/jobs/runner.js';
import { buildServer, type ApiServer } from '../../../controller/http/server.js';
import type { ApiContext } from '../../../controller/http/context.js';
import { Store } from '../../../controller/store/store.js';

export type Identity = 'admin' | 'read-only' | 'none' | 'other-ca' | 'host-unit';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests look into answers freely
  text: string;
}

export interface Creds { cert: Buffer; key: Buffer }

export interface Api {
  dir: string;
  url: string;
  port: number;
  store: Store;
  runner: PendingJobRunner;
  /** what the routes work with: a test may put the runtime's executor (and other parts) in */
  ctx: ApiContext;
  pki: ControllerPki;
  caPem: Buffer;
  creds: Record<Exclude<Identity, 'none'>, Creds>;
  call(method: string, path: string, opts?: { body?: unknown; raw?: string | Buffer; as?: Identity; headers?: Record<string, string> }): Promise<Answer>;
  server: ApiServer;
  close(): Promise<void>;
}

const read = (d: { cert: string; key: string }): Creds => ({ cert: readFileSync(d.cert), key: readFileSync(d.key) });

export interface CallOptions { body?: unknown; raw?: string | Buffer; headers?: Record<string, string> }

/** One HTTPS request to a controller's API as the given client (none: no certificate), its answer parsed. */
export function callApi(to: { host: string; port: number; ca: Buffer; creds?: Creds }, method: string, path: string, o: CallOptions = {}): Promise<Answer> {
  const payload = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  return new Promise((resolve, reject) => {
    const req = request({
      host: to.host, port: to.port, method, path, ca: to.ca, servername: 'localhost', agent: false, timeout: 15_000,
      ...to.creds,
      headers: { ...(payload !== undefined && { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }), ...o.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown;
        try { body = text ? JSON.parse(text) : undefined; } catch { body = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 15 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export async function startApi(opts: { bodyLimit?: number; now?: () => number } = {}): Promise<Api> {
  const dir = mkdtempSync(join(tmpdir(), 'hv-api-'));
  const pki = await ensureControllerPki(join(dir, 'pki'));
  const other = await ensureCa(join(dir, 'other-ca'), 'Some other CA');
  const otherAdmin = { cert: join(dir, 'other-admin.pem'), key: join(dir, 'other-admin.key') };
  await issue(other, { cn: 'intruder', ou: 'admin', usage: ['clientAuth'] }, otherAdmin);
  const hostUnit = { cert: join(dir, 'host.pem'), key: join(dir, 'host.key') };
  await issue(pki.ca, { cn: 'some-host', ou: 'host', usage: ['serverAuth', 'clientAuth'] }, hostUnit);
  const creds = {
    'admin': read(await ensureClientCredentials(pki.ca, 'admin', join(dir, 'admin'))),
    'read-only': read(await ensureClientCredentials(pki.ca, 'read-only', join(dir, 'read-only'))),
    'other-ca': read(otherAdmin),
    'host-unit': read(hostUnit),
  };
  const store = await Store.open({ engine: 'sqlite', path: join(dir, 'controller.db'), ...(opts.now && { now: opts.now }) });
  const runner = new PendingJobRunner();
  const ctx: ApiContext = { store, enrollment: new Enrollment(store, pki.ca, opts.now), jobs: runner };
  const caPem = readFileSync(pki.ca.caCert);
  const server = await buildServer({
    ctx, tls: { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: caPem },
    bodyLimit: opts.bodyLimit, logger: { level: process.env.HV_TEST_LOG ?? 'silent' },
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const port = (server.server.address() as AddressInfo).port;

  const call = (method: string, path: string, o: CallOptions & { as?: Identity } = {}): Promise<Answer> => {
    const who = o.as ?? 'admin';
    return callApi({ host: '127.0.0.1', port, ca: caPem, ...(who !== 'none' && { creds: creds[who] }) }, method, path, o);
  };

  return {
    dir, url: `https://127.0.0.1:${port}`, port, store, runner, ctx, pki, caPem, creds, call, server,
    async close() {
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
