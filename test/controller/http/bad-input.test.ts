// Bad input to each endpoint gets the right status and the one error shape, naming the field;
// nothing is stored, and the server keeps serving.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { startApi } from './harness.js';

const api = await startApi();
t.teardown(() => api.close());
const nobody = randomUUID();

// [method, path, body, status, code, field (details.field) or undefined]
type Case = [string, string, unknown, number, string, string?];
const CASES: Case[] = [
  ['POST', '/api/v1/clusters', { name: 5 }, 400, 'InvalidRequest', 'body.name'],
  ['POST', '/api/v1/clusters', {}, 400, 'InvalidRequest', 'body.name'],
  ['POST', '/api/v1/clusters', { name: 'c', policy: 'random' }, 400, 'InvalidRequest', 'body.policy'],
  ['POST', '/api/v1/clusters', { name: 'c', colour: 'red' }, 400, 'InvalidRequest', 'body.colour'],
  ['POST', '/api/v1/clusters', { name: 'has space' }, 400, 'InvalidRequest', 'body.name'],
  ['POST', '/api/v1/clusters', { name: 'default' }, 409, 'Conflict', 'name'],
  ['GET', '/api/v1/clusters/nowhere', undefined, 404, 'NotFound'],
  ['PATCH', '/api/v1/clusters/default', { thresholds: { highUtilization: '80' } }, 400, 'InvalidRequest', 'body.thresholds.highUtilization'],
  ['PATCH', '/api/v1/clusters/default', { thresholds: { highUtilization: 100 } }, 400, 'InvalidRequest', 'body.thresholds.highUtilization'],
  ['PATCH', '/api/v1/clusters/default', {}, 400, 'InvalidRequest', 'body'],
  ['PATCH', '/api/v1/clusters/nowhere', { policy: 'none' }, 404, 'NotFound'],
  ['GET', '/api/v1/clusters/nowhere/spm', undefined, 404, 'NotFound'],
  ['POST', '/api/v1/hosts', { name: 'h1', address: 7 }, 400, 'InvalidRequest', 'body.address'],
  ['POST', '/api/v1/hosts', { name: 'h1', address: '10.0.0.1; rm -rf' }, 400, 'InvalidRequest', 'body.address'],
  ['POST', '/api/v1/hosts', { name: 'h1', address: 'h1.lab', ttlSeconds: 5 }, 400, 'InvalidRequest', 'body.ttlSeconds'],
  ['POST', '/api/v1/hosts', { name: 'h1', address: 'h1.lab', cluster: 'nowhere' }, 404, 'NotFound', 'cluster'],
  ['GET', '/api/v1/hosts/not-an-id', undefined, 400, 'InvalidRequest', 'params.id'],
  ['GET', `/api/v1/hosts/${nobody}`, undefined, 404, 'NotFound'],
  ['PATCH', `/api/v1/hosts/${nobody}`, { spmPriority: 11 }, 400, 'InvalidRequest', 'body.spmPriority'],
  ['PATCH', `/api/v1/hosts/${nobody}`, { spmPriority: '5' }, 400, 'InvalidRequest', 'body.spmPriority'],
  ['PATCH', `/api/v1/hosts/${nobody}`, { spmPriority: 5 }, 404, 'NotFound'],
  ['DELETE', `/api/v1/hosts/${nobody}`, undefined, 404, 'NotFound'],
  ['POST', '/api/v1/clusters/default/storage-domains', { name: 'd', spec: { type: 'nfs', root: '/x' } }, 400, 'InvalidRequest'],
  ['POST', '/api/v1/clusters/default/storage-domains', { name: 'd', spec: { type: 'block', devices: [] } }, 400, 'InvalidRequest'],
  ['POST', '/api/v1/clusters/nowhere/storage-domains', { name: 'd', spec: { type: 'file', root: '/srv' } }, 404, 'NotFound'],
  ['GET', `/api/v1/storage-domains/${nobody}`, undefined, 404, 'NotFound'],
  ['POST', '/api/v1/disks', { name: 'd', storageDomainId: nobody, sizeBytes: 2 ** 30 }, 404, 'NotFound', 'body.storageDomainId'],
  ['POST', '/api/v1/disks', { name: 'd', storageDomainId: nobody, sizeBytes: '1073741824' }, 400, 'InvalidRequest', 'body.sizeBytes'],
  ['POST', '/api/v1/disks', { name: 'd', storageDomainId: nobody, sizeBytes: 1000 }, 400, 'InvalidRequest', 'body.sizeBytes'],
  ['POST', '/api/v1/disks', { name: 'd', storageDomainId: nobody, sizeBytes: 2 ** 30, provisioning: 'sparse' }, 400, 'InvalidRequest', 'body.provisioning'],
  ['GET', `/api/v1/disks/${nobody}`, undefined, 404, 'NotFound'],
  ['DELETE', `/api/v1/disks/${nobody}`, undefined, 404, 'NotFound'],
  ['POST', '/api/v1/clusters/default/networks', { name: 'a-name-too-long-x', nics: {} }, 400, 'InvalidRequest', 'body.name'],
  ['POST', '/api/v1/clusters/default/networks', { name: 'net', vlan: 5000, nics: {} }, 400, 'InvalidRequest', 'body.vlan'],
  ['POST', '/api/v1/clusters/default/networks', { name: 'net', nics: { nohost: 'eth0' } }, 404, 'NotFound', 'body.nics.nohost'],
  ['POST', '/api/v1/clusters/default/networks', { name: 'net' }, 400, 'InvalidRequest', 'body.nics'],
  ['GET', `/api/v1/networks/${nobody}`, undefined, 404, 'NotFound'],
  ['PATCH', `/api/v1/networks/${nobody}`, {}, 400, 'InvalidRequest', 'body'],
  ['PATCH', `/api/v1/networks/${nobody}`, { nics: { h: 'eth 0' } }, 400, 'InvalidRequest', 'body.nics.h'],
  ['PATCH', `/api/v1/networks/${nobody}`, { mtu: 9000 }, 400, 'InvalidRequest', 'body.mtu'],
  ['PATCH', `/api/v1/networks/${nobody}`, { required: true }, 404, 'NotFound'],
  ['POST', '/api/v1/vms', { name: 'v', spec: { memoryMiB: '64' } }, 400, 'InvalidRequest', 'body.spec.memoryMiB'],
  ['POST', '/api/v1/vms', { name: 'v', spec: { memoryMiB: 64, disks: [{ name: 'vda', diskId: nobody }] } }, 404, 'NotFound', 'body.spec.disks[0].diskId'],
  ['POST', '/api/v1/vms', { name: 'v', spec: { memoryMiB: 64, disks: [{ name: 'xda', diskId: nobody }] } }, 400, 'InvalidRequest', 'body.spec.disks[0].name'],
  ['POST', '/api/v1/vms', { name: 'v', spec: { memoryMiB: 64, nics: [{ network: 'nonet' }] } }, 404, 'NotFound', 'body.spec.nics[0].network'],
  ['POST', '/api/v1/vms', { name: 'v', spec: { memoryMiB: 64, bogus: 1 } }, 400, 'InvalidRequest', 'body.spec.bogus'],
  ['POST', '/api/v1/vms', { name: 'v', spec: { name: 'w', memoryMiB: 64 } }, 400, 'InvalidRequest', 'body.spec.name'],
  ['POST', '/api/v1/vms', { name: 'v', cluster: 'nowhere', spec: { memoryMiB: 64 } }, 404, 'NotFound', 'body.cluster'],
  ['POST', '/api/v1/vms', { name: 'v', pinnedHost: 'nohost', spec: { memoryMiB: 64 } }, 404, 'NotFound', 'body.pinnedHost'],
  ['GET', `/api/v1/vms/${nobody}`, undefined, 404, 'NotFound'],
  ['POST', `/api/v1/vms/${nobody}/start`, {}, 404, 'NotFound'],
  ['POST', `/api/v1/vms/${nobody}/start`, { host: 5 }, 400, 'InvalidRequest', 'body.host'],
  ['POST', `/api/v1/vms/${nobody}/stop`, { force: true }, 400, 'InvalidRequest', 'body.force'],
  ['POST', `/api/v1/vms/${nobody}/shutdown`, { timeoutSeconds: 0 }, 400, 'InvalidRequest', 'body.timeoutSeconds'],
  ['POST', `/api/v1/vms/${nobody}/shutdown`, {}, 404, 'NotFound'],
  ['DELETE', `/api/v1/vms/${nobody}`, undefined, 404, 'NotFound'],
  ['GET', `/api/v1/jobs/${nobody}`, undefined, 404, 'NotFound'],
  ['GET', '/api/v1/jobs?limit=0', undefined, 400, 'InvalidRequest', 'querystring.limit'],
  ['GET', '/api/v1/jobs?state=done', undefined, 400, 'InvalidRequest', 'querystring.state'],
  ['GET', '/api/v1/events?since=abc', undefined, 400, 'InvalidRequest', 'querystring.since'],
  ['GET', '/api/v1/events?since=-1', undefined, 400, 'InvalidRequest', 'querystring.since'],
  ['POST', '/api/v1/enroll', { token: 1, csr: 'x' }, 400, 'InvalidRequest', 'body.token'],
  ['POST', '/api/v1/enroll', { token: 'hvt1.nope', csr: 'x' }, 401, 'InvalidToken'],
];

t.test('each endpoint: wrong types, unknown fields, bad values and unknown ids', async (t) => {
  for (const [method, path, body, status, code, field] of CASES) {
    const r = await api.call(method, path, { body, as: path.startsWith('/api/v1/enroll') ? 'none' : 'admin' });
    const what = `${method} ${path} ${JSON.stringify(body) ?? ''}`;
    t.equal(r.status, status, `${what} -> ${status}`);
    t.equal(r.body?.code, code, `${what}: ${code}`);
    t.type(r.body?.message, 'string');
    if (field) t.equal(r.body?.details?.field, field, `${what}: names ${field}`);
  }
});

t.test('oversized bodies are refused (413), malformed JSON and other media types too', async (t) => {
  const big = JSON.stringify({ name: 'v', spec: { memoryMiB: 64, cmdline: 'x'.repeat(1024 * 1024 + 10) } });
  for (const path of ['/api/v1/vms', '/api/v1/clusters', '/api/v1/enroll']) {
    const r = await api.call('POST', path, { raw: big, headers: { 'content-type': 'application/json' }, as: path === '/api/v1/enroll' ? 'none' : 'admin' });
    t.same([r.status, r.body?.code], [413, 'BodyTooLarge'], `${path}: 1 MiB + 10 bytes`);
  }
  const bad = await api.call('POST', '/api/v1/clusters', { raw: '{"name": "x",', headers: { 'content-type': 'application/json' } });
  t.same([bad.status, bad.body?.code, bad.body?.details?.field], [400, 'InvalidRequest', 'body'], 'truncated JSON');
  const text = await api.call('POST', '/api/v1/clusters', { raw: 'name=x', headers: { 'content-type': 'text/plain' } });
  t.same([text.status, text.body?.code], [415, 'UnsupportedMediaType']);
  const corr = await api.call('GET', '/api/v1/clusters', { headers: { 'correlation-id': 'bad id with spaces' } });
  t.same([corr.status, corr.body?.details?.field], [400, 'headers.correlation-id'], 'a bad Correlation-Id is named');
});

t.test('after all of it: nothing stored, the server still serves', async (t) => {
  t.same((await api.store.clusters.list()).map((c) => c.name), ['default']);
  t.same(await api.store.vms.list(), []);
  t.same(await api.store.disks.list(), []);
  t.same(await api.store.jobs.list(), []);
  t.equal((await api.call('GET', '/api/v1/health', { as: 'none' })).status, 200);
  t.equal((await api.call('GET', '/api/v1/clusters/default')).status, 200);
});
