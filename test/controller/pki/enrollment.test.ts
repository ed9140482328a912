// Enrollment end to end over real TLS: `hostvisor enroll` (agent/cli/enroll.ts) against the
// controller API. A token works once and not after it expires; the CSR is signed by the
// controller CA; the host is recorded Installing; a token naming another CA is refused before
// anything is sent.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { enroll, EnrollError } from '../../../agent/cli/enroll.js';
import { manualClock } from '../store/store-suite.js';
import { startApi } from '../http/harness.js';

const run = promisify(execFile);
const clock = manualClock(Date.now());
const api = await startApi({ now: clock.now });
t.teardown(() => api.close());
// Every CSR and host PKI directory of this file lives under one scratch directory, removed at the end.
const scratch = mkdtempSync(join(tmpdir(), 'hv-enrollment-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

async function token(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await api.call('POST', '/api/v1/hosts', { body: { name, address: '127.0.0.1', ...extra } });
  if (r.status !== 201) throw new Error(`POST /hosts: ${r.status} ${r.text}`);
  return r.body.token;
}

async function csr(bits?: number): Promise<string> {
  const dir = mkdtempSync(join(scratch, 'csr-'));
  const key = join(dir, 'k.pem');
  if (bits) await run('openssl', ['genrsa', '-out', key, String(bits)]);
  else await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', '/CN=whoever/OU=admin', '-out', join(dir, 'r.csr')]);
  return readFileSync(join(dir, 'r.csr'), 'utf8');
}

t.test('a host enrolls once: its certificate is signed by the controller CA, it is recorded Installing', async (t) => {
  const tok = await token('h1');
  t.match(tok, /^hvt1\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}\.[0-9a-f]{64}$/);
  const pkiDir = mkdtempSync(join(scratch, 'host-pki-'));
  const r = await enroll({ controller: api.url, token: tok, pkiDir, name: 'h1' });
  const cert = new X509Certificate(readFileSync(r.files.hostCert));
  const ca = new X509Certificate(api.caPem);
  t.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'the agent certificate verifies against the controller CA');
  t.equal(readFileSync(r.files.caCert, 'utf8'), api.caPem.toString(), 'the CA is written where the agent reads it');
  t.match(cert.subject, /OU=host/, 'the controller sets the unit (host), whatever the CSR asked');
  t.match(cert.subject, /CN=h1/);
  t.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/, 'the address given at POST /hosts is a SAN');
  t.equal(statSync(r.files.hostKey).mode & 0o777, 0o600, 'the key is private');
  t.match(cert.keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.1/, 'server auth (the agent serves with it)');
  const host = await api.store.hosts.get(r.hostId);
  t.same([host.name, host.status, host.poolHostId, host.certFingerprint], ['h1', 'Installing', 1, cert.fingerprint256.replaceAll(':', '').toLowerCase()]);
  const again = await enroll({ controller: api.url, token: tok, pkiDir: mkdtempSync(join(scratch, 'host-pki-')) }).catch((e: unknown) => e);
  t.type(again, EnrollError);
  t.match((again as Error).message, /401 InvalidToken.*used/, 'the second use is refused');
  t.equal((await api.store.hosts.list()).length, 1, 'no second host');
  const events = (await api.store.eventLog.list(0, 100)).map((e) => e.kind);
  t.ok(events.includes('host.token-created') && events.includes('host.enrolled'), 'both are audit events');
});

t.test('a token expires: refused at its expiry, and the host is not recorded', async (t) => {
  const tok = await token('h2', { ttlSeconds: 60 });
  clock.advance(60_000);
  const r = await api.call('POST', '/api/v1/enroll', { as: 'none', body: { token: tok, csr: await csr() } });
  t.same([r.status, r.body.code, r.body.details.reason], [401, 'InvalidToken', 'expired']);
  t.equal(await api.store.hosts.findByName('h2'), undefined);
});

t.test('a token whose CA hash is not the controller\'s is refused before the CSR is sent', async (t) => {
  const tok = await token('h3');
  const forged = tok.replace(/\.[0-9a-f]{64}$/, `.${'0'.repeat(64)}`);
  const e = await enroll({ controller: api.url, token: forged, pkiDir: mkdtempSync(join(scratch, 'host-pki-')) }).catch((x: unknown) => x);
  t.match((e as Error).message, /not the one the token names/);
  const id = tok.split('.')[1]!;
  t.equal((await api.store.tokens.get(id)).usedAt, null, 'the token is still unused');
});

t.test('CSRs: garbage and weak keys are 400 naming body.csr and do not use the token; a wrong secret is 401', async (t) => {
  const tok = await token('h4');
  for (const [what, body] of [['not PEM', 'hello'], ['RSA 1024', await csr(1024)], ['broken PEM', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n']] as const) {
    const r = await api.call('POST', '/api/v1/enroll', { as: 'none', body: { token: tok, csr: body } });
    t.same([r.status, r.body.code, r.body.details.field], [400, 'InvalidRequest', 'body.csr'], what);
  }
  const wrongSecret = tok.replace(/\.([A-Za-z0-9_-]{43})\./, `.${'A'.repeat(43)}.`);
  const w = await api.call('POST', '/api/v1/enroll', { as: 'none', body: { token: wrongSecret, csr: await csr() } });
  t.same([w.status, w.body.details.reason], [401, 'unknown']);
  const ok = await api.call('POST', '/api/v1/enroll', { as: 'none', body: { token: tok, csr: await csr(2048) } });
  t.equal(ok.status, 201, 'the token still works after the refusals (RSA 2048 accepted)');
});

t.test('five concurrent enrollments with one token: one host', async (t) => {
  const tok = await token('h5');
  const c = await csr();
  const answers = await Promise.all([1, 2, 3, 4, 5].map(() => api.call('POST', '/api/v1/enroll', { as: 'none', body: { token: tok, csr: c } })));
  t.same(answers.map((a) => a.status).sort(), [201, 401, 401, 401, 401]);
  t.equal((await api.store.hosts.list()).filter((h) => h.name === 'h5').length, 1);
});

t.test('a name already enrolled gets no new token (409)', async (t) => {
  const r = await api.call('POST', '/api/v1/hosts', { body: { name: 'h1', address: '127.0.0.1' } });
  t.same([r.status, r.body.code], [409, 'Conflict']);
});
