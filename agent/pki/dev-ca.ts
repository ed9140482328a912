// A development PKI: a CA plus a host and a client certificate, made with
// openssl, laid out like VDSM's /etc/pki/vdsm. Real deployments get their
// certificates from the engine's CA; this makes a fresh host usable at once.
// Identities as the controller's PKI gives them (agent/rpc/identity.ts): the
// host certificate has OU=host, the client certificate OU=controller.
import { existsSync, mkdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { run } from '../process.js';

const OPENSSL_TIMEOUT_MS = 30_000;

export interface PkiPaths {
  caCert: string;
  caKey: string;
  hostCert: string;
  hostKey: string;
  clientCert: string;
  clientKey: string;
}

export function pkiPaths(dir: string): PkiPaths {
  return {
    caCert: join(dir, 'certs', 'cacert.pem'),
    caKey: join(dir, 'private', 'cakey.pem'),
    hostCert: join(dir, 'certs', 'hostcert.pem'),
    hostKey: join(dir, 'keys', 'hostkey.pem'),
    clientCert: join(dir, 'certs', 'clientcert.pem'),
    clientKey: join(dir, 'keys', 'clientkey.pem'),
  };
}

/** Rejects with CommandError or CommandTimeoutError. */
async function openssl(args: string[]): Promise<void> {
  await run(['openssl', ...args], { timeoutMs: OPENSSL_TIMEOUT_MS });
}

async function issue(p: { caCert: string; caKey: string; cert: string; key: string; cn: string; ou: string; usage: 'serverAuth,clientAuth' | 'clientAuth'; sans: string[]; tmp: string }): Promise<void> {
  const csr = `${p.cert}.csr`;
  const ext = join(p.tmp, `${p.usage.replace(',', '-')}.ext`);
  const san = p.sans.length ? `subjectAltName=${p.sans.join(',')}\n` : '';
  writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=${p.usage}\n${san}`);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p.key]);
  chmodSync(p.key, 0o600);
  await openssl(['req', '-new', '-key', p.key, '-subj', `/O=Hostvisor/OU=${p.ou}/CN=${p.cn}`, '-out', csr]);
  await openssl(['x509', '-req', '-in', csr, '-CA', p.caCert, '-CAkey', p.caKey, '-set_serial', `0x${randomBytes(12).toString('hex')}`,
    '-days', '825', '-sha256', '-extfile', ext, '-out', p.cert]);
  rmSync(csr, { force: true });
  rmSync(ext, { force: true });
}

/**
 * Creates the CA, host and client certificates under `dir` unless a CA
 * certificate is already there (then nothing is touched). Returns the paths
 * and whether anything was created.
 */
export async function ensureDevPki(dir: string, opts: { caName?: string; hostNames?: string[] } = {}): Promise<{ paths: PkiPaths; created: boolean }> {
  const paths = pkiPaths(dir);
  if (existsSync(paths.caCert)) return { paths, created: false };
  for (const sub of ['certs', 'keys', 'private']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
  chmodSync(join(dir, 'private'), 0o700);
  chmodSync(join(dir, 'keys'), 0o700);
  const names = opts.hostNames ?? ['localhost', hostname()];
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', paths.caKey]);
  chmodSync(paths.caKey, 0o600);
  await openssl(['req', '-x509', '-new', '-key', paths.caKey, '-sha256', '-days', '3650',
    '-subj', `/O=Hostvisor/CN=${opts.caName ?? 'Hostvisor development CA'}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', paths.caCert]);
  const sans = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1', 'IP:::1'];
  await issue({ caCert: paths.caCert, caKey: paths.caKey, cert: paths.hostCert, key: paths.hostKey, cn: names[0] ?? 'localhost', ou: 'host', usage: 'serverAuth,clientAuth', sans, tmp: join(dir, 'private') });
  await issue({ caCert: paths.caCert, caKey: paths.caKey, cert: paths.clientCert, key: paths.clientKey, cn: 'hostvisor-engine', ou: 'controller', usage: 'clientAuth', sans: [], tmp: join(dir, 'private') });
  return { paths, created: true };
}
