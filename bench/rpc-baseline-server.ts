// The baseline for bench/rpc.ts: the least a JSON-RPC-over-WebSocket-over-mTLS
// server can do. Same TLS settings as the agent's listener (client
// certificate required and checked against the CA, TLS >= 1.2), `ws` with
// permessage-deflate off, and json-rpc-2.0's JSONRPCServer with one method,
// Host.ping2, returning {}. No validation, no logging, no timeouts, no flow
// control: what is left of a call's cost is TLS + WebSocket + JSON + the
// library's dispatch.
//
// Used in-process by bench/rpc.ts; can also run alone (loopback only):
//   node dist/bench/rpc-baseline-server.js <pki dir> [port]
// (<pki dir> laid out as agent/pki/dev-ca.ts makes it).
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { JSONRPCServer } from 'json-rpc-2.0';
import { pkiPaths } from '../agent/pki/dev-ca.js';

export interface BaselineOptions {
  host: string;
  port: number;
  key: Buffer | string;
  cert: Buffer | string;
  ca: Buffer | string;
  maxPayload?: number;
}

export interface BaselineServer {
  port: number;
  close: () => Promise<void>;
}

export async function startBaselineServer(o: BaselineOptions): Promise<BaselineServer> {
  const rpc = new JSONRPCServer();
  rpc.addMethod('Host.ping2', () => ({}));
  const https = createServer({
    key: o.key, cert: o.cert, ca: o.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2',
  });
  const wss = new WebSocketServer({ server: https, perMessageDeflate: false, maxPayload: o.maxPayload ?? 8 * 1024 * 1024 });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      void rpc.receiveJSON(data.toString()).then((reply) => {
        if (reply) ws.send(JSON.stringify(reply));
      });
    });
    ws.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    https.once('error', reject);
    https.listen(o.port, o.host, () => { https.off('error', reject); resolve(); });
  });
  const port = (https.address() as AddressInfo).port;
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      https.closeAllConnections();
      https.close(() => resolve());
    }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node dist/bench/rpc-baseline-server.js <pki dir> [port]\n');
    process.exit(2);
  }
  const p = pkiPaths(dir);
  const s = await startBaselineServer({
    host: '127.0.0.1', port: Number(process.argv[3] ?? 0),
    key: readFileSync(p.hostKey), cert: readFileSync(p.hostCert), ca: readFileSync(p.caCert),
  });
  process.stderr.write(`baseline JSON-RPC server on wss://127.0.0.1:${s.port}/ (Ctrl-C to stop)\n`);
  process.once('SIGINT', () => { void s.close().then(() => process.exit(0)); });
}
