// The controller's certificate authority. It signs: the controller's HTTPS server certificate,
// API client certificates (OU = role: admin, read-only), the controller's own client certificate
// for agents (OU = controller), and each host's agent certificate at enrollment (OU = host).
// Keys are EC P-256 and never leave the directory they are made in (mode 0600).
import { X509Certificate, createPublicKey, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { openssl, OpensslError } from './openssl.js';

export const ROLES = ['admin', 'read-only'] as const;
export type Role = (typeof ROLES)[number];
export type CertUnit = Role | 'controller' | 'host';

const CA_DAYS = 3650;
const LEAF_DAYS = 825; // the CA/Browser limit; a host re-enrolls or renews before then

export class CsrRejectedError extends Error {
  readonly code = 6002;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CsrRejectedError';
  }
}

export interface CaPaths {
  dir: string;
  caCert: string;
  caKey: string;
}

export function caPaths(dir: string): CaPaths {
  return { dir, caCert: join(dir, 'ca.pem'), caKey: join(dir, 'private', 'ca.key') };
}

/** SHA-256 of a certificate's DER, lower-case hex without colons. */
export function fingerprint(certPem: string | Buffer): string {
  return new X509Certificate(certPem).fingerprint256.replaceAll(':', '').toLowerCase();
}

/** "DNS:x" or "IP:1.2.3.4" for a name or address. */
export function sanOf(name: string): string {
  return isIP(name) ? `IP:${name}` : `DNS:${name}`;
}

function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'hv-ca-'));
  chmodSync(dir, 0o700);
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Creates the CA under `dir` unless it exists; returns its paths. */
export async function ensureCa(dir: string, name = 'Hostvisor controller CA'): Promise<CaPaths> {
  const p = caPaths(dir);
  if (existsSync(p.caCert) && existsSync(p.caKey)) return p;
  mkdirSync(join(dir, 'private'), { recursive: true, mode: 0o700 });
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p.caKey]);
  chmodSync(p.caKey, 0o600);
  await openssl(['req', '-x509', '-new', '-key', p.caKey, '-sha256', '-days', String(CA_DAYS), '-subj', `/O=Hostvisor/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', p.caCert]);
  return p;
}

interface LeafProfile {
  cn: string;
  ou: CertUnit;
  usage: Array<'serverAuth' | 'clientAuth'>;
  sans?: string[];
}

/** Signs `csrPath` with the CA, overriding the CSR's subject with the profile's. */
async function signFile(ca: CaPaths, csrPath: string, profile: LeafProfile, work: string): Promise<string> {
  const ext = join(work, 'leaf.ext');
  const san = profile.sans?.length ? `subjectAltName=${profile.sans.join(',')}\n` : '';
  writeFileSync(ext, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${profile.usage.join(',')}\n${san}`);
  return openssl(['x509', '-req', '-in', csrPath, '-CA', ca.caCert, '-CAkey', ca.caKey, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
    '-days', String(LEAF_DAYS), '-sha256', '-subj', `/O=Hostvisor/OU=${profile.ou}/CN=${profile.cn}`, '-extfile', ext]);
}

/** Makes a key and a certificate signed by the CA at `certOut`/`keyOut`. */
export async function issue(ca: CaPaths, profile: LeafProfile, out: { cert: string; key: string }): Promise<void> {
  const s = scratch();
  try {
    const csr = join(s.dir, 'leaf.csr');
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', out.key]);
    chmodSync(out.key, 0o600);
    await openssl(['req', '-new', '-key', out.key, '-subj', `/CN=${profile.cn}`, '-out', csr]);
    writeFileSync(out.cert, await signFile(ca, csr, profile, s.dir));
  } finally {
    s.done();
  }
}

/**
 * Signs a host's CSR after checking that it is well formed, self-signed by its key (proof of
 * possession) and uses an acceptable key (EC P-256/P-384 or RSA >= 2048). The subject and
 * extensions are the controller's, whatever the CSR asked for.
 */
export async function signCsr(ca: CaPaths, csrPem: string, profile: LeafProfile): Promise<string> {
  if (!/^-----BEGIN CERTIFICATE REQUEST-----[\s\S]+-----END CERTIFICATE REQUEST-----\s*$/.test(csrPem.trim() + '\n')) {
    throw new CsrRejectedError('csr: not a PEM certificate request');
  }
  const s = scratch();
  try {
    const csr = join(s.dir, 'host.csr');
    writeFileSync(csr, csrPem);
    let pub: string;
    try {
      pub = await openssl(['req', '-in', csr, '-noout', '-verify', '-pubkey']);
    } catch (e) {
      throw new CsrRejectedError(`csr: ${(e as Error).message}`, { cause: e });
    }
    const key = createPublicKey(pub);
    const d = key.asymmetricKeyDetails;
    const ok = (key.asymmetricKeyType === 'ec' && (d?.namedCurve === 'prime256v1' || d?.namedCurve === 'secp384r1'))
      || (key.asymmetricKeyType === 'rsa' && (d?.modulusLength ?? 0) >= 2048);
    if (!ok) throw new CsrRejectedError(`csr: key ${key.asymmetricKeyType} ${d?.namedCurve ?? d?.modulusLength ?? ''} is not accepted (EC P-256/P-384 or RSA >= 2048)`);
    return await signFile(ca, csr, profile, s.dir);
  } catch (e) {
    if (e instanceof CsrRejectedError || !(e instanceof OpensslError)) throw e;
    throw new CsrRejectedError(`csr: ${e.message}`, { cause: e });
  } finally {
    s.done();
  }
}

export interface ControllerPki {
  ca: CaPaths;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/**
 * The controller's own material under `dir`, made once: the CA, its HTTPS server certificate
 * (for `names` plus localhost and this host's name) and its client certificate for agents.
 */
export async function ensureControllerPki(dir: string, names: string[] = []): Promise<ControllerPki> {
  const ca = await ensureCa(dir);
  const pki: ControllerPki = {
    ca, serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'private', 'server.key'),
    clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'private', 'client.key'),
  };
  if (!existsSync(pki.serverCert)) {
    const all = [...new Set(['localhost', hostname(), '127.0.0.1', '::1', ...names])];
    await issue(ca, { cn: hostname(), ou: 'controller', usage: ['serverAuth'], sans: all.map(sanOf) }, { cert: pki.serverCert, key: pki.serverKey });
  }
  if (!existsSync(pki.clientCert)) {
    await issue(ca, { cn: 'hostvisor-controller', ou: 'controller', usage: ['clientAuth'] }, { cert: pki.clientCert, key: pki.clientKey });
  }
  return pki;
}

export interface ClientCredentials {
  cert: string;
  key: string;
  ca: string;
}

export function credentialPaths(dir: string): ClientCredentials {
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), ca: join(dir, 'ca.pem') };
}

/** An API client certificate for `role` in `outDir` (cert.pem, key.pem, ca.pem), unless there. */
export async function ensureClientCredentials(ca: CaPaths, role: Role, outDir: string, cn = `hostvisor-${role}`): Promise<ClientCredentials> {
  const c = credentialPaths(outDir);
  if (existsSync(c.cert) && existsSync(c.key)) return c;
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  await issue(ca, { cn, ou: role, usage: ['clientAuth'] }, c);
  writeFileSync(c.ca, readFileSync(ca.caCert));
  return c;
}
