// Who may call what, for every route the server has: without a certificate or with one from
// another CA -> 401; a certificate of our CA without an API role (a host's) -> 403; read-only on
// any mutating route -> 403; always the one error shape. The server keeps serving throughout.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { startApi, type Answer } from './harness.js';

const api = await startApi();
t.teardown(() => api.close());

const PUBLIC = new Set(['GET /api/v1/health', 'GET /api/v1/enroll/ca', 'POST /api/v1/enroll']);
const routes = api.server.apiRoutes.map((r) => ({ ...r, path: r.url.replace(/:id/g, randomUUID()) }));

function isError(t: Test, r: Answer, status: number, code: string, what: string) {
  t.equal(r.status, status, `${what}: ${status}`);
  t.equal(r.body?.code, code, `${what}: code ${code}`);
  t.type(r.body?.message, 'string', `${what}: a message`);
  t.type(r.body?.details, 'object', `${what}: details`);
}

t.test('every route but health and enrollment refuses a caller without a certificate or with another CA\'s (401)', async (t) => {
  t.ok(routes.length >= 25, `${routes.length} routes`);
  for (const r of routes) {
    const key = `${r.method} ${r.url}`;
    if (PUBLIC.has(key)) continue;
    isError(t, await api.call(r.method, r.path, { as: 'none', body: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} }), 401, 'Unauthenticated', `${key} without a certificate`);
    isError(t, await api.call(r.method, r.path, { as: 'other-ca', body: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} }), 401, 'Unauthenticated', `${key} with another CA's admin certificate`);
  }
});

t.test('a certificate of our CA whose OU is no API role (an agent\'s "host") gets 403', async (t) => {
  for (const r of routes.filter((x) => !PUBLIC.has(`${x.method} ${x.url}`))) {
    isError(t, await api.call(r.method, r.path, { as: 'host-unit' }), 403, 'Forbidden', `${r.method} ${r.url} as a host`);
  }
});

t.test('read-only gets 403 on every mutating route, and may read', async (t) => {
  const mutating = routes.filter((r) => r.method !== 'GET' && !PUBLIC.has(`${r.method} ${r.url}`));
  t.ok(mutating.length >= 12, `${mutating.length} mutating routes`);
  for (const r of mutating) {
    isError(t, await api.call(r.method, r.path, { as: 'read-only', body: { name: 'x' } }), 403, 'Forbidden', `${r.method} ${r.url} read-only`);
  }
  t.equal((await api.call('GET', '/api/v1/clusters', { as: 'read-only' })).status, 200, 'GET /clusters read-only');
  t.equal((await api.call('GET', '/api/v1/vms', { as: 'read-only' })).status, 200, 'GET /vms read-only');
  t.same((await api.store.clusters.list()).map((c) => c.name), ['default'], 'nothing was created');
});

t.test('health and the enrollment CA answer without a certificate; the server still serves', async (t) => {
  const h = await api.call('GET', '/api/v1/health', { as: 'none' });
  t.same([h.status, h.body.status, h.body.store], [200, 'ok', 'sqlite']);
  const ca = await api.call('GET', '/api/v1/enroll/ca', { as: 'none' });
  t.equal(ca.body.certificate, api.caPem.toString());
  t.equal((await api.call('GET', '/api/v1/hosts')).status, 200, 'admin still served');
});
