// The client's JSON-RPC logic over an in-memory transport (no ws involved):
// answers, error answers, timeouts, a dropped connection, close(), typed
// events and the raw listener. (Over real mTLS to a real agent: events.test.ts
// and disconnect.test.ts.)
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { HostvisorClient } from '../../../api/client/client.js';
import { parseEvent } from '../../../api/client/event-hub.js';
import { CallTimeoutError, CLIENT_ERRORS, ClientClosedError, ConnectionLostError, NotConnectedError, RpcCallError } from '../../../api/client/errors.js';
import { ERRORS } from '../../../api/errors.js';
import { MemoryTransport } from './fakes.js';

function client(timeoutMs = 1_000): { c: HostvisorClient; tr: MemoryTransport } {
  const tr = new MemoryTransport();
  return { c: new HostvisorClient(tr, { timeoutMs }), tr };
}

t.test('a call is one JSON-RPC request; its answer, or its error answer with the agent code, settles it', async (t) => {
  const { c, tr } = client();
  tr.onSend = (req) => tr.deliver(req.method === 'Host.ping2'
    ? { jsonrpc: '2.0', id: req.id, result: {} }
    : { jsonrpc: '2.0', id: req.id, error: { code: 1, message: 'Virtual machine does not exist', data: { vmId: 'x' } } });
  t.same(await c.call('Host.ping2', {}, { correlationId: 'corr-1' }), {});
  t.match(JSON.parse(tr.sent[0]!), { jsonrpc: '2.0', method: 'Host.ping2', params: {}, correlationId: 'corr-1' }, 'the request as sent');
  const e = await c.call('VM.pause', { vmID: randomUUID() }).catch((x: unknown) => x);
  t.ok(e instanceof RpcCallError, 'an error answer rejects with RpcCallError');
  t.same([(e as RpcCallError).code, (e as RpcCallError).errorName, (e as RpcCallError).data], [1, 'noVM', { vmId: 'x' }]);
});

t.test('no answer in time rejects with CallTimeoutError (1007); a late answer is ignored', async (t) => {
  const { c, tr } = client();
  const e = await c.call('Host.ping2', {}, { timeoutMs: 30 }).catch((x: unknown) => x);
  t.ok(e instanceof CallTimeoutError && e.code === ERRORS.requestTimeout.code, 'CallTimeoutError with 1007');
  t.match((e as Error).message, /Host.ping2: no answer within 30 ms/);
  tr.deliver({ jsonrpc: '2.0', id: 1, result: {} }); // must not throw or resolve anything
  tr.deliver('not json at all');
  tr.deliver({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
  t.ok(c.isConnected, 'stray frames leave the connection up');
});

t.test('a dropped connection rejects every waiting call with ConnectionLostError (1102) and its cause, and signals disconnected', async (t) => {
  const { c, tr } = client(60_000);
  const calls = [c.call('Host.ping2', {}), c.call('Host.getVMList', {}), c.callRaw('Host.whatever', {})].map((p) => p.catch((x: unknown) => x));
  const reset = new Error('read ECONNRESET');
  tr.drop({ code: 1006, error: reset });
  const errs = await Promise.all(calls);
  t.ok(errs.every((e) => e instanceof ConnectionLostError && e.code === CLIENT_ERRORS.connectionLost.code), 'each waiting call: ConnectionLostError, 1102');
  t.ok(errs.every((e) => (e as Error).cause === reset), 'whose cause is the transport error');
  t.match((errs[1] as Error).message, /^Host.getVMList: the connection to the agent was lost: read ECONNRESET \(code 1006\)/, 'naming the call and how it ended');
  const d = await c.disconnected;
  t.same([d.code, d.error.name, d.error.cause], [1006, 'ConnectionLostError', reset], 'disconnected resolves with the code and a ConnectionLostError');
  t.equal(c.isConnected, false);
  const t0 = performance.now();
  const after = await c.call('Host.ping2', {}).catch((x: unknown) => x);
  t.ok(after instanceof NotConnectedError && after.code === 1101, 'a later call fails with NotConnectedError (1101)');
  t.ok(performance.now() - t0 < 50, 'at once');
  t.equal(tr.sent.length, 3, 'and is never sent');
});

t.test('a drop without an error still gives a cause naming the close', async (t) => {
  const { c, tr } = client();
  tr.drop({ code: 1001, reason: 'agent stopping' });
  const d = await c.disconnected;
  t.match((d.error.cause as Error).message, /agent stopping \(code 1001\)/);
});

t.test('close() rejects waiting calls with ClientClosedError (1104); disconnected says so', async (t) => {
  const { c } = client(60_000);
  const p = c.call('Host.ping2', {}).catch((x: unknown) => x);
  await c.close();
  const e = await p;
  t.ok(e instanceof ClientClosedError && e.code === 1104, 'ClientClosedError, 1104');
  t.equal((await c.disconnected).error.name, 'ClientClosedError');
});

const VM = randomUUID();
const vmStatus = (body: unknown, id = VM) => ({ jsonrpc: '2.0', method: `|virt|VM_status|${id}`, params: { [id]: body, notify_time: 5 } });

t.test('typed events: the <vmId> part is parsed out and the body typed; host events give their params', async (t) => {
  const { c, tr } = client();
  const got: unknown[] = [];
  c.on('VM_status', (vmId, body, params) => got.push(['vm', vmId, body.status, body.exitReason, params.notify_time]));
  c.on('hooks_changed', (params) => got.push(['hooks', Object.keys(params.hooks)]));
  // @ts-expect-error an event the schema does not have does not compile
  c.on('VM_stats', () => {});
  // @ts-expect-error a host event's listener gets its params, not a vmId
  c.on('hooks_changed', (vmId: string, body: unknown) => got.push([vmId, body]));
  tr.deliver(vmStatus({ status: 'Down', exitCode: 0, exitReason: 6 }));
  tr.deliver({ jsonrpc: '2.0', method: '|hooks|changed|no_id', params: { hooks: { before_vm_start: {} }, notify_time: 6 } });
  t.same(got.slice(0, 2), [['vm', VM, 'Down', 6, 5], ['hooks', ['before_vm_start']]]);
  t.same(parseEvent(`|virt|VM_status|${VM}`, vmStatus({ status: 'Up' }).params), { name: 'VM_status', vmId: VM, params: vmStatus({ status: 'Up' }).params });
});

t.test("a task's event (|storage|task_status|<taskID>) reaches its typed listeners with the task's body; one without that body does not", async (t) => {
  const { c, tr } = client();
  const got: unknown[] = [];
  c.on('task_status', (params) => got.push(params));
  const body = { verb: 'Volume.copy', state: 'running', taskState: 'running', taskResult: '', code: 0, message: 'running', progress: 37 };
  tr.deliver({ jsonrpc: '2.0', method: '|storage|task_status|t-1', params: { 't-1': body, notify_time: 7 } });
  tr.deliver({ jsonrpc: '2.0', method: '|storage|task_status|t-2', params: { notify_time: 8 } });
  t.same(got, [{ 't-1': body, notify_time: 7 }], 'the first event, whole; the second (no body under its task id) is left to raw listeners');
  t.same(parseEvent('|storage|task_status|t-1', { 't-1': body, notify_time: 7 })?.vmId, undefined, 'a task id is not a VM id');
});

t.test('unknown methods and notifications that do not fit their schema reach only the raw listener', async (t) => {
  const { c, tr } = client();
  const typed: string[] = [];
  const raw: string[] = [];
  c.on('VM_status', (vmId, body) => typed.push(String(body.status)));
  c.on('network_setup', () => typed.push('net'));
  c.onEvent((method) => raw.push(method));
  tr.deliver({ jsonrpc: '2.0', method: '|virt|VM_future|abc', params: {} });
  tr.deliver(vmStatus({ status: 'Bogus' }));
  tr.deliver({ jsonrpc: '2.0', method: `|virt|VM_status|${VM}`, params: { notify_time: 1 } }); // no body under the vmId
  tr.deliver({ jsonrpc: '2.0', method: '|virt|VM_status|', params: { notify_time: 1 } }); // no vmId at all
  tr.deliver({ jsonrpc: '2.0', method: '|net|setupNetworks|no_id', params: { notify_time: 'soon' } });
  tr.deliver([vmStatus({ status: 'Up' }), { jsonrpc: '2.0', method: '|x|y|no_id' }]); // a batch
  t.same(typed, ['Up'], 'typed listeners got only the one well-formed VM_status');
  t.equal(raw.length, 7, 'the raw listener got all seven notifications');
});

t.test('a listener that throws does not keep the others from an event; its error goes to onListenerError', async (t) => {
  const tr = new MemoryTransport();
  const errors: unknown[] = [];
  const c = new HostvisorClient(tr, { onListenerError: (e) => errors.push(e) });
  const heard: string[] = [];
  c.on('VM_status', () => { throw new Error('listener bug'); });
  c.on('VM_status', (_id, body) => heard.push(String(body.status)));
  c.onEvent(() => heard.push('raw'));
  tr.deliver(vmStatus({ status: 'Up' }));
  t.same(heard, ['raw', 'Up'], 'the other listeners heard it');
  t.match(errors, [{ message: 'listener bug' }], 'the error was handed on');
});

t.test("the client's codes are distinct and, but for the call timeout, none is an agent code", async (t) => {
  const codes = Object.values(CLIENT_ERRORS).map((e) => e.code);
  t.equal(new Set(codes).size, codes.length, 'distinct');
  const agent = new Set<number>(Object.values(ERRORS).map((e) => e.code));
  t.same(Object.entries(CLIENT_ERRORS).filter(([, e]) => agent.has(e.code)).map(([k]) => k), ['callTimeout'], 'only callTimeout shares 1007 with the agent, on purpose');
});
