// An engine stand-in that runs INSIDE the peer namespace (`ip netns exec
// <peer> node peer-client.js`), so every byte it sends to the agent crosses
// the veth "nic" under test. The test drives it with one JSON command per
// line on stdin and reads one JSON answer per line on stdout:
//   {id, op: 'connect', conn, url, connectTimeoutMs?, timeoutMs?} → {id} | {id, error}
//   {id, op: 'call', conn, method, params, timeoutMs?}            → {id, result} | {id, error: {code, message, data}}
//   {id, op: 'close', conn}                                       → {id}
// and events as {event, conn, params}. Several named connections may be open
// at once (a long setupNetworks on one, confirmations on another). The mTLS
// files come from HV_PKI_DIR; the agent's certificate names localhost.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pkiPaths } from '../../../agent/pki/dev-ca.js';
import { HostvisorClient, RpcCallError } from '../../../api/client/client.js';
import type { MethodName } from '../../../api/schema.js';

interface Command {
  id: number;
  op: 'connect' | 'call' | 'close';
  conn: string;
  url?: string;
  connectTimeoutMs?: number;
  timeoutMs?: number;
  method?: string;
  params?: unknown;
}

const p = pkiPaths(process.env['HV_PKI_DIR'] ?? '');
const tls = { key: readFileSync(p.clientKey), cert: readFileSync(p.clientCert), ca: readFileSync(p.caCert) };
const conns = new Map<string, HostvisorClient>();
const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n'); };

function drop(name: string): void {
  const c = conns.get(name);
  conns.delete(name);
  // At once, not politely: a cut-off peer would never answer the close handshake.
  if (c) void c.close({ graceMs: 0 });
}

async function handle(m: Command): Promise<Record<string, unknown>> {
  switch (m.op) {
    case 'connect': {
      drop(m.conn);
      const c = await HostvisorClient.connect({
        url: m.url!, servername: 'localhost', ...tls, timeoutMs: m.timeoutMs ?? 30_000, connectTimeoutMs: m.connectTimeoutMs ?? 3_000,
      });
      void c.disconnected.then(() => { if (conns.get(m.conn) === c) conns.delete(m.conn); });
      c.onEvent((event, params) => out({ event, conn: m.conn, params }));
      conns.set(m.conn, c);
      return {};
    }
    case 'call': {
      const c = conns.get(m.conn);
      if (!c) throw new Error(`no open connection "${m.conn}"`);
      const opts = m.timeoutMs !== undefined ? { timeoutMs: m.timeoutMs } : {};
      return { result: await c.call(m.method as MethodName, m.params as never, opts) };
    }
    case 'close':
      drop(m.conn);
      return {};
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let m: Command;
  try { m = JSON.parse(line) as Command; } catch { return; }
  handle(m).then(
    (r) => out({ id: m.id, ...r }),
    (e: unknown) => out({ id: m.id, error: e instanceof RpcCallError ? { code: e.code, message: e.message, data: e.data } : { message: (e as Error)?.message ?? String(e) } }),
  );
}).on('close', () => {
  for (const name of [...conns.keys()]) drop(name);
  process.exit(0);
});
