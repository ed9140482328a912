// The byte bounds on their own, with small settings so that they bite fast:
// many non-reading clients together are held to the total bound (each
// paused at its own bound or at its share of the total) and then closed for
// not reading, and a client that reads slowly is paused and resumed but
// never closed, and gets every reply.
// The agent runs in this process; loopback only; every wait is bounded.
import t from 'tap';
import { openRpcDocument } from '../../../api/openrpc.js';
import { FIRST_ESTIMATE_FRACTION } from '../../../agent/rpc/flow.js';
import { VERSION } from '../../../agent/version.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent } from '../harness.js';
import { createLogger } from '../../../agent/log.js';
import { clientCreds, NonReadingClient, SlowReader } from './hostile-clients.js';

const MiB = 1024 * 1024;
const discover = (i: number): string => `{"jsonrpc":"2.0","id":${i},"method":"rpc.discover"}`;

function capture(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger({ level: 'info', sink: (l) => { lines.push(JSON.parse(l) as Record<string, unknown>); } }) };
}

t.test('six non-reading clients together are held to the total bound, paused at their bound or their share, then closed', async (t) => {
  const { log, lines } = capture();
  const TOTAL = 4 * MiB;
  // The first guess of a reply's size must cover the largest reply, or the first burst is under-counted.
  const discoverBytes = JSON.stringify(openRpcDocument(VERSION)).length;
  t.ok(discoverBytes <= 2 * MiB * FIRST_ESTIMATE_FRACTION, `rpc.discover's document (${discoverBytes} bytes) is within the first reply estimate (${2 * MiB * FIRST_ESTIMATE_FRACTION})`);
  const { config, stop } = await startAgent({ 'rpc.maxConnectionBytes': 2 * MiB, 'rpc.maxTotalBytes': TOTAL, 'rpc.stalledCloseMs': 2_000 }, log);
  t.teardown(stop);
  const creds = clientCreds(config['pki.dir']);
  const clients = await Promise.all(Array.from({ length: 6 }, () => NonReadingClient.open(config['rpc.port'], creds)));
  t.teardown(() => { for (const c of clients) c.destroy(); });
  for (const c of clients) c.pipeline(300, discover);
  const closed = () => lines.filter((l) => l.msg === 'connection closed for not reading');
  const until = performance.now() + 30_000;
  while (closed().length < clients.length && performance.now() < until) await sleep(100);

  const paused = lines.filter((l) => l.msg === 'connection paused');
  const peakTotal = Math.max(...paused.map((l) => Number(l.totalBytes)));
  t.equal(closed().length, clients.length, 'every non-reading client was closed');
  t.ok(clients.every((c) => paused.some((l) => l.port === c.localPort)), 'every one was paused first');
  t.ok(paused.some((l) => l.over === 'share'), 'some were paused at their share of the total, under their own bound');
  // Each may overshoot by about one reply (~100 KB): the estimate of a reply is learnt from the previous ones.
  t.ok(peakTotal <= TOTAL + clients.length * 128 * 1024, `the total held and owed stayed within the bound and one reply each (peak ${(peakTotal / MiB).toFixed(2)} MiB, bound ${TOTAL / MiB} MiB)`);
  t.ok(closed().every((l) => l.code === 1008 || l.code === 1013), 'closed with 1008 or 1013');
});

t.test('a client that stops reading while under every bound is paused (stalled) at half the close time, then closed', async (t) => {
  const { log, lines } = capture();
  // No byte bound, so only the stall can pause it; 200 requests stay under the in-flight limit (256),
  // and their ~20 MB of replies are more than loopback's socket buffers take.
  const { config, stop } = await startAgent({ 'rpc.maxConnectionBytes': 0, 'rpc.maxTotalBytes': 0, 'rpc.stalledCloseMs': 2_000 }, log);
  t.teardown(stop);
  const client = await NonReadingClient.open(config['rpc.port'], clientCreds(config['pki.dir']));
  t.teardown(() => client.destroy());
  client.pipeline(200, discover);
  const closedLine = () => lines.findIndex((l) => l.msg === 'connection closed for not reading' && l.port === client.localPort);
  const until = performance.now() + 20_000;
  while (closedLine() < 0 && performance.now() < until) await sleep(100);
  const paused = lines.findIndex((l) => l.msg === 'connection paused' && l.port === client.localPort);
  t.ok(closedLine() >= 0, 'it was closed for not reading');
  t.ok(paused >= 0 && paused < closedLine(), 'it was paused before it was closed');
  t.equal(lines[paused]?.['over'], 'stalled', 'for its stall, not a byte bound or its requests in flight');
});

t.test('a client that reads slowly is paused and resumed but never closed, and gets all 300 replies', async (t) => {
  const { log, lines } = capture();
  const { config, stop } = await startAgent({ 'rpc.maxConnectionBytes': 2 * MiB, 'rpc.stalledCloseMs': 3_000 }, log);
  t.teardown(stop);
  // 4 MB/s: the ~30 MB of replies take ~8 s, far longer than the 3 s a connection may stay over its bound.
  const reader = await SlowReader.open(config['rpc.port'], clientCreds(config['pki.dir']), 4 * MiB);
  t.teardown(() => reader.client.destroy());
  reader.client.pipeline(300, discover);
  const until = performance.now() + 40_000;
  while (reader.messages < 300 && !reader.closed && performance.now() < until) await sleep(100);
  t.equal(reader.messages, 300, 'every reply arrived');
  t.notOk(reader.closed, 'the connection is still open');
  t.ok(lines.some((l) => l.msg === 'connection paused' && l.port === reader.localPort), 'it was paused on the way (its replies outran its reading)');
  t.notOk(lines.some((l) => l.msg === 'connection closed for not reading'), 'it was never closed for not reading');
});
