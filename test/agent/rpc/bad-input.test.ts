// Hostile input over real mutual-TLS WebSocket connections: 10,000 malformed
// or hostile frames, each answered with the JSON-RPC 2.0 spec error and the
// right id (or, for notifications, not answered at all); oversized frames
// close the connection with 1009; afterwards the agent still answers and its
// memory has not grown with the flood. Loopback only; every loop is bounded
// in count and every wait in time.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startAgent, connectClient } from '../harness.js';
import { createLogger } from '../../../agent/log.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { closeCode, onRaw, sendRaw } from '../../api/client/raw-frames.js';

const MAX_MESSAGE_BYTES = 64 * 1024;
const FLOOD = 10_000;
const WARMUP = 1_000;
/** Frames sent before waiting for their answers: below the agent's 256 in flight per connection. */
const CHUNK = 200;
const CHUNK_TIMEOUT_MS = 15_000;
const MiB = 1024 * 1024;
/*
 * Memory bound. Both the agent and this client run in this process, so
 * process RSS covers both. The flood sends ~29 MB of frames (printed below); a
 * leak that kept every frame, or its parsed request, or even ~3 KiB of
 * per-request state (a logger child, a context, a timer closure: 10,000 x 3 KiB
 * = 30 MiB) would push RSS past 30 MiB. The warm-up (1,000 frames of the same
 * mix) has already grown the heap to its working size, and we GC before each
 * reading, so what remains is allocator noise (a few MiB). The V8 heap
 * (heapUsed after GC) is measured too and must grow less than 8 MiB (a leak
 * of ~800 bytes a request would cross it).
 */
const RSS_BOUND = 30 * MiB;
const HEAP_BOUND = 8 * MiB;

type Id = string | number | null;

/** One frame to send, and the signature of the one reply frame it is owed (null: no reply). */
interface Case { frame: string | Buffer; expect: string | null; kind: string }

// ---------- reply signatures ----------
// A reply frame is reduced to a string naming its id, its outcome and (for
// -32602) the field named in error.data.field; a batch reply to the sorted
// signatures of its members. Expected and received signatures are compared
// as multisets, so concurrent handling (replies out of order) does not matter.

function sigOf(id: Id, outcome: number | 'ok', field?: string): string {
  return `${JSON.stringify(id)}|${outcome}${field ? `|${field}` : ''}`;
}
const batchSig = (items: string[]): string => `B[${[...items].sort().join(',')}]`;

interface ShapeProblem { text: string; why: string }

function replySig(msg: unknown, problems: ShapeProblem[], text: string): string {
  if (Array.isArray(msg)) {
    if (msg.length === 0) problems.push({ text, why: 'empty batch reply (the spec says: send nothing instead)' });
    return batchSig(msg.map((m) => replySig(m, problems, text)));
  }
  const m = msg as Record<string, unknown>;
  const bad = (why: string) => { if (problems.length < 20) problems.push({ text: text.slice(0, 300), why }); };
  if (m === null || typeof m !== 'object') { bad('not an object'); return 'garbage'; }
  if (m.jsonrpc !== '2.0') bad('jsonrpc is not "2.0"');
  if (!('id' in m)) bad('no id member');
  const hasResult = 'result' in m;
  const hasError = 'error' in m;
  if (hasResult === hasError) bad('must have exactly one of result and error');
  if (hasResult) return sigOf(m.id as Id, 'ok');
  const e = m.error as { code?: unknown; message?: unknown; data?: { field?: unknown } } | undefined;
  if (!e || !Number.isInteger(e.code) || typeof e.message !== 'string') { bad('error without integer code and string message'); return 'garbage'; }
  const field = e.code === -32602 && typeof e.data?.field === 'string' ? e.data.field : undefined;
  if (e.code === -32602 && (!field || !e.message.includes(field))) bad('-32602 without the field named in data.field and in the message');
  return sigOf(m.id as Id, e.code as number, field);
}

function isEvent(msg: unknown): boolean {
  const m = msg as Record<string, unknown> | null;
  return !Array.isArray(m) && m !== null && typeof m === 'object' && typeof m.method === 'string' && !('id' in m);
}

// ---------- the hostile mix ----------

/** Deterministic PRNG (mulberry32) so a failure can be reproduced. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const UUID = '6f1c1e9a-0000-4000-8000-00000000beef'; // never a VM here
const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const req = (id: unknown, method: unknown, params?: unknown): string =>
  JSON.stringify(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
const notif = (method: unknown, params?: unknown): string =>
  JSON.stringify(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });

/** Real methods with invalid params, and the field the -32602 must name. */
const BAD_PARAMS: [string, unknown, string][] = [
  ['VM.pause', { vmID: 'x' }, 'params.vmID'],
  ['VM.pause', {}, 'params.vmID'],
  ['VM.pause', { vmID: 5 }, 'params.vmID'],
  ['VM.pause', { vmID: null }, 'params.vmID'],
  ['VM.pause', { vmID: 1e300 }, 'params.vmID'],
  ['VM.pause', { vmID: UUID, bogus: 1 }, 'params.bogus'],
  ['VM.pause', [UUID], 'params'],
  ['VM.destroy', { vmid: UUID }, 'params.vmid'],
  ['Host.ping2', { foo: 1 }, 'params.foo'],
  ['Host.ping2', [], 'params'],
  ['VM.setTicket', { vmID: UUID, password: '123456789', ttl: 1 }, 'params.password'],
  ['VM.setTicket', { vmID: UUID, password: 'x', ttl: -1 }, 'params.ttl'],
  ['VM.setTicket', { vmID: UUID, password: 'x', ttl: 1.5 }, 'params.ttl'],
  ['VM.setTicket', { vmID: UUID, password: 'x', ttl: 1, existingConnAction: 'explode' }, 'params.existingConnAction'],
  ['VM.shutdown', { vmID: UUID, timeout: 0 }, 'params.timeout'],
  ['VM.shutdown', { vmID: UUID, force: 'yes' }, 'params.force'],
  ['Host.getVMFullList', { vmList: ['x'] }, 'params.vmList[0]'],
  ['Host.getVMFullList', { vmList: 'x' }, 'params.vmList'],
  ['Host.dumpxmls', { vmList: [] }, 'params.vmList'],
  ['Host.dumpxmls', {}, 'params.vmList'],
  ['VM.create', { vmID: 'not-a-uuid', spec: { name: 'x', memoryMiB: 64 } }, 'params.vmID'],
  ['VM.create', { vmID: UUID, spec: { name: 'x', memoryMiB: 64 }, launchPaused: 'no' }, 'params.launchPaused'],
  ['VM.hotplugNic', { vmID: UUID, nic: 'x' }, 'params.nic'],
  ['VM.hotunplugNic', { vmID: UUID, nic: { mac: 'zz' } }, 'params.nic.mac'],
  ['VM.hotunplugDisk', { vmID: UUID, drive: { name: '' } }, 'params.drive.name'],
];

const PARSE_ERRORS = [
  '', ' ', '{', '}', '[', 'nul', 'tru', '[1,', "{'jsonrpc':'2.0'}", '{"a":1,}', 'NaN', 'Infinity', 'undefined',
  '{"jsonrpc":"2.0"}}', '\u0000', '0x10', '01', '"\\x"', '{"jsonrpc":"2.0","id":1,"method":"Host.ping2"', '/* */{}',
  '{"id":1e400e1}', '["\u0001"]', '{"a":"\ud800"', '1 2', '[]]',
];
const NOT_OBJECTS = ['1', '"str"', 'null', 'true', 'false', '3.14', '-0', '1e400', `"${'x'.repeat(1000)}"`];
const UNKNOWN_METHODS = ['Nope', '', 'Host.ping3', 'host.ping2', 'Host.Ping2', ' Host.ping2', '__proto__', 'constructor',
  'toString', 'hasOwnProperty', 'rpc.', 'VM', 'Host.', '.', 'x'.repeat(256), 'Host.ping2\u0000', 'Host/ping2'];
/** Ids the agent refuses (-32600 with id null): unrepresentable, imprecise, too long, or not a string or number. */
const INVALID_IDS: [string, string][] = [
  ['1e400', 'overflows to Infinity'], ['9007199254740993', '2^53+1, not exact in a double'],
  ['-9007199254740993', '-(2^53+1)'], ['123456789012345678901234567890', 'huge integer'], ['1e20', 'beyond 2^53'],
  ['1.5', 'fractional'], [JSON.stringify('x'.repeat(257)), 'string over 256 chars'],
  [JSON.stringify('y'.repeat(40_000)), '40,000-char string'], ['{}', 'object'], ['[]', 'array'], ['[1]', 'array'],
  ['true', 'boolean'], ['{"a":{"b":[1]}}', 'nested object'],
];

class Mix {
  private n = 0;
  private readonly r: () => number;
  constructor(seed: number) { this.r = rng(seed); }
  private uid(): number { return ++this.n; }
  private pick<T>(a: readonly T[]): T { return a[Math.floor(this.r() * a.length)]!; }

  /** The i-th hostile frame (cycles through the categories; details vary with the PRNG). */
  next(i: number): Case {
    const id = this.uid();
    switch (i % 24) {
      case 0: return { kind: 'parse', frame: this.pick(PARSE_ERRORS), expect: sigOf(null, -32700) };
      case 1: { // a valid request cut short: never valid JSON
        const full = req(id, 'Host.ping2', { pad: 'z'.repeat(Math.floor(this.r() * 200)) });
        return { kind: 'parse-truncated', frame: full.slice(0, 1 + Math.floor(this.r() * (full.length - 1))), expect: sigOf(null, -32700) };
      }
      case 2: { // random bytes as a binary frame (decoded as UTF-8 by the agent)
        const b = Buffer.alloc(1 + Math.floor(this.r() * 300));
        for (let k = 0; k < b.length; k++) b[k] = Math.floor(this.r() * 256);
        b[0] = 0x7b; // '{' so it can never be valid JSON (no closing brace is guaranteed) ...
        b[b.length - 1] = 0x2c; // ... and it ends with ','
        return { kind: 'parse-binary', frame: b, expect: sigOf(null, -32700) };
      }
      case 3: return { kind: 'not-object', frame: this.pick(NOT_OBJECTS), expect: sigOf(null, -32600) };
      case 4: { // wrong types for params: the request is invalid, its id is fine
        const params = this.pick(['"str"', '42', 'null', 'true', '"{}"']);
        return { kind: 'params-type', frame: `{"jsonrpc":"2.0","id":${id},"method":"Host.ping2","params":${params}}`, expect: sigOf(id, -32600) };
      }
      case 5: { // method not a string, or too long
        const method = this.pick(['42', 'null', '{}', '["Host.ping2"]', 'true', JSON.stringify('M'.repeat(257))]);
        return { kind: 'method-type', frame: `{"jsonrpc":"2.0","id":${id},"method":${method}}`, expect: sigOf(id, -32600) };
      }
      case 6: { // jsonrpc missing or wrong
        const v = this.pick(['', '"jsonrpc":"1.0",', '"jsonrpc":2.0,', '"jsonrpc":"2",', '"jsonrpc":null,', '"jsonrpc":"2.0 ",']);
        return { kind: 'jsonrpc-version', frame: `{${v}"id":"s-${id}","method":"Host.ping2"}`, expect: sigOf(`s-${id}`, -32600) };
      }
      case 7: { // a response (or no method) sent to the server
        const f = this.pick([`{"jsonrpc":"2.0","id":${id},"result":{}}`, `{"jsonrpc":"2.0","id":${id},"error":{"code":1,"message":"x"}}`, `{"jsonrpc":"2.0","id":${id}}`]);
        return { kind: 'no-method', frame: f, expect: sigOf(id, -32600) };
      }
      case 8: { // invalid ids: answered with id null
        const [raw] = this.pick(INVALID_IDS);
        return { kind: 'invalid-id', frame: `{"jsonrpc":"2.0","id":${raw},"method":"Host.ping2"}`, expect: sigOf(null, -32600) };
      }
      case 9: { // edge ids that are valid: echoed exactly, with the result
        const edge: Id = this.pick<Id>([id, -id, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0, '', `s-${id}`, 'x'.repeat(256), `💥\u0000"\\${id}`, null]);
        return { kind: 'valid-edge-id', frame: req(edge, 'Host.ping2'), expect: sigOf(edge, 'ok') };
      }
      case 10: case 11: { // unknown methods
        const m = this.r() < 0.7 ? this.pick(UNKNOWN_METHODS) : `Rnd.${Math.floor(this.r() * 1e9).toString(36)}`;
        const params = this.pick([undefined, {}, [], { vmID: UUID }]);
        return { kind: 'unknown-method', frame: req(`m-${id}`, m, params), expect: sigOf(`m-${id}`, -32601) };
      }
      case 12: case 13: case 14: { // invalid params for real methods, named field
        const [m, p, field] = this.pick(BAD_PARAMS);
        return { kind: 'invalid-params', frame: req(id, m, p), expect: sigOf(id, -32602, field) };
      }
      case 15: { // notifications: never answered, whatever they do
        const f = this.pick([
          notif('Host.ping2'), notif('Host.ping2', {}), notif('Nope.nope'), notif('VM.pause', { vmID: 'x' }),
          notif('Host.ping2', { foo: 1 }), notif('VM.getStats', { vmID: UUID }), notif('rpc.discover'), notif('__proto__', []),
        ]);
        return { kind: 'notification', frame: f, expect: null };
      }
      case 16: { // a well-formed call for a VM that does not exist (read-only method)
        return { kind: 'no-such-vm', frame: req(id, 'VM.getStats', { vmID: randomUUID() }), expect: sigOf(id, 1) };
      }
      case 17: { // batches of garbage
        const items = this.pick([['1', '2', '3'], ['{}', '"x"', 'null', '[]', 'true'], ['[]'], [deepArray(50)]]);
        return { kind: 'batch-garbage', frame: `[${items.join(',')}]`, expect: batchSig(items.map(() => sigOf(null, -32600))) };
      }
      case 18: { // empty batch, oversized batch: one -32600 object, not an array
        const f = this.pick(['[]', '[ ]', `[${Array.from({ length: 101 }, (_, k) => req(k, 'Host.ping2')).join(',')}]`]);
        return { kind: 'batch-empty-or-too-big', frame: f, expect: sigOf(null, -32600) };
      }
      case 19: { // a mixed batch: one answer per request, none for the notification
        const a = this.uid(); const b = this.uid(); const c = this.uid();
        const f = `[${req(a, 'Host.ping2')},${notif('Host.ping2')},${req(`m-${b}`, 'No.such')},${req(c, 'VM.pause', { vmID: 'x' })},7,${notif('VM.pause', { vmID: 'x' })}]`;
        return { kind: 'batch-mixed', frame: f, expect: batchSig([sigOf(a, 'ok'), sigOf(`m-${b}`, -32601), sigOf(c, -32602, 'params.vmID'), sigOf(null, -32600)]) };
      }
      case 20: { // a batch of notifications only: no reply at all
        return { kind: 'batch-notifications', frame: `[${notif('Host.ping2')},${notif('Nope')},${notif('VM.pause', {})}]`, expect: null };
      }
      case 21: { // deep nesting, well under the frame limit
        const depth = 1000 + Math.floor(this.r() * 15_000);
        const f = this.pick([
          { kind: 'deep-batch', frame: `[${deepArray(depth)}]`, expect: batchSig([sigOf(null, -32600)]) },
          { kind: 'deep-params', frame: `{"jsonrpc":"2.0","id":${id},"method":"Host.ping2","params":{"a":${deepObject(Math.min(depth, 6000))}}}`, expect: sigOf(id, -32602, 'params.a') },
          { kind: 'deep-param-value', frame: `{"jsonrpc":"2.0","id":${id},"method":"VM.pause","params":{"vmID":${deepArray(depth)}}}`, expect: sigOf(id, -32602, 'params.vmID') },
          { kind: 'deep-id', frame: `{"jsonrpc":"2.0","id":${deepArray(depth)},"method":"Host.ping2"}`, expect: sigOf(null, -32600) },
          { kind: 'deep-unterminated', frame: '['.repeat(depth), expect: sigOf(null, -32700) },
        ]);
        return f;
      }
      case 22: { // big but allowed: long strings and many keys
        const f = this.pick([
          { kind: 'big-param', frame: req(id, 'VM.setTicket', { vmID: UUID, password: 'p'.repeat(50_000), ttl: 1 }), expect: sigOf(id, -32602, 'params.password') },
          { kind: 'many-keys', frame: req(id, 'Host.ping2', Object.fromEntries(Array.from({ length: 2000 }, (_, k) => [`k${k}`, k]))), expect: sigOf(id, -32602, 'params.k0') },
          { kind: 'big-method', frame: req(id, 'M'.repeat(60_000)), expect: sigOf(id, -32600) },
        ]);
        return f;
      }
      default: { // the odd ones: valid JSON-RPC but prototype-ish members, huge numbers in params, binary valid frames
        const f = this.pick<Case>([
          { kind: 'proto-member', frame: `{"jsonrpc":"2.0","id":${id},"method":"Host.ping2","__proto__":{"method":"VM.destroy"}}`, expect: sigOf(id, 'ok') },
          { kind: 'huge-number-param', frame: `{"jsonrpc":"2.0","id":${id},"method":"Host.getVMFullList","params":{"vmList":[1e400]}}`, expect: sigOf(id, -32602, 'params.vmList[0]') },
          { kind: 'binary-valid', frame: Buffer.from(req(id, 'Host.ping2')), expect: sigOf(id, 'ok') },
          { kind: 'binary-invalid-params', frame: Buffer.from(req(id, 'VM.pause', { vmID: 'x' })), expect: sigOf(id, -32602, 'params.vmID') },
          { kind: 'id-null-invalid', frame: '{"jsonrpc":"1.0","method":"Host.ping2"}', expect: sigOf(null, -32600) },
        ]);
        return f;
      }
    }
  }
}

// ---------- sending, with backpressure ----------

class Flood {
  readonly expected = new Map<string, number>();
  received = 0;
  owed = 0;
  events = 0;
  unexpected: string[] = [];
  readonly problems: ShapeProblem[] = [];
  bytesSent = 0;
  readonly kinds = new Map<string, number>();
  private waiter: (() => void) | undefined;
  /** Stops listening (the connection lives on for the next user). */
  readonly detach: () => void;

  constructor(private readonly client: HostvisorClient) {
    this.detach = onRaw(client, (text) => {
      let msg: unknown;
      try { msg = JSON.parse(text); } catch { this.received++; this.problems.push({ text: text.slice(0, 300), why: 'reply is not JSON' }); return; }
      // The agent's own notifications (VM_status events about whatever else runs on
      // this host's libvirtd) are not replies: a reply always has an id member.
      if (isEvent(msg)) { this.events++; return; }
      this.received++;
      const sig = replySig(msg, this.problems, text);
      const left = this.expected.get(sig) ?? 0;
      if (left > 0) {
        if (left === 1) this.expected.delete(sig); else this.expected.set(sig, left - 1);
      } else if (this.unexpected.length < 20) {
        this.unexpected.push(`${sig}  <=  ${text.slice(0, 200)}`);
      }
      if (this.received >= this.owed) this.waiter?.();
    });
  }

  /** Sends the frames, then waits (bounded) until every reply owed so far has arrived. */
  async send(cases: Case[]): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const c of cases) {
      if (c.expect !== null) {
        this.expected.set(c.expect, (this.expected.get(c.expect) ?? 0) + 1);
        this.owed++;
      }
      this.kinds.set(c.kind, (this.kinds.get(c.kind) ?? 0) + 1);
      this.bytesSent += Buffer.byteLength(c.frame);
      writes.push(sendRaw(this.client, c.frame));
    }
    await Promise.all(writes);
    if (this.received >= this.owed) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`only ${this.received} of ${this.owed} replies within ${CHUNK_TIMEOUT_MS} ms; still owed e.g. ${[...this.expected.keys()].slice(0, 5).join(' ; ')}`));
      }, CHUNK_TIMEOUT_MS);
      this.waiter = () => { clearTimeout(timer); this.waiter = undefined; resolve(); };
    });
  }

  async run(mix: Mix, count: number): Promise<void> {
    for (let i = 0; i < count; i += CHUNK) {
      const cases: Case[] = [];
      for (let k = i; k < Math.min(count, i + CHUNK); k++) cases.push(mix.next(k));
      await this.send(cases);
    }
  }
}

/** global.gc when node runs with --expose-gc; otherwise the flag is turned on now and gc taken from a fresh context. */
const forceGc: (() => void) | undefined = (() => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();
function gc(): void {
  if (forceGc) { forceGc(); forceGc(); }
}
async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  for (let k = 0; k < 3; k++) { gc(); await new Promise((r) => setTimeout(r, 50)); }
  return process.memoryUsage();
}
const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

t.test('hostile input over mTLS WebSocket', async (t) => {
  const faults: string[] = [];
  // warn and error lines only: a client's bad input must never be logged as a server fault.
  const log = createLogger({ level: 'warn', sink: (line) => { if (faults.length < 50) faults.push(line); } });
  const { config, stop } = await startAgent({ 'rpc.maxMessageBytes': MAX_MESSAGE_BYTES }, log);
  t.teardown(stop);
  const client = await connectClient(config, { timeoutMs: 10_000 });
  t.teardown(() => client.close());
  let floodClosed: number | undefined;
  void client.disconnected.then((d) => { floodClosed = d.code ?? -1; });

  await t.test('10,000 malformed or hostile frames each get the spec error with the right id, notifications get nothing, and memory does not grow with the flood', async (t) => {
    const flood = new Flood(client);
    const t0 = performance.now();
    await flood.run(new Mix(0xC0FFEE), WARMUP);
    await new Promise((r) => setTimeout(r, 100));
    flood.detach();
    t.same([flood.unexpected, [...flood.expected.keys()], flood.problems], [[], [], []], `warm-up (${WARMUP} frames): every reply as expected`);
    const warmupMs = performance.now() - t0;
    const before = await settledMemory();
    const t1 = performance.now();
    const main = new Flood(client);
    await main.run(new Mix(0xBADF00D), FLOOD);
    const floodMs = performance.now() - t1;
    // Anything still owed, or a late stray reply (e.g. to a notification), shows up within this idle time.
    await new Promise((r) => setTimeout(r, 300));
    main.detach();
    const after = await settledMemory();

    t.comment(`flood: ${FLOOD} frames, ${(main.bytesSent / 1e6).toFixed(1)} MB, ${main.owed} replies owed, ${main.events} agent events seen, ${Math.round(floodMs)} ms (warm-up ${Math.round(warmupMs)} ms); kinds: ${[...main.kinds].map(([k, v]) => `${k}=${v}`).join(' ')}`);
    t.ok(main.kinds.get('notification')! > 300 && main.kinds.get('invalid-params')! > 1000 && main.kinds.get('parse')! > 300, 'every category was sent hundreds of times');
    t.equal(main.received, main.owed, `exactly one reply frame per request frame (${main.owed}), none for the ${FLOOD - main.owed} notification-only frames`);
    t.same(main.unexpected, [], 'no reply that was not owed (wrong id, wrong code, wrong field, or a reply to a notification)');
    t.same([...main.expected.entries()], [], 'every owed reply arrived with the expected id, code and field');
    t.same(main.problems, [], 'every reply is a well-formed JSON-RPC 2.0 response (and -32602 names its field)');
    t.equal(floodClosed, undefined, 'the connection survived the flood');
    t.same(faults.filter((l) => l.includes('"level":"error"')), [], 'no hostile frame was logged as a server fault');

    const rss = after.rss - before.rss;
    const heap = after.heapUsed - before.heapUsed;
    t.comment(`memory (agent + client, ${forceGc ? 'after GC' : 'no GC available'}): rss ${mib(before.rss)} -> ${mib(after.rss)} (${mib(rss)}), heapUsed ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} (${mib(heap)})`);
    t.ok(rss < RSS_BOUND, `RSS grew ${mib(rss)} over the flood: less than ${mib(RSS_BOUND)}`);
    t.ok(heap < HEAP_BOUND, `V8 heap grew ${mib(heap)} over the flood: less than ${mib(HEAP_BOUND)}`);
  });

  await t.test('frames over rpc.maxMessageBytes close the connection with 1009; a frame of exactly the limit is served; a new connection works', async (t) => {
    // Exactly the limit, in bytes: answered normally (-32602 for the padding parameter).
    const head = '{"jsonrpc":"2.0","id":"edge","method":"Host.ping2","params":{"pad":"';
    const tail = '"}}';
    const exact = head + 'p'.repeat(MAX_MESSAGE_BYTES - head.length - tail.length) + tail;
    t.equal(Buffer.byteLength(exact), MAX_MESSAGE_BYTES, 'the edge frame is exactly the limit in bytes');
    const c0 = await connectClient(config, { timeoutMs: 10_000 });
    t.teardown(() => c0.close());
    const edgeReply = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply to the frame of exactly the limit within 5 s')), 5_000);
      onRaw(c0, (text) => { if (text.includes('"edge"')) { clearTimeout(timer); resolve(text); } });
    });
    await sendRaw(c0, exact);
    const edge = JSON.parse(await edgeReply) as { id: unknown; error?: { code: number; data?: { field?: string } } };
    t.same([edge.id, edge.error?.code, edge.error?.data?.field], ['edge', -32602, 'params.pad'], 'a frame of exactly rpc.maxMessageBytes is read and answered');

    const oversized: { what: string; frame: string | Buffer }[] = [
      { what: 'limit + 1 bytes of text', frame: exact.replace('"pad":"', '"pad":"p') },
      { what: '1 MiB of text', frame: 'x'.repeat(MiB) },
      { what: '22,000 three-byte characters (66,000 bytes, 22,000 chars)', frame: JSON.stringify({ jsonrpc: '2.0', id: 1, method: '€'.repeat(22_000) }) },
      { what: 'limit + 1 bytes, binary', frame: Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20) },
    ];
    for (const o of oversized) {
      t.ok(Buffer.byteLength(o.frame) > MAX_MESSAGE_BYTES, `${o.what}: over the limit`);
      const c = await connectClient(config, { timeoutMs: 5_000 });
      let replies = 0;
      onRaw(c, (text) => { if (!isEvent(JSON.parse(text))) replies++; });
      const closed = closeCode(c, 5_000);
      await sendRaw(c, o.frame).catch(() => {}); // the agent may close while we are still writing
      t.equal(await closed, 1009, `${o.what}: the agent closes the connection with 1009 (message too big)`);
      t.equal(replies, 0, `${o.what}: and sends no JSON-RPC answer for it`);
      await c.close();
    }

    const fresh = await connectClient(config, { timeoutMs: 5_000 });
    t.teardown(() => fresh.close());
    t.same(await fresh.call('Host.ping2', {}), {}, 'a new connection after the oversized frames answers Host.ping2');
  });

  await t.test('after all that, the agent still answers Host.ping2 on the flooded connection', async (t) => {
    t.equal(floodClosed, undefined, 'the flooded connection is still open');
    t.same(await client.call('Host.ping2', {}), {}, 'Host.ping2 answers {}');
  });

  await t.test('unknown parameter names that are Object.prototype members are refused like any other unknown parameter', async (t) => {
    // `key in schema.properties` would walk the prototype chain and let these through.
    let n = 0;
    for (const key of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const id = `proto-${++n}`;
      const reply = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reply within 5 s')), 5_000);
        const off = onRaw(client, (text) => { if (text.includes(`"${id}"`)) { clearTimeout(timer); off(); resolve(text); } });
      });
      await sendRaw(client, `{"jsonrpc":"2.0","id":"${id}","method":"Host.ping2","params":{"${key}":1}}`);
      const r = JSON.parse(await reply) as { error?: { code: number; data?: { field?: string } } };
      t.same([r.error?.code, r.error?.data?.field], [-32602, `params.${key}`], `Host.ping2 {"${key}":1} is refused with -32602 naming params.${key}`);
    }
  });
});
