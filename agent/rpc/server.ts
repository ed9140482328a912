// The engine-facing listener: JSON-RPC 2.0 over WebSocket over mutual TLS.
// A client certificate signed by the configured CA is required; anything else
// is refused during the TLS handshake, before any WebSocket or JSON work.
import { createServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Caller, Dispatcher } from './dispatcher.js';
import type { Logger } from '../log.js';

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
  /** Bytes queued for a slow reader before the agent stops reading its requests. */
  sendHighWaterBytes: number;
  tlsHandshakeTimeoutMs: number;
  log: Logger;
}

interface ConnState {
  id: number;
  ws: WebSocket;
  peer: string;
  /** Passed with each of its frames to the dispatcher. */
  caller: Caller;
  inFlight: number;
  paused: boolean;
  /** Frames read while at the in-flight limit (pausing the socket stops further reads, not these). */
  queued: string[];
}

export class RpcServer {
  private https: HttpsServer | undefined;
  private wss: WebSocketServer | undefined;
  private readonly conns = new Set<ConnState>();
  private nextId = 1;
  private accepting = true;

  constructor(private readonly dispatcher: Dispatcher, private readonly opts: RpcServerOptions) {}

  async listen(): Promise<AddressInfo> {
    const https = createServer({
      key: this.opts.tls.key,
      cert: this.opts.tls.cert,
      ca: this.opts.tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      handshakeTimeout: this.opts.tlsHandshakeTimeoutMs,
    }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('hostvisord speaks JSON-RPC over WebSocket\n');
    });
    https.on('tlsClientError', (err, socket) => {
      // authorizationError says why a certificate was refused (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE).
      this.opts.log.info('TLS handshake refused', { err, reason: socket.authorizationError?.toString(), peer: socket.remoteAddress });
    });
    const wss = new WebSocketServer({ server: https, perMessageDeflate: false, maxPayload: this.opts.maxMessageBytes });
    wss.on('connection', (ws, req) => this.onConnection(ws, req.socket as TLSSocket));
    this.https = https;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      https.once('error', reject);
      https.listen(this.opts.port, this.opts.host, () => { https.off('error', reject); resolve(); });
    });
    const addr = https.address() as AddressInfo;
    this.opts.log.info('listening', { host: addr.address, port: addr.port, maxMessageBytes: this.opts.maxMessageBytes });
    return addr;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** Sends a JSON-RPC notification to every connected engine. */
  broadcast(method: string, params: Record<string, unknown>): void {
    const text = JSON.stringify({ jsonrpc: '2.0', method, params });
    for (const c of this.conns) this.send(c, text);
  }

  /** Stops accepting connections and requests; in-flight requests finish. */
  stopAccepting(): void {
    this.accepting = false;
    this.https?.close();
  }

  /** Waits (bounded) for in-flight requests, then closes every connection. */
  async close(drainMs = 5_000): Promise<void> {
    this.stopAccepting();
    const until = Date.now() + drainMs;
    while ([...this.conns].some((c) => c.inFlight > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.close(1001, 'agent stopping');
    // A peer that cannot answer the close handshake (cut off by a network
    // change, say) must not keep the process alive for ws's 30 s close timeout.
    const closeBy = Date.now() + 1_000;
    while (this.conns.size > 0 && Date.now() < closeBy) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.terminate();
    this.wss?.close();
    this.https?.closeAllConnections();
  }

  private onConnection(ws: WebSocket, socket: TLSSocket): void {
    const cert = socket.getPeerCertificate();
    const peer = `${cert.subject?.CN ?? '?'}@${socket.remoteAddress ?? '?'}`;
    const id = this.nextId++;
    const c: ConnState = { id, ws, peer, caller: { connId: id, peer }, inFlight: 0, paused: false, queued: [] };
    this.conns.add(c);
    const log = this.opts.log.child({ conn: c.id });
    log.info('engine connected', { peer });
    ws.on('message', (data, isBinary) => {
      if (!this.accepting) {
        this.send(c, JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: 1006, message: 'Agent is shutting down' } }));
        return;
      }
      const text = isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString();
      if (c.inFlight >= this.opts.maxInFlightPerConnection) c.queued.push(text);
      else this.dispatch(c, text, log);
      this.updateFlow(c);
    });
    ws.on('error', (err) => log.info('connection error', { err }));
    ws.on('close', (code) => {
      this.conns.delete(c);
      log.info('engine disconnected', { peer, code });
    });
  }

  private dispatch(c: ConnState, text: string, log: Logger): void {
    c.inFlight++;
    this.dispatcher.handle(text, c.caller).then(
      (reply) => this.answered(c, reply, log),
      (err: unknown) => {
        log.error('frame handling failed', { err });
        this.answered(c, undefined, log);
      },
    );
  }

  /** A frame is done: its reply goes out, and the next queued frame (if any) takes its place. */
  private answered(c: ConnState, reply: string | undefined, log: Logger): void {
    if (reply !== undefined) this.send(c, reply);
    c.inFlight--;
    const next = c.queued.shift();
    if (next !== undefined) this.dispatch(c, next, log);
    this.updateFlow(c);
  }

  private send(c: ConnState, text: string): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    c.ws.send(text, (err) => {
      if (err) return;
      this.updateFlow(c);
    });
    this.updateFlow(c);
  }

  // Backpressure: stop reading a connection's requests while too many are in
  // flight or while it is not reading our responses; resume when it catches up.
  private updateFlow(c: ConnState): void {
    const socket = (c.ws as unknown as { _socket?: TLSSocket })._socket;
    if (!socket) return;
    const overloaded = c.inFlight >= this.opts.maxInFlightPerConnection || c.queued.length > 0
      || c.ws.bufferedAmount > this.opts.sendHighWaterBytes;
    if (overloaded && !c.paused) {
      c.paused = true;
      socket.pause();
    } else if (!overloaded && c.paused) {
      c.paused = false;
      socket.resume();
    }
  }
}
