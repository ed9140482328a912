// The engine listener's mutual TLS: a client without a certificate, or with a
// certificate from another CA, is refused during the TLS handshake, before
// any HTTP/WebSocket byte is answered; a correct client still works after.
// Only loopback traffic; every wait is bounded.
import t from 'tap';
import tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startAgent, connectClient } from '../harness.js';
import { ensureDevPki, pkiPaths } from '../../../agent/pki/dev-ca.js';
import { createLogger } from '../../../agent/log.js';

const PROBE_TIMEOUT_MS = 10_000;

interface Probe {
  /** The client saw the TLS handshake complete ('secureConnect'). */
  secureConnected: boolean;
  /** The first socket error, if any. */
  error: (Error & { code?: string }) | undefined;
  /** Every byte the server sent after the handshake (the HTTP answer to our upgrade request). */
  received: string;
  closed: boolean;
  timedOut: boolean;
}

/**
 * Opens a raw TLS connection to the agent; once the handshake completes on our
 * side, sends a WebSocket upgrade request and records whatever comes back.
 * With TLS 1.3 the client finishes its handshake before the server has checked
 * the client certificate, so the refusal arrives as an alert after
 * 'secureConnect'; with TLS 1.2 'secureConnect' never fires.
 */
function probe(port: number, o: { ca: Buffer; key?: Buffer; cert?: Buffer; maxVersion?: tls.SecureVersion }): Promise<Probe> {
  return new Promise((resolve) => {
    const res: Probe = { secureConnected: false, error: undefined, received: '', closed: false, timedOut: false };
    const sock = tls.connect({
      host: '127.0.0.1', port, servername: 'localhost', ca: o.ca,
      ...(o.key ? { key: o.key } : {}), ...(o.cert ? { cert: o.cert } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
    });
    const timer = setTimeout(() => { res.timedOut = true; sock.destroy(); }, PROBE_TIMEOUT_MS);
    sock.on('secureConnect', () => {
      res.secureConnected = true;
      sock.write([
        'GET / HTTP/1.1', 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', '', '',
      ].join('\r\n'));
    });
    sock.on('data', (d: Buffer) => {
      res.received += d.toString('latin1');
      // A 101 answer means we got through; nothing more to learn.
      if (res.received.includes('\r\n\r\n')) sock.destroy();
    });
    sock.on('error', (e) => { res.error = e; });
    sock.on('close', () => { res.closed = true; clearTimeout(timer); resolve(res); });
  });
}

t.test('mutual TLS: clients without a certificate or with another CA\'s certificate are refused in the TLS handshake; a correct client still works', async (t) => {
  const logLines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'info', sink: (line) => { logLines.push(JSON.parse(line) as Record<string, unknown>); } });
  const { config, stop } = await startAgent({}, log);
  t.teardown(stop);
  const port = config['rpc.port'];
  const ours = pkiPaths(config['pki.dir']);
  const ourCa = readFileSync(ours.caCert);

  const otherDir = mkdtempSync(join(tmpdir(), 'hv-other-pki-'));
  t.teardown(() => rmSync(otherDir, { recursive: true, force: true }));
  const { paths: other } = await ensureDevPki(otherDir, { caName: 'Some other CA', hostNames: ['localhost'] });
  const otherKey = readFileSync(other.clientKey);
  const otherCert = readFileSync(other.clientCert);

  const refusedLogged = () => logLines.filter((l) => l.msg === 'TLS handshake refused').length;
  const connectedLogged = () => logLines.filter((l) => l.msg === 'engine connected').length;

  // Positive control: the same raw probe, with our client certificate, does get the 101.
  const good = await probe(port, { ca: ourCa, key: readFileSync(ours.clientKey), cert: readFileSync(ours.clientCert) });
  t.equal(good.error, undefined, 'control: a client with our CA\'s certificate completes the handshake without error');
  t.match(good.received, /^HTTP\/1\.1 101 /, 'control: the raw probe sees the WebSocket upgrade answer (101) when the certificate is right');
  t.equal(connectedLogged(), 1, 'control: the agent logged one engine connection');

  // Without a certificate, OpenSSL refuses the handshake with an alert
  // (TLS 1.3: 116 certificate required; TLS 1.2: 40 handshake failure). With
  // an unknown CA's certificate, Node's TLS server checks the chain when the
  // handshake completes on its side and destroys the socket without an alert:
  // the client sees a reset before its handshake completes (TLS 1.2) or a
  // close with no data right after it (TLS 1.3, where the client finishes
  // first). Either way the agent's tlsClientError handler fires and the
  // upgrade request gets no answer.
  const cases: { name: string; key?: Buffer; cert?: Buffer; clientError: RegExp }[] = [
    { name: 'no client certificate', clientError: /^ERR_SSL_.*(CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE)/ },
    { name: 'a client certificate from another CA', key: otherKey, cert: otherCert, clientError: /^(none|ECONNRESET|ERR_SSL_.*(UNKNOWN_CA|BAD_CERTIFICATE))$/ },
  ];
  for (const c of cases) {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const before = refusedLogged();
      const r = await probe(port, { ca: ourCa, ...(c.key ? { key: c.key, cert: c.cert! } : {}), maxVersion });
      const what = `${c.name} (${maxVersion})`;
      t.notOk(r.timedOut, `${what}: the server ends the connection promptly (not left hanging)`);
      t.ok(r.closed, `${what}: the connection is closed`);
      t.match(r.error?.code ?? 'none', c.clientError, `${what}: the client sees the TLS-level refusal (${r.error?.code ?? 'no error'}: ${r.error?.message ?? 'closed'})`);
      t.equal(r.received, '', `${what}: not one HTTP byte came back to the upgrade request`);
      if (maxVersion === 'TLSv1.2') t.notOk(r.secureConnected, `${what}: the handshake itself never completes`);
      // The server records the refusal from its tlsClientError handler (bounded wait).
      const until = Date.now() + 2_000;
      while (refusedLogged() === before && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
      t.equal(refusedLogged(), before + 1, `${what}: the agent logged it as a refused TLS handshake`);
    }
  }
  t.equal(connectedLogged(), 1, 'no refused client ever reached the WebSocket layer (still one engine connection logged)');

  // The same refusal seen through a WebSocket client: an error, never 'open' or 'upgrade'.
  for (const c of cases) {
    const outcome = await new Promise<{ opened: boolean; upgraded: boolean; error: Error | undefined }>((resolve) => {
      const ws = new WebSocket(`wss://localhost:${port}/`, {
        ca: ourCa, ...(c.key ? { key: c.key, cert: c.cert! } : {}), perMessageDeflate: false, handshakeTimeout: PROBE_TIMEOUT_MS,
      });
      const o = { opened: false, upgraded: false, error: undefined as Error | undefined };
      ws.on('upgrade', () => { o.upgraded = true; });
      ws.on('open', () => { o.opened = true; ws.close(); });
      ws.on('error', (e) => { o.error = e; });
      ws.on('close', () => resolve(o));
    });
    t.notOk(outcome.upgraded, `ws client with ${c.name}: no HTTP upgrade response`);
    t.notOk(outcome.opened, `ws client with ${c.name}: the WebSocket never opens`);
    t.ok(outcome.error, `ws client with ${c.name}: fails with an error (${outcome.error?.message ?? 'none'})`);
  }

  // After all the refusals, a correct client still works.
  const client = await connectClient(config, { timeoutMs: 10_000 });
  t.teardown(() => client.close());
  t.same(await client.call('Host.ping2', {}), {}, 'a client with our CA\'s certificate connects and Host.ping2 answers {}');
});
