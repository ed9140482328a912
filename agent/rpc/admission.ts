// From TCP accept to a completed WebSocket upgrade. Every accepted socket
// gets one deadline (upgradeTimeoutMs): the TLS handshake, the HTTP request
// and the upgrade must all be done by then, or the socket is destroyed, so a
// peer that stops half-way (no upgrade request, half a request line, one
// header byte a second) holds a descriptor for that long at most. Node's own
// bounds do not cover this: its TLS handshake timeout ends with the
// handshake, and its HTTP header timeout (60 s) only starts with a request.
//
// Connections are also capped per peer address (counted from accept to
// close, upgraded or not) and in all (the server's maxConnections): one
// address cannot take the descriptors meant for others. Refusals happen at
// accept, before any TLS work.
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import { TooManyConnectionsError, UpgradeTimeoutError, type ConnectionLimitError } from './errors.js';

export interface AdmissionOptions {
  /** 0: no deadline. */
  upgradeTimeoutMs: number;
  /** 0: no cap. */
  maxConnectionsPerPeer: number;
  /** 0: no cap. */
  maxConnections: number;
  log: Logger;
}

interface Pending {
  raw: Socket;
  address: string;
  port: number | undefined;
  stage: 'TLS handshake' | 'HTTP upgrade request';
  timer: NodeJS.Timeout | undefined;
}

/** Refusals and expiries are logged at most once a second each, with how many were not: a flood must not flood the journal. */
const LOG_EVERY_MS = 1_000;

export class Admission {
  /** Sockets not upgraded yet, by "address:port" (the same for the raw socket and the TLS socket over it). */
  private readonly pending = new Map<string, Pending>();
  private readonly perPeer = new Map<string, number>();
  private readonly lastLogged = new Map<string, { at: number; unlogged: number }>();

  constructor(private readonly opts: AdmissionOptions) {}

  /** Connections accepted and not upgraded yet. */
  get pendingCount(): number {
    return this.pending.size;
  }

  attach(server: TlsServer): void {
    if (this.opts.maxConnections > 0) {
      server.maxConnections = this.opts.maxConnections;
      server.on('drop', (d?: { remoteAddress?: string }) => this.refused(new TooManyConnectionsError(d?.remoteAddress ?? '?', this.opts.maxConnections, 'agent')));
    }
    server.on('connection', (raw: Socket) => this.accepted(raw));
    server.on('secureConnection', (s: TLSSocket) => {
      const p = this.pending.get(`${s.remoteAddress}:${s.remotePort}`);
      if (p) p.stage = 'HTTP upgrade request';
    });
  }

  /** The WebSocket upgrade of this socket is done: its deadline no longer applies. */
  upgraded(socket: TLSSocket): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const p = this.pending.get(key);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(key);
  }

  /** Destroys every socket not upgraded yet (the server is closing). */
  closeAll(): void {
    for (const p of this.pending.values()) p.raw.destroy();
  }

  private accepted(raw: Socket): void {
    const address = raw.remoteAddress;
    if (address === undefined) { // already gone
      raw.destroy();
      return;
    }
    const count = this.perPeer.get(address) ?? 0;
    if (this.opts.maxConnectionsPerPeer > 0 && count >= this.opts.maxConnectionsPerPeer) {
      raw.destroy();
      this.refused(new TooManyConnectionsError(address, this.opts.maxConnectionsPerPeer, 'peer'));
      return;
    }
    this.perPeer.set(address, count + 1);
    const key = `${address}:${raw.remotePort}`;
    const p: Pending = { raw, address, port: raw.remotePort, stage: 'TLS handshake', timer: undefined };
    if (this.opts.upgradeTimeoutMs > 0) p.timer = setTimeout(() => this.expire(key, p), this.opts.upgradeTimeoutMs).unref();
    this.pending.set(key, p);
    raw.once('close', () => {
      clearTimeout(p.timer);
      if (this.pending.get(key) === p) this.pending.delete(key);
      const left = (this.perPeer.get(address) ?? 1) - 1;
      if (left > 0) this.perPeer.set(address, left);
      else this.perPeer.delete(address);
    });
  }

  private expire(key: string, p: Pending): void {
    this.pending.delete(key);
    const err = new UpgradeTimeoutError(p.address, `waiting for the ${p.stage}`, this.opts.upgradeTimeoutMs);
    this.throttled('connection closed before its upgrade', { peer: p.address, port: p.port, code: err.code, stage: p.stage, err });
    // Destroying the accepted socket ends the TLS socket over it too.
    p.raw.destroy();
  }

  private refused(err: ConnectionLimitError): void {
    this.throttled('connection refused', { peer: err.peer, code: err.code, err });
  }

  private throttled(msg: string, fields: Record<string, unknown>): void {
    const now = performance.now();
    const last = this.lastLogged.get(msg);
    if (last && now - last.at < LOG_EVERY_MS) {
      last.unlogged++;
      return;
    }
    this.opts.log.info(msg, last?.unlogged ? { ...fields, unloggedSinceLast: last.unlogged } : fields);
    this.lastLogged.set(msg, { at: now, unlogged: 0 });
  }
}
