// Enrollment: the admin asks for a token (POST /hosts); the host presents it with a CSR
// (POST /enroll) and gets its agent certificate, signed by the controller CA, and the CA
// certificate; the host is recorded Installing. A token works once and only before it expires.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DEFAULT_AGENT_PORT, type Host } from '../model/hosts.js';
import type { EnrollmentToken } from '../model/enrollment.js';
import { fingerprint, sanOf, signCsr, type CaPaths } from '../pki/ca.js';
import { ConflictError } from '../store/errors.js';
import type { Store } from '../store/store.js';
import { formatToken, hashSecret, newSecret, parseToken, secretMatches } from './token.js';

export const DEFAULT_TOKEN_TTL_MS = 3600_000;

export class InvalidTokenError extends Error {
  readonly code = 7001;
  constructor(readonly reason: 'malformed' | 'unknown' | 'used' | 'expired', options?: { cause?: unknown }) {
    super(`enrollment token ${reason}`, options);
    this.name = 'InvalidTokenError';
  }
}

export interface IssuedToken {
  token: string;
  record: EnrollmentToken;
  caFingerprint: string;
}

export interface Enrolled {
  host: Host;
  certificate: string;
  caCertificate: string;
}

export class Enrollment {
  constructor(private readonly store: Store, private readonly ca: CaPaths, private readonly now: () => number = Date.now) {}

  caFingerprint(): string {
    return fingerprint(readFileSync(this.ca.caCert));
  }

  caCertificate(): string {
    return readFileSync(this.ca.caCert, 'utf8');
  }

  /** 409 when a host of that name is enrolled already; 404 for an unknown cluster. */
  async createToken(req: { hostName: string; address: string; port?: number; cluster?: string; ttlMs?: number }, correlationId?: string): Promise<IssuedToken> {
    const cluster = await this.store.clusters.get(req.cluster ?? 'default', 'cluster');
    if (await this.store.hosts.findByName(req.hostName)) throw new ConflictError(`a host named ${req.hostName} is enrolled already`, { field: 'name' });
    const secret = newSecret();
    const record = await this.store.tokens.create({
      id: randomUUID(), secretHash: hashSecret(secret), hostName: req.hostName, address: req.address, port: req.port ?? DEFAULT_AGENT_PORT,
      clusterId: cluster.id, expiresAt: this.now() + (req.ttlMs ?? DEFAULT_TOKEN_TTL_MS),
    });
    const caFingerprint = this.caFingerprint();
    await this.store.event({ kind: 'host.token-created', subjectKind: 'enrollment-token', subjectId: record.id, correlationId,
      message: `enrollment token for host ${req.hostName} (${req.address}), expires ${new Date(record.expiresAt).toISOString()}`,
      details: { hostName: req.hostName, address: req.address, clusterId: cluster.id } });
    return { token: formatToken({ id: record.id, secret, caFingerprint }), record, caFingerprint };
  }

  private async check(token: string) {
    const parsed = parseToken(token);
    if (!parsed) throw new InvalidTokenError('malformed');
    const stored = await this.store.tokens.find(parsed.id);
    if (!stored || !secretMatches(parsed.secret, stored.secretHash)) throw new InvalidTokenError('unknown');
    if (stored.usedAt !== null) throw new InvalidTokenError('used');
    if (stored.expiresAt <= this.now()) throw new InvalidTokenError('expired');
    return stored;
  }

  /**
   * The token is checked before the CSR is signed (no signing for strangers) and claimed after,
   * in the transaction that records the host: of concurrent uses one wins, and a host that cannot
   * be recorded (its name taken meanwhile) leaves the token unused.
   */
  async enroll(req: { token: string; csr: string }, correlationId?: string): Promise<Enrolled> {
    const t = await this.check(req.token);
    const certificate = await signCsr(this.ca, req.csr, {
      cn: t.hostName, ou: 'host', usage: ['serverAuth', 'clientAuth'], sans: [...new Set([t.address, t.hostName])].map(sanOf),
    });
    const hostId = randomUUID();
    const host = await this.store.transaction(async (repos) => {
      if (!(await repos.tokens.claim(t.id, this.now(), hostId))) throw new InvalidTokenError(t.expiresAt <= this.now() ? 'expired' : 'used');
      return repos.hosts.create({ id: hostId, name: t.hostName, address: t.address, port: t.port, clusterId: t.clusterId, certFingerprint: fingerprint(certificate) });
    });
    await this.store.event({ kind: 'host.enrolled', subjectKind: 'host', subjectId: host.id, correlationId,
      message: `host ${host.name} enrolled (pool host id ${host.poolHostId}); status Installing`,
      details: { address: host.address, clusterId: host.clusterId, certFingerprint: host.certFingerprint } });
    return { host, certificate, caCertificate: this.caCertificate() };
  }
}
