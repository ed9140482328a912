// A client certificate from the agent's CA is not enough (issue 14 §5): the
// controller enrols every host from that CA, so the agent checks the
// certificate's identity (subject OU). controller and admin may call
// everything; a host (OU=host, the certificate a migrating source agent
// connects with) only VM.migrationCreate and VM.destroy of an incoming VM
// not yet arrived; any other identity is refused at the upgrade with 403 and
// a log line. Real agent, real TLS, the lab's tiny guest on libvirtd.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startAgent, connectClient, scratchDir, StatusWatch, tinyGuest } from '../harness.js';
import { createLogger } from '../../../agent/log.js';
import { pkiPaths } from '../../../agent/pki/dev-ca.js';
import { HostvisorClient, RpcCallError } from '../../../api/client/client.js';
import type { Config } from '../../../agent/config/settings.js';

/** A client certificate from the test PKI's CA with the given subject. */
function issueClient(pkiDir: string, subject: string): { key: Buffer; cert: Buffer } {
  const p = pkiPaths(pkiDir);
  const dir = scratchDir('hv-idcert-');
  const [key, csr, cert, ext] = ['key.pem', 'req.csr', 'cert.pem', 'ext.cnf'].map((f) => join(dir, f)) as [string, string, string, string];
  const openssl = (args: string[]): void => { execFileSync('openssl', args, { timeout: 30_000, stdio: 'ignore' }); };
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
  execFileSync('sh', ['-c', `printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > '${ext}'`]);
  openssl(['x509', '-req', '-in', csr, '-CA', p.caCert, '-CAkey', p.caKey, '-set_serial', '0x' + randomUUID().replace(/-/g, '').slice(0, 16), '-days', '1', '-extfile', ext, '-out', cert]);
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

function connectAs(config: Config, creds: { key: Buffer; cert: Buffer }): Promise<HostvisorClient> {
  return HostvisorClient.connect({
    url: `wss://localhost:${config['rpc.port']}/`, ...creds, ca: readFileSync(pkiPaths(config['pki.dir']).caCert), timeoutMs: 30_000, connectTimeoutMs: 10_000,
  });
}

const codeOf = (p: Promise<unknown>): Promise<number | 'ok'> => p.then(() => 'ok' as const, (e: unknown) => (e instanceof RpcCallError ? e.code : Promise.reject(e)));

t.test('controller and admin identities call everything; a host identity only the migration verbs; other identities of the same CA are refused at the upgrade', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'info', sink: (l) => { lines.push(JSON.parse(l) as Record<string, unknown>); } });
  const { config, stop } = await startAgent({}, log);
  t.teardown(stop);
  const p = pkiPaths(config['pki.dir']);

  const controller = await connectClient(config); // the dev client certificate: OU=controller
  t.teardown(() => controller.close());
  t.same(await controller.call('Host.ping2', {}), {}, 'the controller identity is accepted');
  const admin = await connectAs(config, issueClient(config['pki.dir'], '/O=Hostvisor/OU=admin/CN=operator'));
  t.teardown(() => admin.close());
  t.same(await admin.call('Host.ping2', {}), {}, 'an admin identity is accepted');

  const host = await connectAs(config, { key: readFileSync(p.hostKey), cert: readFileSync(p.hostCert) }); // OU=host
  t.teardown(() => host.close());
  t.equal(await codeOf(host.call('Host.ping2', {})), 1013, 'a host identity: Host.ping2 refused with 1013');
  t.equal(await codeOf(host.call('Host.getVMList', {})), 1013, 'Host.getVMList refused');
  const migrationCreate = await codeOf(host.call('VM.migrationCreate', { vmID: randomUUID(), params: { xml: '<domain/>', srcHost: 'elsewhere' } }));
  t.not(migrationCreate, 1013, `VM.migrationCreate passes the identity check (answered ${migrationCreate} for a bad domain)`);
  t.equal(await codeOf(host.call('VM.destroy', { vmID: randomUUID() })), 1, 'VM.destroy of an unknown VM answers noVM, as for anyone');

  // A running VM on this host: a host identity may not destroy it.
  const watch = new StatusWatch(controller);
  const g = tinyGuest('hv-id-running');
  t.teardown(() => controller.call('VM.destroy', { vmID: g.vmID }).catch(() => undefined));
  await controller.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 60_000);
  t.equal(await codeOf(host.call('VM.destroy', { vmID: g.vmID })), 1013, 'VM.destroy of a running VM by a host identity: 1013');
  const still = (await controller.call('Host.getVMList', {})).vmList.find((v) => v.vmId === g.vmID);
  t.equal(still?.status, 'Up', 'and the VM still runs');
  t.same(await controller.call('VM.destroy', { vmID: g.vmID }), {}, 'the controller destroys it');

  for (const subject of ['/O=Hostvisor/OU=workstation/CN=someone', '/O=Hostvisor/CN=no-ou']) {
    const refused = await connectAs(config, issueClient(config['pki.dir'], subject)).then((c) => { c.close(); return undefined; }, (e: unknown) => e as Error);
    t.ok(refused, `${subject}: the upgrade is refused`);
    t.match(String(refused?.message), /403/, `${subject}: with 403`);
  }
  const logged = lines.filter((l) => l.msg === 'connection refused: certificate identity not allowed');
  t.equal(logged.length, 2, 'a log line per refusal');
  t.match(logged[0], { peer: /^someone@/, ous: ['workstation'] }, 'naming the peer and its OU');
});

t.test('the identities are settings: with rpc.peerHostIdentities empty a host certificate is refused outright', async (t) => {
  const { config, stop } = await startAgent({ 'rpc.peerHostIdentities': '' });
  t.teardown(stop);
  const p = pkiPaths(config['pki.dir']);
  const refused = await connectAs(config, { key: readFileSync(p.hostKey), cert: readFileSync(p.hostCert) }).then((c) => { c.close(); return undefined; }, (e: unknown) => e as Error);
  t.match(String(refused?.message), /403/, 'the host certificate gets 403');
  const c = await connectClient(config);
  t.teardown(() => c.close());
  t.same(await c.call('Host.ping2', {}), {}, 'the controller still connects');
});
