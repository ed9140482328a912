// Large frames that parsing would make expensive are refused before
// JSON.parse: nesting past the limit, batches past the batch limit. String
// contents do not count, and frames under the threshold are parsed and
// diagnosed in full as before.
import t from 'tap';
import { Dispatcher, type Handlers } from '../../../agent/rpc/dispatcher.js';
import { PREFLIGHT_MIN_CHARS, preflight } from '../../../agent/rpc/preflight.js';
import { silentLogger } from '../../../agent/log.js';
import { Methods, type MethodName } from '../../../api/schema.js';

const handlers = Object.fromEntries((Object.keys(Methods) as MethodName[]).map((m) => [m, () => ({})])) as unknown as Handlers;
const d = new Dispatcher(handlers, { log: silentLogger, timeouts: { requestMs: 1000, dhcpMs: 0 }, gate: () => undefined });
const call = async (text: string): Promise<{ error?: { code: number; message: string }; id?: unknown } & Record<string, unknown>> => {
  const out = await d.handle(text, { connId: 1, peer: 'test' });
  const r = JSON.parse(String(out)) as unknown;
  return (Array.isArray(r) ? r[0] : r) as never;
};
/** A string member long enough to put the frame over the threshold. */
const pad = `"${'p'.repeat(PREFLIGHT_MIN_CHARS)}"`;
const nested = (depth: number): string => '['.repeat(depth - 1) + pad + ']'.repeat(depth - 1);
const ping = (id: number) => `{"jsonrpc":"2.0","id":${id},"method":"Host.ping2"}`;

t.test('a large frame nested past the limit is refused unparsed (-32600, id null); at the limit it is parsed', async (t) => {
  const over = await call(`{"jsonrpc":"2.0","id":7,"method":"Host.ping2","params":{"a":${nested(64)}}}`);
  t.equal(over.error?.code, -32600);
  t.match(over.error?.message, /nested deeper than 64/);
  t.equal(over.id, null, 'not parsed, so the id is unknown');
  const at = await call(`{"jsonrpc":"2.0","id":7,"method":"Host.ping2","params":{"a":${nested(63)}}}`);
  t.equal(at.error?.code, -32602, 'at the limit it is parsed and validated (params.a is not allowed)');
  t.equal(at.id, 7);
});

t.test('a large batch past the batch limit is refused unparsed; at the limit it is answered', async (t) => {
  const batch = (n: number) => `[${Array.from({ length: n }, (_, i) => (i === 0 ? `{"jsonrpc":"2.0","id":0,"method":"Host.ping2","correlationId":${pad}}` : ping(i))).join(',')}]`;
  const over = await call(batch(101));
  t.match(over.error?.message, /batch larger than 100/);
  const out = JSON.parse(String(await d.handle(batch(100), { connId: 1, peer: 'test' }))) as unknown[];
  t.equal(out.length, 100, 'a batch of 100 gets 100 answers');
});

t.test('brackets, commas and escaped quotes inside strings do not count', async (t) => {
  const tricky = `"${'[{,'.repeat(PREFLIGHT_MIN_CHARS / 3)}\\"]]]\\\\"`;
  t.equal(preflight(`[${tricky},${tricky}]`, { maxDepth: 2, maxBatch: 3 }), undefined);
  const r = await call(`{"jsonrpc":"2.0","id":1,"method":"Host.ping2","correlationId":${tricky}}`);
  t.same(r.result, {}, 'the frame is parsed and answered');
});

t.test('8 MiB of nested arrays is refused within 200 ms (JSON.parse took 5.7 s), and small deep frames keep their full diagnosis', async (t) => {
  const n = 4 * 1024 * 1024 - 8;
  const t0 = performance.now();
  const r = await call('['.repeat(n) + ']'.repeat(n));
  const ms = performance.now() - t0;
  t.equal(r.error?.code, -32600);
  t.ok(ms < 200, `refused in ${ms.toFixed(1)} ms`);
  const small = await call(`{"jsonrpc":"2.0","id":3,"method":"VM.pause","params":{"vmID":${'['.repeat(5000)}${']'.repeat(5000)}}}`);
  t.equal(small.error?.code, -32602, 'a 10 KB frame nested 5,000 deep is parsed: -32602 with its id');
  t.equal(small.id, 3);
});
