// GET /api/v1/events/stream: a WebSocket over the same mutual TLS. The backlog after `since`, then
// live events, in order; without a certificate the upgrade is refused with 401.
import t from 'tap';
import WebSocket from 'ws';
import { startApi } from './harness.js';

const api = await startApi();
t.teardown(() => api.close());

function open(path: string, as: 'admin' | 'none'): WebSocket {
  return new WebSocket(`wss://127.0.0.1:${api.port}${path}`, { ca: api.caPem, ...(as === 'admin' && api.creds.admin), handshakeTimeout: 10_000 });
}

function collect(ws: WebSocket, n: number, ms = 10_000): Promise<Array<{ seq: number; kind: string }>> {
  const got: Array<{ seq: number; kind: string }> = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} events in ${ms} ms`)), ms);
    ws.on('message', (m) => {
      got.push(JSON.parse(String(m)));
      if (got.length === n) { clearTimeout(timer); resolve(got); }
    });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

t.test('backlog after since, then live, no gaps or repeats', async (t) => {
  for (let i = 0; i < 3; i++) await api.store.event({ kind: 'test.before', subjectKind: 'test', subjectId: String(i), message: 'before' });
  const ws = open('/api/v1/events/stream?since=1', 'admin');
  t.teardown(() => ws.close());
  const got = collect(ws, 5);
  await new Promise((r) => ws.once('open', r));
  for (let i = 0; i < 3; i++) await api.call('POST', '/api/v1/clusters', { body: { name: `c${i}` } });
  const events = await got;
  t.same(events.map((e) => e.seq), [2, 3, 4, 5, 6], 'seq 2..6: backlog 2-3, live 4-6');
  t.same(events.map((e) => e.kind), ['test.before', 'test.before', 'cluster.created', 'cluster.created', 'cluster.created']);
});

t.test('without since: live events only', async (t) => {
  const ws = open('/api/v1/events/stream', 'admin');
  t.teardown(() => ws.close());
  const got = collect(ws, 1);
  await new Promise((r) => ws.once('open', r));
  await api.call('POST', '/api/v1/clusters', { body: { name: 'live-only' } });
  t.equal((await got)[0]?.kind, 'cluster.created');
});

t.test('without a client certificate the upgrade is refused with 401', async (t) => {
  const ws = open('/api/v1/events/stream', 'none');
  const status = await new Promise<number>((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => reject(new Error('opened without a certificate')));
    ws.on('error', () => {});
  });
  t.equal(status, 401);
  t.equal((await api.call('GET', '/api/v1/health', { as: 'none' })).status, 200, 'still serving');
});
