// The source agent's connection to the destination agent: the API package's
// typed client over mutual TLS, with this host's own certificate (the host
// certificate is also a client certificate, as VDSM's is).
import { readFileSync } from 'node:fs';
import { HostvisorClient } from '../../../api/client/client.js';
import { pkiPaths } from '../../pki/dev-ca.js';

export interface PeerOptions {
  pkiDir: string;
  defaultPort: number;
  /** TLS name to check in the destination's certificate; default its host. */
  servername?: string;
  connectTimeoutMs: number;
  callTimeoutMs: number;
}

/** Splits host[:port] (IPv6 in brackets). */
export function parseHostPort(dst: string, defaultPort: number): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(dst);
  if (!m) throw new TypeError(`not host[:port]: ${dst}`);
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`bad port in ${dst}`);
  return { host: m[1]!, port };
}

export async function connectPeer(dst: string, o: PeerOptions): Promise<HostvisorClient> {
  const { host, port } = parseHostPort(dst, o.defaultPort);
  const p = pkiPaths(o.pkiDir);
  const bare = host.replace(/^\[|\]$/g, '');
  return HostvisorClient.connect({
    url: `wss://${host}:${port}/`,
    servername: o.servername || bare,
    key: readFileSync(p.hostKey), cert: readFileSync(p.hostCert), ca: readFileSync(p.caCert),
    connectTimeoutMs: o.connectTimeoutMs,
    timeoutMs: o.callTimeoutMs,
  });
}
