// The OpenAPI document: valid OpenAPI 3 (by @readme/openapi-parser), every route the server has
// is in it, it is what GET /api/v1/openapi.json serves, and docs/controller-api.md is generated
// from it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from '@readme/openapi-parser';
import { openApiDocument } from '../../../controller/http/server.js';
import { renderApiMarkdown } from '../../../controller/http/api-docs.js';
import { startApi } from './harness.js';

const REPO = join(import.meta.dirname, '..', '..', '..', '..');

t.test('the served document validates as OpenAPI 3 and lists every route', async (t) => {
  const api = await startApi();
  t.teardown(() => api.close());
  const r = await api.call('GET', '/api/v1/openapi.json', { as: 'read-only' });
  t.equal(r.status, 200);
  const doc = r.body;
  t.match(doc.openapi, /^3\./);
  const result = await validate(structuredClone(doc));
  t.ok(result.valid, `valid: ${JSON.stringify(result.valid ? [] : result.errors).slice(0, 2000)}`);
  const broken = structuredClone(doc);
  delete broken.info.version;
  t.notOk((await validate(broken)).valid, 'the validator does refuse a document without info.version');
  const documented = new Set<string>();
  for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
    for (const m of Object.keys(item)) documented.add(`${m.toUpperCase()} ${path}`);
  }
  const routes = api.server.apiRoutes.map((x) => `${x.method} ${x.url.replace(/:(\w+)/g, '{$1}')}`);
  t.ok(routes.length >= 25, `${routes.length} routes`);
  for (const route of routes) t.ok(documented.has(route), `${route} is documented`);
  t.ok(documented.has('GET /api/v1/events/stream'), 'the WebSocket stream too');
  t.same(doc, await openApiDocument(), 'the same document as the generator builds');
});

t.test('docs/controller-api.md is the generated one (npm run docs:controller-api)', async (t) => {
  const committed = readFileSync(join(REPO, 'docs', 'controller-api.md'), 'utf8');
  t.equal(committed, renderApiMarkdown(await openApiDocument()));
  t.match(committed, /### POST \/api\/v1\/vms\/\{id\}\/start/);
});
