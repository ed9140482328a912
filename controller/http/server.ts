// The REST API server: fastify over HTTPS that asks every client for a certificate. Routes are
// declared with TypeBox schemas, which validate requests, serialize answers and make the OpenAPI
// document (GET /api/v1/openapi.json).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { authenticate } from './auth.js';
import { API_PREFIX, type ApiContext } from './context.js';
import { ApiError, InvalidRequestError, sendError } from './errors.js';
import { validatorCompiler } from './validation.js';
import { clusterRoutes } from './routes/clusters.js';
import { consoleRoutes } from './routes/console.js';
import { enrollRoutes } from './routes/enroll.js';
import { eventRoutes } from './routes/events.js';
import { hostRoutes } from './routes/hosts.js';
import { jobRoutes } from './routes/jobs.js';
import { metaRoutes, VERSION } from './routes/meta.js';
import { networkRoutes } from './routes/networks.js';
import { storageRoutes } from './routes/storage.js';
import { diskCopyRoutes } from './routes/disk-copy.js';
import { vmRoutes } from './routes/vms.js';
import { templateRoutes } from './routes/templates.js';
import { migrationRoutes } from './routes/migration.js';
import { hibernationRoutes } from './routes/hibernation.js';
import { snapshotRoutes } from './routes/snapshots.js';

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
const CORRELATION_HEADER = 'correlation-id';
const CORRELATION_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ServerOptions {
  ctx: ApiContext;
  tls: { key: Buffer | string; cert: Buffer | string; ca: Buffer | string };
  bodyLimit?: number;
  logger?: FastifyServerOptions['logger'];
  /** A request (headers and body) must arrive within this. */
  requestTimeoutMs?: number;
}

export type ApiServer = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>; // eslint-disable-line @typescript-eslint/no-explicit-any -- https server generics

const API_DESCRIPTION = `The Hostvisor controller's REST API.

Every call except GET ${API_PREFIX}/health and the enrollment calls needs a TLS client certificate signed by the controller's CA
(mutual TLS; without one: 401). The certificate's OU is the role: \`admin\` may do everything, \`read-only\` only GET (else 403).

Errors have one shape: \`{code, message, details}\`; a 400 names the field in \`details.field\`.
Actions answer 202 Accepted with \`Location: ${API_PREFIX}/jobs/{id}\`. A \`Correlation-Id\` request header (or a generated one)
is echoed in the answer and carried into the job, its events and the log.`;

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route, as registered (the OpenAPI test checks each is documented). */
    apiRoutes: Array<{ method: string; url: string }>;
  }
}

export async function buildServer(o: ServerOptions): Promise<ApiServer> {
  return build(o, { key: o.tls.key, cert: o.tls.cert, ca: o.tls.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
}

/** The OpenAPI document, from the route schemas alone: no server listens, no request is served. */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const app = await build({ ctx: {} as ApiContext, logger: false }, null);
  try {
    return app.swagger() as unknown as Record<string, unknown>;
  } finally {
    await app.close();
  }
}

async function build(o: Omit<ServerOptions, 'tls'>, https: Record<string, unknown> | null): Promise<ApiServer> {
  const app = Fastify({
    ...(https && { https }),
    bodyLimit: o.bodyLimit ?? DEFAULT_BODY_LIMIT,
    logger: o.logger ?? { level: 'info' },
    requestTimeout: o.requestTimeoutMs ?? 30_000,
    return503OnClosing: true,
    genReqId: (req: IncomingMessage) => {
      const h = req.headers[CORRELATION_HEADER];
      return typeof h === 'string' && CORRELATION_RE.test(h) ? h : randomUUID();
    },
    ajv: { customOptions: { coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const apiRoutes: Array<{ method: string; url: string }> = [];
  app.decorate('apiRoutes', apiRoutes);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') apiRoutes.push({ method, url: r.url });
  });
  app.setValidatorCompiler(validatorCompiler());
  // JSON only: a text/plain body would otherwise reach validation as a string.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err, req, reply) => sendError(err, req, reply));
  app.setNotFoundHandler((req, reply) => sendError(new ApiError(404, 'NotFound', `no route ${req.method} ${req.url.split('?')[0]}`, { method: req.method }), req, reply));

  app.addHook('onRequest', async (req) => {
    // reqId is the correlation id too; named so, a log search for it finds the request's lines.
    req.log = req.log.child({ correlationId: req.id });
    const h = req.headers[CORRELATION_HEADER];
    if (h !== undefined && (typeof h !== 'string' || !CORRELATION_RE.test(h))) {
      throw new InvalidRequestError(`headers.${CORRELATION_HEADER}`, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -');
    }
    await authenticate(req);
  });
  app.addHook('onSend', async (req, reply) => { void reply.header(CORRELATION_HEADER, req.id); });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Hostvisor controller API', version: VERSION, description: API_DESCRIPTION },
      tags: ['meta', 'hosts', 'enrollment', 'clusters', 'storage', 'disks', 'networks', 'vms', 'templates', 'jobs', 'events'].map((name) => ({ name })),
    },
  });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  // @fastify/websocket hides its routes from the document; ours are part of the API.
  app.addHook('onRoute', (r) => { if (r.websocket && r.schema) r.schema.hide = false; });

  const routes = [metaRoutes, enrollRoutes, hostRoutes, clusterRoutes, storageRoutes, diskCopyRoutes, networkRoutes, vmRoutes, templateRoutes, consoleRoutes, migrationRoutes, hibernationRoutes, snapshotRoutes, jobRoutes, eventRoutes];
  for (const r of routes) await app.register(r(o.ctx), { prefix: API_PREFIX });
  await app.ready();
  return app;
}
