// hostvisor enroll --controller URL --token T: joins this host to a controller.
//
// The token (from `hostvisor-ctl hosts add`) ends with the SHA-256 of the controller's CA
// certificate. The host fetches that certificate, checks the hash, and from then on trusts only
// it: the CSR goes over TLS verified against it. The key is made here and never leaves the host.
// The signed certificate, the key and the CA go where the agent's config expects them
// (pki.dir: certs/hostcert.pem, keys/hostkey.pem, certs/cacert.pem), so the agent accepts
// client certificates of that CA alone after its next start.
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pkiPaths } from '../pki/dev-ca.js';
import { run } from '../process.js';

const HTTP_TIMEOUT_MS = 30_000;
const OPENSSL_TIMEOUT_MS = 30_000;

export class EnrollError extends Error {
  constructor(readonly code: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EnrollError';
  }
}

export interface EnrollResult {
  hostId: string;
  caFingerprint: string;
  files: { caCert: string; hostCert: string; hostKey: string };
}

/** The CA fingerprint a token carries (hvt1.<id>.<secret>.<sha256 hex>). */
export function tokenCaFingerprint(token: string): string {
  const m = /^hvt1\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}\.([0-9a-f]{64})$/.exec(token.trim());
  if (!m) throw new EnrollError(2, 'the token is not a Hostvisor enrollment token (hvt1.…)');
  return m[1]!;
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();
}

function call(url: URL, method: 'GET' | 'POST', opts: { ca?: string; body?: unknown }): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method, timeout: HTTP_TIMEOUT_MS,
      // Before the CA is known the answer is read unverified; it is trusted only once its hash matches the token's.
      ...(opts.ca ? { ca: opts.ca } : { rejectUnauthorized: false }),
      headers: payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') });
        } catch (e) {
          reject(new EnrollError(1, `${method} ${url.pathname}: the answer is not JSON`, { cause: e }));
        }
      });
    });
    req.on('timeout', () => req.destroy(new EnrollError(1, `${method} ${url}: no answer within ${HTTP_TIMEOUT_MS / 1000} s`)));
    req.on('error', (e) => reject(e instanceof EnrollError ? e : new EnrollError(1, `${method} ${url}: ${e.message}`, { cause: e })));
    req.end(payload);
  });
}

function writeAtomic(path: string, data: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.enroll-tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export async function enroll(o: { controller: string; token: string; pkiDir: string; name?: string }): Promise<EnrollResult> {
  const wanted = tokenCaFingerprint(o.token);
  let base: URL;
  try {
    base = new URL(o.controller);
  } catch (e) {
    throw new EnrollError(2, `--controller: not a URL: ${o.controller}`, { cause: e });
  }
  if (base.protocol !== 'https:') throw new EnrollError(2, '--controller must be an https:// URL');

  const caAnswer = await call(new URL('/api/v1/enroll/ca', base), 'GET', {});
  const caPem = caAnswer.body?.certificate;
  if (caAnswer.status !== 200 || typeof caPem !== 'string') throw new EnrollError(1, `the controller did not give its CA certificate (HTTP ${caAnswer.status})`);
  const got = fingerprintOf(caPem);
  if (got !== wanted) throw new EnrollError(1, `the controller's CA certificate (SHA-256 ${got}) is not the one the token names (${wanted}): refusing to enroll`);

  const work = mkdtempSync(join(tmpdir(), 'hostvisor-enroll-'));
  chmodSync(work, 0o700);
  try {
    const key = join(work, 'hostkey.pem');
    const csr = join(work, 'host.csr');
    await run(['openssl', 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], { timeoutMs: OPENSSL_TIMEOUT_MS });
    await run(['openssl', 'req', '-new', '-key', key, '-subj', `/CN=${o.name ?? hostname()}`, '-out', csr], { timeoutMs: OPENSSL_TIMEOUT_MS });
    const answer = await call(new URL('/api/v1/enroll', base), 'POST', { ca: caPem, body: { token: o.token.trim(), csr: readFileSync(csr, 'utf8') } });
    if (answer.status !== 201) {
      throw new EnrollError(1, `enrollment refused (HTTP ${answer.status} ${answer.body?.code ?? ''}): ${answer.body?.message ?? 'no reason given'}`);
    }
    const cert = new X509Certificate(answer.body.certificate);
    const ca = new X509Certificate(caPem);
    const { stdout: pub } = await run(['openssl', 'pkey', '-in', key, '-pubout'], { timeoutMs: OPENSSL_TIMEOUT_MS });
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new EnrollError(1, 'the certificate the controller sent is not signed by its CA');
    if (cert.publicKey.export({ type: 'spki', format: 'pem' }).toString().trim() !== pub.trim()) throw new EnrollError(1, 'the certificate the controller sent is not for this host\'s key');

    const files = pkiPaths(o.pkiDir);
    mkdirSync(join(o.pkiDir, 'keys'), { recursive: true, mode: 0o700 });
    writeAtomic(files.hostKey, readFileSync(key, 'utf8'), 0o600);
    writeAtomic(files.hostCert, answer.body.certificate, 0o644);
    writeAtomic(files.caCert, caPem, 0o644);
    return { hostId: answer.body.hostId, caFingerprint: got, files: { caCert: files.caCert, hostCert: files.hostCert, hostKey: files.hostKey } };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
