// DHCP: dnsmasq in the peer namespace serves 10.250.205.50-60; a bridged
// network with bootproto dhcp and defaultRoute gets a lease, its address and
// the default route; removing the network stops the client.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { captureState, diff, formatDiff } from '../../../agent/network/state.js';
import { UdhcpcClient } from '../../../agent/network/dhcp.js';
import { NetworkLostConnectionError, NetworkSetupError, NetworkRollbackError } from '../../../agent/network/errors.js';
import type { RollbackReport } from '../../../agent/network/rollback.js';
import { netLab, readText, waitFor, type NetLab } from './netlab.js';

let lab: NetLab;
t.before(async () => {
  lab = await netLab('dhcp', 2);
  await lab.inPeer(['ip', 'addr', 'add', '10.250.205.254/24', 'dev', 'peer0']);
  const leases = join(lab.dir, 'dnsmasq.leases');
  lab.spawnInPeer(['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--interface=peer0', '--bind-interfaces', '--except-interface=lo',
    '--dhcp-range=10.250.205.50,10.250.205.60,255.255.255.0,1h', '--dhcp-option=option:router,10.250.205.254',
    '--port=0', `--dhcp-leasefile=${leases}`, `--pid-file=${join(lab.dir, 'dnsmasq.pid')}`, '--user=root', '--log-facility=-'], join(lab.dir, 'dnsmasq.log'));
  // dnsmasq is ready once it has written its lease file.
  if (!(await waitFor(async () => existsSync(leases), 5000))) throw new Error('dnsmasq did not start');
});
t.teardown(async () => { await lab?.cleanup(); });

t.test('bootproto dhcp gets an address and the default route from dnsmasq', async (t) => {
  const nets = lab.networks();
  const t0 = performance.now();
  const r = await nets.setupNetworks({
    networks: { hvdhcp: { nic: 'hvnic0', defaultRoute: true, ipv4: { bootproto: 'dhcp' } } },
    bondings: {}, options: { connectivityCheck: false },
  });
  t.comment(`setupNetworks with DHCP: ${Math.round(performance.now() - t0)} ms`);
  const lease = r.apply.leases['hvdhcp'];
  t.ok(lease, 'a lease');
  t.match(lease, { dev: 'hvdhcp', prefix: 24, router: '10.250.205.254', leaseSec: 3600 });
  const last = Number(lease!.address.split('.')[3]);
  t.ok(lease!.address.startsWith('10.250.205.') && last >= 50 && last <= 60, `address ${lease!.address} from the range`);
  const s = await captureState(lab.ip, ['hvdhcp', 'hvnic0']);
  t.same(s.addrs['hvdhcp'], [`${lease!.address}/24`]);
  t.same(s.routes.filter((x) => x.dst === 'default').map((x) => [x.gateway, x.dev]), [['10.250.205.254', 'hvdhcp']]);
  t.ok(await lab.ping(lease!.address), 'the peer pings the leased address');
  const client = new UdhcpcClient({ runDir: join(lab.dir, 'run') });
  const running = await client.running(lab.ip, 'hvdhcp');
  t.ok(running, 'the client keeps running to renew');
  t.match(await readText(join(lab.dir, 'dnsmasq.leases')), lease!.address, 'dnsmasq recorded the lease');

  const again = await nets.setupNetworks({
    networks: { hvdhcp: { nic: 'hvnic0', defaultRoute: true, ipv4: { bootproto: 'dhcp' } } },
    bondings: {}, options: { connectivityCheck: false },
  });
  t.same(again.apply.steps.length, 0, 'the same request keeps the running client');

  await nets.setupNetworks({ networks: { hvdhcp: { remove: true } }, bondings: {}, options: { connectivityCheck: false } });
  t.notOk(await client.running(lab.ip, 'hvdhcp'), 'removing the network stops the client');
  t.ok(await waitFor(async () => !existsSync(`/proc/${running!.pid}`) || (await readText(`/proc/${running!.pid}/stat`)).includes(') Z'), 3000), 'the client process is gone');
  const after = await captureState(lab.ip, ['hvdhcp', 'hvnic0']);
  t.notOk(after.links['hvdhcp']);
  t.same(after.routes.filter((x) => x.dst === 'default'), [], 'no default route left');
});

t.test('no DHCP server: the network fails within the timeout and is rolled back', async (t) => {
  // hvnic1's peer has no server.
  const nets = lab.networks({ dhcpTimeoutMs: 4000 });
  const t0 = performance.now();
  const err = await nets.setupNetworks({
    networks: { hvnet2: { nic: 'hvnic1', ipv4: { bootproto: 'dhcp' } } }, bondings: {}, options: { connectivityCheck: false },
  }).catch((e: unknown) => e);
  const ms = Math.round(performance.now() - t0);
  t.comment(`failed after ${ms} ms: ${(err as Error).message}`);
  t.ok(err instanceof NetworkSetupError && !(err instanceof NetworkRollbackError));
  t.match((err as Error).message, /no DHCP lease on hvnet2 within 4000 ms.*rolled back and verified/);
  t.equal(((err as NetworkSetupError).data?.['rollback'] as RollbackReport).verified, true);
  t.ok(ms < 9000, 'bounded');
  const s = await captureState(lab.ip, ['hvnet2', 'hvnic1']);
  t.notOk(s.links['hvnet2'], 'the bridge was removed again');
  t.notOk(await new UdhcpcClient({ runDir: join(lab.dir, 'run') }).running(lab.ip, 'hvnet2'), 'no client left running');
});

t.test('an unconfirmed DHCP network is rolled back: bridge gone, client stopped', async (t) => {
  const nets = lab.networks();
  const before = await captureState(lab.ip, ['hvdhcp', 'hvnic0']);
  const err = await nets.setupNetworks({
    networks: { hvdhcp: { nic: 'hvnic0', ipv4: { bootproto: 'dhcp' } } }, bondings: {}, options: { connectivityTimeout: 1 },
  }).catch((e: unknown) => e);
  t.type(err, NetworkLostConnectionError);
  const rb = (err as NetworkLostConnectionError).data?.['rollback'] as RollbackReport;
  t.comment(`rollback: ${rb.steps.join('; ')}`);
  t.equal(rb.verified, true);
  t.ok(rb.steps.includes('dhcp stop on hvdhcp'), 'the client the change started is stopped');
  t.notOk(await new UdhcpcClient({ runDir: join(lab.dir, 'run') }).running(lab.ip, 'hvdhcp'));
  t.same(formatDiff(diff(before, await captureState(lab.ip, ['hvdhcp', 'hvnic0']))), []);
});
