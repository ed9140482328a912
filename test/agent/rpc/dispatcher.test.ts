// The dispatcher on its own: JSON-RPC rules, the per-request timeout (from the
// method's definition), the recovery gate, fault attribution in the logs, and
// the per-call work it skips.
import t from 'tap';
import { Dispatcher, type Handlers } from '../../../agent/rpc/dispatcher.js';
import { createLogger } from '../../../agent/log.js';
import { RecoveryError, NoVmError } from '../../../api/errors.js';
import { Methods, type MethodName } from '../../../api/schema.js';

function makeDispatcher(over: Partial<Handlers>, opts: { timeoutMs?: number; dhcpMs?: number; recovering?: boolean } = {}) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const handlers = Object.fromEntries((Object.keys(Methods) as MethodName[]).map((m) => [m, over[m] ?? (() => ({}))])) as unknown as Handlers;
  const d = new Dispatcher(handlers, {
    log, timeouts: { requestMs: opts.timeoutMs ?? 1000, dhcpMs: opts.dhcpMs ?? 0 },
    gate: () => (opts.recovering ? new RecoveryError() : undefined),
  });
  const call = async (msg: unknown) => {
    const out = await d.handle(typeof msg === 'string' ? msg : JSON.stringify(msg), { connId: 1, peer: 'test' });
    return out === undefined ? undefined : JSON.parse(String(out));
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

t.test("a method's timeout comes from its definition: setupNetworks gets the request timeout plus its connectivity wait and two DHCP waits", async (t) => {
  const slowSetup = (ms: number) => ({ 'Host.setupNetworks': () => new Promise((r) => setTimeout(() => r({}), ms)) }) as unknown as Partial<Handlers>;
  const request = (connectivityTimeout: number) => ({ jsonrpc: '2.0', id: 1, method: 'Host.setupNetworks', params: { networks: {}, bondings: {}, options: { connectivityTimeout } } });
  // 100 ms request timeout + 0.3 s connectivity wait + 2 x 50 ms DHCP = 500 ms: a 250 ms call answers.
  const roomy = makeDispatcher(slowSetup(250), { timeoutMs: 100, dhcpMs: 50 });
  t.same((await roomy.call(request(0.3))).result, {}, 'a 250 ms setupNetworks answers within its 500 ms bound');
  t.same((await roomy.call({ jsonrpc: '2.0', id: 2, method: 'Host.getVMList' })).result, {}, 'other methods keep the plain request timeout');
  const tight = makeDispatcher(slowSetup(250), { timeoutMs: 100, dhcpMs: 0 });
  const r = await tight.call(request(0));
  t.equal(r.error.code, 1007);
  t.match(r.error.message, /Host\.setupNetworks did not finish within 100 ms/, 'with no connectivity or DHCP wait the bound is the request timeout');
  const slowPing = makeDispatcher({ 'Host.ping2': () => new Promise((res) => setTimeout(() => res({}), 250)) }, { timeoutMs: 100, dhcpMs: 10_000 });
  t.equal((await slowPing.call({ jsonrpc: '2.0', id: 3, method: 'Host.ping2' })).error.code, 1007, 'the DHCP bound is not added to methods that do not declare it');
});

t.test('per call only what must be: a synchronous answer arms no timer, and no logger is made for a call that logs nothing', async (t) => {
  let children = 0;
  const base = createLogger({ level: 'info', sink: () => {} });
  const counting = { ...base, child: (b: Record<string, unknown>) => { children++; return base.child(b); } };
  const handlers = Object.fromEntries((Object.keys(Methods) as MethodName[]).map((m) => [m, () => ({})])) as unknown as Handlers;
  handlers['Host.getVMList'] = (() => new Promise((r) => setTimeout(() => r({ vmList: [] }), 1))) as unknown as Handlers['Host.getVMList'];
  const d = new Dispatcher(handlers, { log: counting, timeouts: { requestMs: 1000, dhcpMs: 0 }, gate: () => undefined });
  const realSetTimeout = globalThis.setTimeout;
  let timers = 0;
  globalThis.setTimeout = ((...a: Parameters<typeof setTimeout>) => { timers++; return realSetTimeout(...a); }) as typeof setTimeout;
  try {
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => d.handle(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'Host.ping2', correlationId: `c-${i}` }), { connId: 1, peer: 'test' })));
    t.same(replies, replies.map((_, i) => `{"jsonrpc":"2.0","id":${i},"result":{}}`), 'every ping answered {} with its id');
    t.equal(timers, 0, '200 synchronous calls armed no timer');
    await d.handle(JSON.stringify({ jsonrpc: '2.0', id: 'a', method: 'Host.getVMList' }), { connId: 1, peer: 'test' });
    t.ok(timers >= 1, 'an asynchronous call is bounded by a timer');
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  t.equal(children, 0, 'no per-call logger was made for calls that logged nothing');
  await d.handle(JSON.stringify({ jsonrpc: '2.0', id: 'b', method: 'VM.pause', params: { vmID: 'x' } }), { connId: 1, peer: 'test' });
  t.equal(children, 1, 'a call that logs (a rejected one) gets its logger');
});
