// The join token a host enrolls with: "hvt1.<token id>.<secret>.<CA fingerprint>". The secret
// proves the host was admitted (only its SHA-256 is stored); the CA fingerprint lets the host
// check, before it sends anything, that it talks to this controller (as kubeadm's CA cert hash).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'hvt1';
const TOKEN_RE = /^hvt1\.([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})\.([0-9a-f]{64})$/;

export interface ParsedToken {
  id: string;
  secret: string;
  caFingerprint: string;
}

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The secret is 256 random bits: one SHA-256 round is enough, no slow password hash needed. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function formatToken(t: ParsedToken): string {
  return `${PREFIX}.${t.id}.${t.secret}.${t.caFingerprint}`;
}

export function parseToken(token: string): ParsedToken | undefined {
  const m = TOKEN_RE.exec(token.trim());
  return m ? { id: m[1]!, secret: m[2]!, caFingerprint: m[3]! } : undefined;
}
