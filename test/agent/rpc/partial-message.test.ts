// A WebSocket message begun and never finished closes its connection after
// rpc.partialMessageTimeoutMs (issue 14 §5: 100 connections each holding an
// unfinished ~8 MiB message stayed open past 60 s). Raw TLS clients send
// half a frame, a frame header cut short, or the first fragment of a
// message, and then nothing; a client that finishes its messages and then
// idles is left alone.
import t from 'tap';
import { startAgent } from '../harness.js';
import { createLogger } from '../../../agent/log.js';
import { clientCreds, textFrame, NonReadingClient } from './hostile-clients.js';

const BOUND_MS = 2_000;
/** Room for a loaded machine: the close may come this much after the bound. */
const SLACK_MS = 4_000;
const ping = textFrame('{"jsonrpc":"2.0","id":1,"method":"Host.ping2"}');

/** Sends `bytes`, then waits for the agent to close the connection; the ms from the send to the close, or undefined if still open after `waitMs`. */
async function closedAfter(client: NonReadingClient, bytes: Buffer, waitMs: number): Promise<number | undefined> {
  const t0 = performance.now();
  client.sock.write(bytes);
  const closed = await client.closedByPeer(waitMs);
  return closed ? Math.round(performance.now() - t0) : undefined;
}

t.test(`a message left incomplete (half a frame, a header cut short, an unfinished fragmented message) is closed after rpc.partialMessageTimeoutMs; a finished one is not`, async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'info', sink: (l) => { lines.push(JSON.parse(l) as Record<string, unknown>); } });
  const { config, stop } = await startAgent({ 'rpc.partialMessageTimeoutMs': BOUND_MS }, log);
  t.teardown(stop);
  const creds = clientCreds(config['pki.dir']);
  const open = () => NonReadingClient.open(config['rpc.port'], creds);

  const big = textFrame(`{"jsonrpc":"2.0","id":1,"method":"Host.ping2","params":{"pad":"${'x'.repeat(1024 * 1024)}"}}`);
  const firstFragment = Buffer.from(textFrame('{"jsonrpc":"2.0",'));
  firstFragment[0] = 0x01; // FIN clear, opcode text: more fragments were to follow
  const cases: [string, Buffer][] = [
    ['half of a 1 MiB frame', big.subarray(0, 512 * 1024)],
    ['2 bytes of a frame header announcing 1 MiB', big.subarray(0, 2)],
    ['the first fragment of a message, and no more', firstFragment],
    ['a whole message, then half of the next', Buffer.concat([ping, big.subarray(0, 1000)])],
  ];
  const clients = await Promise.all(cases.map(() => open()));
  t.teardown(() => { for (const c of clients) c.destroy(); });
  const idle = await open();
  t.teardown(() => idle.destroy());

  const [results, idleClosed] = await Promise.all([
    Promise.all(cases.map(([, bytes], i) => closedAfter(clients[i]!, bytes, BOUND_MS + SLACK_MS))),
    closedAfter(idle, Buffer.concat([ping, ping]), BOUND_MS * 2 + 1_000),
  ]);
  cases.forEach(([what], i) => {
    const ms = results[i];
    t.ok(ms !== undefined && ms >= BOUND_MS - 200 && ms <= BOUND_MS + SLACK_MS, `${what}: closed ${ms ?? 'never'} ms after (bound ${BOUND_MS} ms)`);
  });
  t.equal(idleClosed, undefined, `a client whose messages are complete stays connected past twice the bound`);
  const logged = lines.filter((l) => l.msg === 'connection closed: message left incomplete');
  t.equal(logged.length, cases.length, 'one log line per connection closed');
  t.ok(logged.every((l) => l.code === 1008 && typeof l.peer === 'string' && (l.peer as string).includes('@127.0.0.1')), 'with 1008 and the peer named');
});
