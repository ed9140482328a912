// The engine-facing listener: JSON-RPC 2.0 over WebSocket over mutual TLS.
// A client certificate signed by the configured CA is required; anything else
// is refused during the TLS handshake, before any WebSocket or JSON work.
//
// Hostile or broken peers are bounded at each stage: from accept to upgrade
// by admission.ts (a deadline, caps per address and in all), and once
// upgraded by flow.ts (requests in flight, and bytes held per connection
// and in all, with offenders paused and then closed).
import { createServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Caller, Dispatcher } from './dispatcher.js';
import type { Logger } from '../log.js';
import type { Reply } from './reply.js';
import { Admission } from './admission.js';
import { FlowControl, newFlowConn, type FlowConn } from './flow.js';
import { PartialMessageBound } from './partial-message.js';
import { clientRole, subjectOUs, type IdentityRules } from './identity.js';
import { PartialMessageTimeoutError } from './errors.js';

export interface TlsFiles {
  key: Buffer | string;
  cert: Buffer | string;
  ca: Buffer | string;
}

export interface RpcServerOptions {
  host: string;
  port: number;
  tls: TlsFiles;
  maxMessageBytes: number;
  /** Requests in flight per connection before the agent stops reading from it. */
  maxInFlightPerConnection: number;
  /** Bytes one connection may hold (queued requests + unsent replies) before it is not read. */
  maxConnectionBytes: number;
  /** The same across all connections. */
  maxTotalBytes: number;
  /** A connection that takes none of its pending replies this long is closed. */
  stalledCloseMs: number;
  /** A message begun and not finished this long closes its connection; 0: no bound. */
  partialMessageTimeoutMs: number;
  tlsHandshakeTimeoutMs: number;
  /** From TCP accept to a completed upgrade; 0: no bound. */
  upgradeTimeoutMs: number;
  /** 0: no cap. */
  maxConnectionsPerPeer: number;
  /** 0: no cap. */
  maxConnections: number;
  /** Which certificate identities (subject OU) may connect, and with what role. */
  identities: IdentityRules;
  log: Logger;
}

interface Conn extends FlowConn {
  id: number;
  /** Passed with each of its frames to the dispatcher. */
  caller: Caller;
}

export class RpcServer {
  private https: HttpsServer | undefined;
  private wss: WebSocketServer | undefined;
  private readonly conns = new Set<Conn>();
  private nextId = 1;
  private accepting = true;
  private readonly admission: Admission;
  private readonly flow: FlowControl;
  private readonly log: Logger;

  constructor(private readonly dispatcher: Dispatcher, private readonly opts: RpcServerOptions) {
    this.log = opts.log;
    this.admission = new Admission({
      upgradeTimeoutMs: opts.upgradeTimeoutMs, maxConnectionsPerPeer: opts.maxConnectionsPerPeer, maxConnections: opts.maxConnections, log: opts.log,
    });
    this.flow = new FlowControl({
      maxInFlight: opts.maxInFlightPerConnection, maxConnectionBytes: opts.maxConnectionBytes, maxTotalBytes: opts.maxTotalBytes,
      stalledCloseMs: opts.stalledCloseMs, log: opts.log,
    }, (c, text) => { void this.run(c as Conn, text); });
  }

  async listen(): Promise<AddressInfo> {
    const o = this.opts;
    const https = createServer({
      key: o.tls.key,
      cert: o.tls.cert,
      ca: o.tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      handshakeTimeout: o.upgradeTimeoutMs > 0 ? Math.min(o.tlsHandshakeTimeoutMs, o.upgradeTimeoutMs) : o.tlsHandshakeTimeoutMs,
    }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('hostvisord speaks JSON-RPC over WebSocket\n');
    });
    https.on('tlsClientError', (err, socket) => {
      // authorizationError says why a certificate was refused (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE).
      this.log.info('TLS handshake refused', { err, reason: socket.authorizationError?.toString(), peer: socket.remoteAddress });
    });
    this.admission.attach(https);
    const wss = new WebSocketServer({
      server: https, perMessageDeflate: false, maxPayload: o.maxMessageBytes,
      // A certificate from our CA is not enough: its identity (OU) must be one allowed here.
      verifyClient: ({ req }, done) => {
        const socket = req.socket as TLSSocket;
        const cert = socket.getPeerCertificate();
        if (clientRole(cert, o.identities) !== undefined) { done(true); return; }
        this.log.info('connection refused: certificate identity not allowed', {
          peer: `${cert.subject?.CN ?? '?'}@${socket.remoteAddress ?? '?'}`, ous: subjectOUs(cert), allowed: [...o.identities.full, ...o.identities.peerHost],
        });
        done(false, 403, 'certificate identity not allowed');
      },
    });
    wss.on('connection', (ws, req) => {
      const socket = req.socket as TLSSocket;
      this.admission.upgraded(socket);
      this.onConnection(ws, socket);
    });
    this.https = https;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      https.once('error', reject);
      https.listen(o.port, o.host, () => { https.off('error', reject); resolve(); });
    });
    const addr = https.address() as AddressInfo;
    this.log.info('listening', {
      host: addr.address, port: addr.port, maxMessageBytes: o.maxMessageBytes, maxConnectionBytes: o.maxConnectionBytes, maxTotalBytes: o.maxTotalBytes,
    });
    return addr;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** Bytes held for all connections (queued requests + unsent replies), as last counted. */
  get heldBytes(): number {
    return this.flow.totalBytes;
  }

  /** Sends a JSON-RPC notification to every connected engine. */
  broadcast(method: string, params: Record<string, unknown>): void {
    const text = JSON.stringify({ jsonrpc: '2.0', method, params });
    for (const c of this.conns) this.flow.send(c, text);
  }

  /** Stops accepting connections and requests; in-flight requests finish. */
  stopAccepting(): void {
    this.accepting = false;
    this.https?.close();
  }

  /** Waits (bounded) for in-flight requests, then closes every connection. */
  async close(drainMs = 5_000): Promise<void> {
    this.stopAccepting();
    this.admission.closeAll();
    const until = Date.now() + drainMs;
    while ([...this.conns].some((c) => c.inFlight > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.close(1001, 'agent stopping');
    // A peer that cannot answer the close handshake (cut off by a network
    // change, say) must not keep the process alive for ws's 30 s close timeout.
    const closeBy = Date.now() + 1_000;
    while (this.conns.size > 0 && Date.now() < closeBy) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.terminate();
    this.flow.stop();
    this.wss?.close();
    this.https?.closeAllConnections();
  }

  private onConnection(ws: WebSocket, socket: TLSSocket): void {
    const cert = socket.getPeerCertificate();
    const peer = `${cert.subject?.CN ?? '?'}@${socket.remoteAddress ?? '?'}`;
    const port = socket.remotePort ?? -1;
    const id = this.nextId++;
    const role = clientRole(cert, this.opts.identities);
    const c: Conn = { ...newFlowConn(ws, peer, port), id, caller: { connId: id, peer, ...(role ? { role } : {}) } };
    this.conns.add(c);
    this.flow.add(c);
    const log = this.log.child({ conn: id });
    log.info('engine connected', { peer, port, role });
    ws.on('message', (data) => {
      if (c.closing) return;
      if (!this.accepting) {
        this.flow.send(c, JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: 1006, message: 'Agent is shutting down' } }));
        return;
      }
      // Binary frames are read as UTF-8 text too; either way one copy, and the read buffer is not kept.
      this.flow.received(c, (data as Buffer).toString('utf8'));
    });
    // 'drain' fires once everything pending on the socket is written: it may be handed more.
    socket.on('drain', () => this.flow.drained(c));
    const partial = this.opts.partialMessageTimeoutMs > 0 ? this.boundPartialMessages(c, socket, log) : undefined;
    ws.on('error', (err) => log.info('connection error', { err }));
    ws.on('close', (code) => {
      partial?.stop();
      this.conns.delete(c);
      this.flow.remove(c);
      log.info('engine disconnected', { peer, port, code });
    });
  }

  /** Closes the connection once a message stays incomplete past rpc.partialMessageTimeoutMs. */
  private boundPartialMessages(c: Conn, socket: TLSSocket, log: Logger): PartialMessageBound {
    const timeoutMs = this.opts.partialMessageTimeoutMs;
    const bound = new PartialMessageBound(c.ws, timeoutMs, () => c.paused, (incompleteMs) => {
      const err = new PartialMessageTimeoutError(c.peer, incompleteMs, timeoutMs);
      log.info('connection closed: message left incomplete', { peer: c.peer, port: c.port, code: err.code, incompleteMs, err });
      c.closing = true;
      c.ws.close(err.code, err.name);
      // A peer stalled mid-frame may never read the close frame: its socket goes soon, not after ws's 30 s.
      setTimeout(() => c.ws.terminate(), 1_000).unref();
    });
    // Registered after ws's own 'data' listener (set when the upgrade completed), so it sees what ws has parsed.
    socket.on('data', () => bound.afterData());
    return bound;
  }

  /** One request: handled, and its reply handed to the flow (which may dispatch the next). */
  private async run(c: Conn, text: string): Promise<void> {
    let reply: Reply | undefined;
    try {
      reply = await this.dispatcher.handle(text, c.caller);
    } catch (err) {
      this.log.error('frame handling failed', { conn: c.id, err });
    }
    this.flow.answered(c, reply);
  }
}
