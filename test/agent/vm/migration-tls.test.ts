// libvirt's own peer-to-peer connection between the hosts over TLS
// (qemu+tls, port 16514): each lab host's libvirtd has a server and a client
// certificate from the lab's CA (test/lab/multihost/lab.sh). A migration
// with migration.libvirtTransport = tls succeeds; the same with a CA that
// did not sign the destination's certificate fails at migrateToURI3 and
// leaves the VM Up on A, which shows the certificates are really checked.
// (The qemu+tcp case is test/agent/vm/migration-two-hosts.test.ts.)
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { labDown, labUp, type LabHost } from '../../lab/multihost/lab.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { bounded, scratchDir } from '../harness.js';
import type { LabAgent } from '../storage/lab-agents.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { agentStatus, countingGuest, domStateOn, LAB_LIBVIRT_PKI, labAgentWithClient, migrationAgentConfig, serialLogOn, until } from './migration-lab.js';

const echo = !!process.env['HV_TEST_LOG'];

t.test("migration over libvirt's TLS connection between two lab hosts", async (t) => {
  const agents: LabAgent[] = [];
  const clients: HostvisorClient[] = [];
  const vms: string[] = [];
  t.teardown(async () => {
    for (const c of clients) for (const id of vms) await bounded('VM.destroy', c.call('VM.destroy', { vmID: id }).catch(() => {}), 30_000);
    for (const c of clients) await bounded('client close', c.close(), 10_000);
    for (const a of agents) await bounded('agent stop', a.stop(), 30_000);
    await bounded('labDown', labDown(), 120_000);
  });
  const [hA, hB] = (await labUp(2)) as [LabHost, LabHost];

  await t.test("libvirtd on B answers qemu+tls from A with the lab's certificates", async (t) => {
    const r = await hA.exec(['virsh', '-c', `qemu+tls://${hB.address}/system?pkipath=${LAB_LIBVIRT_PKI}`, 'hostname']);
    t.equal(r.code, 0, `virsh over TLS from A to B: ${(r.stdout + r.stderr).trim()}`);
    t.equal(r.stdout.trim(), 'hvlab-h2', 'it reached B');
  });

  const start = async (h: LabHost, pkiPath: string): Promise<{ agent: LabAgent; client: HostvisorClient }> => {
    const config = await migrationAgentConfig({ 'migration.libvirtTransport': 'tls', 'migration.libvirtPkiPath': pkiPath });
    const s = await labAgentWithClient(h, config, echo);
    agents.push(s.agent);
    clients.push(s.client);
    return s;
  };
  let A = await start(hA, LAB_LIBVIRT_PKI);
  const B = await start(hB, LAB_LIBVIRT_PKI);
  const dst = `${hB.address}:54321`;
  const guestOnA = async (name: string): Promise<string> => {
    const g = countingGuest(name);
    vms.push(g.vmID);
    await A.client.call('VM.create', { vmID: g.vmID, spec: g.spec });
    await waitForSerialMarker(serialLogOn(hA, name), 'LAB-TICK 5', 120_000);
    return g.vmID;
  };

  await t.test('A -> B over qemu+tls: the source Down with "migration succeeded", the VM Up on B', async (t) => {
    const vmID = await guestOnA('hv-it-mig-tls');
    const logStart = A.agent.logs.length;
    const t0 = performance.now();
    await A.client.call('VM.migrate', { vmID, params: { dst, maxBandwidth: 1000 } });
    t.ok(await until(async () => (await agentStatus(A.client, vmID)) === 'Down', 120_000), `A: Down (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    t.equal((await A.client.call('VM.getStats', { vmID })).statsList[0]?.['exitMessage'], 'migration succeeded', 'with "migration succeeded"');
    t.ok(await until(async () => (await agentStatus(B.client, vmID)) === 'Up', 30_000), 'B: Up');
    const started = A.agent.logs.slice(logStart).find((l) => l.includes('libvirt migration starting')) ?? '';
    t.match(started, `qemu+tls://${hB.address}/system?pkipath=`, "libvirt's connection was qemu+tls");
    t.equal(await domStateOn(hB, 'hv-it-mig-tls'), 'running', 'libvirt on B runs the domain');
    t.equal(await domStateOn(hA, 'hv-it-mig-tls'), undefined, 'libvirt on A has none');
    await B.client.call('VM.destroy', { vmID });
  });

  await t.test("a CA that did not sign B's certificate: migrateToURI3 fails and the VM stays Up on A", async (t) => {
    // A whole other CA, with a client certificate of its own: A's libvirtd accepts its own certificate, and must refuse B's.
    const dir = scratchDir('hv-foreign-pki-');
    const ssl = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'ignore', timeout: 30_000 }); };
    ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', join(dir, 'cakey.pem'), '-out', join(dir, 'cacert.pem'),
      '-subj', '/CN=not the lab CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    ssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'clientkey.pem'), '-out', join(dir, 'client.csr'), '-subj', '/CN=hvlab-h1']);
    writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\n');
    ssl(['x509', '-req', '-in', join(dir, 'client.csr'), '-CA', join(dir, 'cacert.pem'), '-CAkey', join(dir, 'cakey.pem'), '-set_serial', '7',
      '-days', '2', '-out', join(dir, 'clientcert.pem'), '-extfile', join(dir, 'client.ext')]);
    await A.agent.stop();
    await A.client.close();
    A = await start(hA, dir);
    const vmID = await guestOnA('hv-it-mig-tls-bad');
    await A.client.call('VM.migrate', { vmID, params: { dst, timeout: 60 } });
    t.ok(await until(async () => (await A.client.call('VM.getMigrationStatus', { vmID })).status !== 'in_progress', 90_000), 'the migration ended');
    const st = await A.client.call('VM.getMigrationStatus', { vmID });
    t.equal(st.status, 'failed', `failed: ${st.error?.message}`);
    t.equal(st.error?.step, 'migrateToURI3', 'at migrateToURI3');
    t.match(st.error?.message ?? '', /server certificate|certificate/i, "libvirt refused B's certificate (not signed by the CA it was given)");
    t.ok(await until(async () => (await agentStatus(A.client, vmID)) === 'Up', 30_000), 'the VM is Up on A');
    t.ok(await until(async () => (await agentStatus(B.client, vmID)) === undefined && (await domStateOn(hB, 'hv-it-mig-tls-bad')) === undefined, 30_000),
      'B keeps neither the VM nor a domain');
    await A.client.call('VM.destroy', { vmID });
  });
});
