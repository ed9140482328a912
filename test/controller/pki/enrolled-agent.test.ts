// After `hostvisor enroll`, a real agent (hostvisord, test:///default libvirt) started on the
// written pki.dir accepts the controller's own client certificate and refuses a client
// certificate of another CA: it trusts the CA it was enrolled with, and that one alone.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostvisorClient } from '../../../api/client/client.js';
import { enroll } from '../../../agent/cli/enroll.js';
import { ensureCa, issue } from '../../../controller/pki/ca.js';
import { scratchDir, startAgent } from '../../agent/harness.js';
import { startApi } from '../http/harness.js';

const api = await startApi();
t.teardown(() => api.close());

t.test('the enrolled agent serves with the signed certificate and takes the controller\'s client certificate only', async (t) => {
  const tok = await api.call('POST', '/api/v1/hosts', { body: { name: 'local', address: 'localhost' } });
  const scratch = scratchDir('hv-enrolled-');
  const pkiDir = join(scratch, 'pki');
  await enroll({ controller: api.url, token: tok.body.token, pkiDir, name: 'local' });
  const { config, stop } = await startAgent({ 'pki.dir': pkiDir, 'pki.createDevCa': false, 'libvirt.uri': 'test:///default' });
  t.teardown(stop);
  const url = `wss://localhost:${config['rpc.port']}/`;
  const controllerClient = await HostvisorClient.connect({
    url, key: readFileSync(api.pki.clientKey), cert: readFileSync(api.pki.clientCert), ca: api.caPem, timeoutMs: 20_000,
  });
  const list = await controllerClient.call('Host.getVMList', {});
  t.ok(Array.isArray((list as { vmList?: unknown[] }).vmList), 'the controller\'s certificate is accepted: Host.getVMList answers');
  await controllerClient.close();

  const other = await ensureCa(join(scratch, 'other-ca'), 'Another CA');
  const stranger = { cert: join(pkiDir, 'stranger.pem'), key: join(pkiDir, 'stranger.key') };
  await issue(other, { cn: 'stranger', ou: 'controller', usage: ['clientAuth'] }, stranger);
  const refused = await HostvisorClient.connect({
    url, key: readFileSync(stranger.key), cert: readFileSync(stranger.cert), ca: api.caPem, timeoutMs: 10_000,
  }).then(async (c) => { await c.call('Host.getVMList', {}).finally(() => c.close()); return 'connected'; }, (e: unknown) => e);
  t.not(refused, 'connected', 'another CA\'s client certificate is refused');
});
