// The dispatcher on its own: JSON-RPC rules, the per-request timeout, the
// recovery gate and fault attribution in the logs.
import t from 'tap';
import { Dispatcher, type Handlers } from '../../../agent/rpc/dispatcher.js';
import { createLogger } from '../../../agent/log.js';
import { RecoveryError, NoVmError } from '../../../api/errors.js';
import { Methods, type MethodName } from '../../../api/schema.js';

function makeDispatcher(over: Partial<Handlers>, opts: { timeoutMs?: number; recovering?: boolean } = {}) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const handlers = Object.fromEntries((Object.keys(Methods) as MethodName[]).map((m) => [m, over[m] ?? (() => ({}))])) as unknown as Handlers;
  const d = new Dispatcher(handlers, {
    log, requestTimeoutMs: opts.timeoutMs ?? 1000,
    gate: () => (opts.recovering ? new RecoveryError() : undefined),
  });
  const call = async (msg: unknown) => {
    const out = await d.handle(typeof msg === 'string' ? msg : JSON.stringify(msg), { connId: 1, peer: 'test' });
    return out === undefined ? undefined : JSON.parse(out);
  };
  return { call, lines };
}

const VM = '3f0e0c4c-1f53-4a9b-9e58-2a4c2e9d3b11';

t.test('a request slower than the request timeout gets error 1007, and the agent keeps serving', async (t) => {
  const { call } = makeDispatcher({ 'Host.ping2': () => new Promise((r) => setTimeout(() => r({}), 500)) }, { timeoutMs: 100 });
  const r = await call({ jsonrpc: '2.0', id: 1, method: 'Host.ping2' });
  t.equal(r.error.code, 1007);
  const r2 = await call({ jsonrpc: '2.0', id: 2, method: 'Host.getVMList' });
  t.same(r2, { jsonrpc: '2.0', id: 2, result: {} });
});

t.test('notifications get no reply; batches get one reply per request, in any order', async (t) => {
  const { call } = makeDispatcher({});
  t.equal(await call({ jsonrpc: '2.0', method: 'Host.ping2' }), undefined);
  const batch = await call([{ jsonrpc: '2.0', id: 'a', method: 'Host.ping2' }, { jsonrpc: '2.0', method: 'Host.ping2' }, { jsonrpc: '2.0', id: 'b', method: 'nope' }]);
  t.equal(batch.length, 2);
  t.same(batch.find((r: { id: string }) => r.id === 'b').error.code, -32601);
  t.equal((await call([])).error.code, -32600);
  t.equal((await call('{')).error.code, -32700);
});

t.test('mutating calls are refused with 99 while recovering; reads are served', async (t) => {
  const { call } = makeDispatcher({}, { recovering: true });
  t.equal((await call({ jsonrpc: '2.0', id: 1, method: 'VM.pause', params: { vmID: VM } })).error.code, 99);
  t.same((await call({ jsonrpc: '2.0', id: 2, method: 'Host.getVMList' })).result, {});
});

t.test("a caller's mistake is logged at info, a server fault at error; correlationId reaches the log", async (t) => {
  const { call, lines } = makeDispatcher({
    'VM.pause': () => { throw new NoVmError(VM); },
    'VM.cont': () => { throw new Error('boom'); },
  });
  await call({ jsonrpc: '2.0', id: 1, method: 'VM.pause', params: { vmID: VM }, correlationId: 'flow-42' });
  const r = await call({ jsonrpc: '2.0', id: 2, method: 'VM.cont', params: { vmID: VM } });
  t.equal(r.error.code, -32603, 'an unexpected exception becomes Internal error without leaking its text');
  const rejected = lines.find((l) => l.msg === 'call rejected');
  t.equal(rejected?.level, 'info');
  t.equal(rejected?.correlationId, 'flow-42');
  t.equal(lines.find((l) => l.msg === 'call failed unexpectedly')?.level, 'error');
});

t.test('a handler may raise its own timeout while it runs (never lower it); the 1007 names the raised bound', async (t) => {
  const slow = (ms: number, extendTo?: number): Handlers['Host.ping2'] => (_p, ctx) => {
    if (extendTo !== undefined) ctx.extendTimeout?.(extendTo);
    return new Promise((r) => setTimeout(() => r({}), ms));
  };
  const raised = makeDispatcher({ 'Host.ping2': slow(300, 1000) }, { timeoutMs: 100 });
  t.same((await raised.call({ jsonrpc: '2.0', id: 1, method: 'Host.ping2' })).result, {}, 'raised to 1 s: a 300 ms call answers');
  const lowered = makeDispatcher({ 'Host.ping2': slow(300, 10) }, { timeoutMs: 1000 });
  t.same((await lowered.call({ jsonrpc: '2.0', id: 1, method: 'Host.ping2' })).result, {}, 'a lower value is ignored');
  const tooSlow = makeDispatcher({ 'Host.ping2': slow(1500, 400) }, { timeoutMs: 100 });
  const t0 = performance.now();
  const r = await tooSlow.call({ jsonrpc: '2.0', id: 1, method: 'Host.ping2' });
  const ms = performance.now() - t0;
  t.equal(r.error.code, 1007);
  t.match(r.error.message, /within 400 ms/);
  t.ok(ms >= 390 && ms < 1400, `answered at the raised bound, counted from the call's start (${Math.round(ms)} ms)`);
});
