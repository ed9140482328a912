// A batch's reply is bounded in bytes (issue 14 §5): a 5 KB batch of 100
// rpc.discover used to get a 10.3 MB reply, more than the 8 MiB the agent
// takes in. Past rpc.maxBatchReplyBytes the remaining entries get error 1012,
// in order, each with its id; the reply stays within the bound plus a short
// error per entry left out. Through a real agent, over mTLS WebSocket.
import t from 'tap';
import WebSocket from 'ws';
import { startAgent } from '../harness.js';
import { clientCreds } from './hostile-clients.js';
import { ERRORS } from '../../../api/errors.js';
import type { Config } from '../../../agent/config/settings.js';

const MiB = 1024 * 1024;
const batchOf = (n: number, method = 'rpc.discover'): string => JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i, method })));

/** Sends one frame on a fresh connection and resolves to the raw reply (bounded wait). */
function roundTrip(config: Config, frame: string): Promise<Buffer> {
  const creds = clientCreds(config['pki.dir']);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://localhost:${config['rpc.port']}/`, { ...creds, maxPayload: 64 * MiB });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no reply within 30 s')); }, 30_000);
    ws.on('open', () => ws.send(frame));
    ws.on('message', (data) => { clearTimeout(timer); ws.close(); resolve(data as Buffer); });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

type Entry = { id: number; result?: unknown; error?: { code: number; data?: { maxBatchReplyBytes: number } } };

t.test('100 rpc.discover in one 5 KB batch: the reply stays within the default bound (8 MiB); the entries past it get 1012, in order', async (t) => {
  const { config, stop } = await startAgent();
  t.teardown(stop);
  t.equal(config['rpc.maxBatchReplyBytes'], config['rpc.maxMessageBytes'], 'the default bound is the inbound message limit');
  const frame = batchOf(100);
  t.ok(frame.length < 6_000, `the batch is ${frame.length} bytes`);
  const reply = await roundTrip(config, frame);
  const entries = JSON.parse(reply.toString('utf8')) as Entry[];
  const answered = entries.filter((e) => e.result !== undefined).length;
  const leftOut = entries.filter((e) => e.error?.code === ERRORS.batchReplyTooLarge.code);
  t.comment(`reply ${reply.length} bytes: ${answered} results, ${leftOut.length} left out with 1012`);
  t.equal(entries.length, 100, 'one entry per request');
  t.ok(reply.length <= config['rpc.maxBatchReplyBytes'] + 100 * 300, `reply of ${reply.length} bytes is within the bound plus the short errors`);
  t.ok(answered > 0 && leftOut.length > 0 && answered + leftOut.length === 100, 'some results fit, the rest are left out');
  t.same(entries.map((e) => e.id), Array.from({ length: 100 }, (_, i) => i), 'entries in request order');
  t.ok(entries.slice(0, answered).every((e) => e.result !== undefined), 'the results are the first entries, the errors the rest');
  t.equal(leftOut[0]?.error?.data?.maxBatchReplyBytes, config['rpc.maxBatchReplyBytes'], 'the error names the bound');
});

t.test('with rpc.maxBatchReplyBytes = 1 MiB the same batch gets a reply under 1 MiB and 1012 for the rest; a small batch is untouched; 0 is no bound', async (t) => {
  const { config, stop } = await startAgent({ 'rpc.maxBatchReplyBytes': MiB });
  t.teardown(stop);
  const one = (await roundTrip(config, batchOf(1))).length;
  const reply = await roundTrip(config, batchOf(100));
  const entries = JSON.parse(reply.toString('utf8')) as Entry[];
  const answered = entries.filter((e) => e.result !== undefined).length;
  t.equal(answered, Math.floor((MiB - 1) / (one - 1)), `as many results as fit in 1 MiB (one discover reply is ${one} bytes)`);
  t.ok(reply.length <= MiB + 100 * 300, `reply of ${reply.length} bytes`);
  t.equal(entries.filter((e) => e.error?.code === 1012).length, 100 - answered);
  const pings = JSON.parse((await roundTrip(config, batchOf(100, 'Host.ping2'))).toString('utf8')) as Entry[];
  t.ok(pings.length === 100 && pings.every((e) => e.result !== undefined), 'a batch of 100 pings gets all its results');

  const unbounded = await startAgent({ 'rpc.maxBatchReplyBytes': 0 });
  t.teardown(unbounded.stop);
  const all = JSON.parse((await roundTrip(unbounded.config, batchOf(20))).toString('utf8')) as Entry[];
  t.ok(all.every((e) => e.result !== undefined), '0: no bound');
});
