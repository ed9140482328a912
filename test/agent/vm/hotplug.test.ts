// Hotplug through the agent's API on a running tiny guest.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../harness.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { LAB_DIR, ensureRunDir, waitForSerialMarker } from '../../lab/guest.js';

const BRIDGE = 'hvtest-br0';

// One agent for every case, and one guest for the disk and the NIC cases (its boot was most of
// this file's time): the guest boots without disks or NICs and watches for each device on its
// own, reporting on its serial console the disk's arrival and removal and the NIC's arrival.
// The plugged disk is its first virtio disk (vda inside the guest, whatever libvirt's target name).
const DISK_WATCH = 'while [ ! -b /dev/vda ]; do sleep 0.1; done; echo "LAB-VDB-SEEN $(cat /sys/block/vda/size)"; '
  + 'while [ -b /dev/vda ]; do sleep 0.1; done; echo LAB-VDB-GONE';
const NIC_WATCH = 'while [ ! -e /sys/class/net/eth0 ]; do sleep 0.1; done; echo "LAB-NIC-SEEN $(cat /sys/class/net/eth0/address)"';
const g = tinyGuest('hv-it-hotplug', { cmdline: [`lab.sh=${Buffer.from(`(${DISK_WATCH}) &\n(${NIC_WATCH}) &\n`).toString('base64')}`] });
let client: HostvisorClient;
let watch: StatusWatch;
let stopAgent: (() => Promise<void>) | undefined;
t.before(async () => {
  const started = await startAgent({ 'vm.hotunplugTimeoutMs': 20_000 });
  stopAgent = started.stop;
  client = await connectClient(started.config);
  watch = new StatusWatch(client);
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 30_000);
  await waitForSerialMarker(g.serial, 'LAB-SH-START', 30_000);
});
t.teardown(async () => {
  await client?.call('VM.destroy', { vmID: g.vmID }).catch(() => {});
  await client?.close();
  await stopAgent?.();
});

t.test('a hotplugged disk appears in the domain XML and inside the guest, and unplugs again', async (t) => {
  ensureRunDir();
  const dir = mkdtempSync(join(LAB_DIR, 'run', 'hotplug-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const disk = join(dir, 'vdb.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M'], { timeout: 30_000 });

  await client.call('VM.hotplugDisk', { vmID: g.vmID, drive: { name: 'vdb', path: disk, format: 'qcow2' } });
  const { domxmls } = await client.call('Host.dumpxmls', { vmList: [g.vmID] });
  t.match(domxmls[g.vmID], new RegExp(`<source file='${disk}'`), 'the disk is in the live domain XML');
  t.match(domxmls[g.vmID], /<target dev='vdb' bus='virtio'\/>/);
  const seen = await waitForSerialMarker(g.serial, 'LAB-VDB-SEEN', 30_000);
  t.match(seen.line, /LAB-VDB-SEEN 131072/, 'the guest sees a 64 MiB vdb');
  const full = (await client.call('Host.getVMFullList', { vmList: [g.vmID] })).vmList[0];
  t.same(full?.devices, [{ devtype: 'disk', name: 'vdb' }], 'the disk is recorded in the VM metadata');

  const again = await client.call('VM.hotplugDisk', { vmID: g.vmID, drive: { name: 'vdb', path: disk } }).catch((e: { code: number }) => e);
  t.equal((again as { code: number }).code, 4, 'plugging the same target twice is refused (exists)');

  await client.call('VM.hotunplugDisk', { vmID: g.vmID, drive: { name: 'vdb' } });
  await waitForSerialMarker(g.serial, 'LAB-VDB-GONE', 30_000);
  const after = (await client.call('Host.dumpxmls', { vmList: [g.vmID] })).domxmls[g.vmID];
  t.notMatch(after, /dev='vdb'/, 'gone from the domain XML after the guest released it');
});

t.test('a hotplugged NIC on a bridge appears in the domain XML and unplugs by MAC', async (t) => {
  // A bridge with no address and no uplink: nothing can leave it.
  execFileSync('ip', ['link', 'add', BRIDGE, 'type', 'bridge'], { timeout: 10_000 });
  t.teardown(() => { try { execFileSync('ip', ['link', 'del', BRIDGE], { timeout: 10_000 }); } catch { /* already gone */ } });
  execFileSync('ip', ['link', 'set', BRIDGE, 'up'], { timeout: 10_000 });

  const { mac } = await client.call('VM.hotplugNic', { vmID: g.vmID, nic: { bridge: BRIDGE, mac: '52:54:00:aa:bb:01' } });
  t.equal(mac, '52:54:00:aa:bb:01');
  const xml = (await client.call('Host.dumpxmls', { vmList: [g.vmID] })).domxmls[g.vmID];
  t.match(xml, /<mac address='52:54:00:aa:bb:01'\/>/, 'the NIC is in the live domain XML');
  t.match(xml, new RegExp(`<source bridge='${BRIDGE}'/>`));
  const seen = await waitForSerialMarker(g.serial, 'LAB-NIC-SEEN', 30_000);
  t.match(seen.line, /52:54:00:aa:bb:01/, 'the guest sees the new NIC with its MAC');
  await client.call('VM.hotunplugNic', { vmID: g.vmID, nic: { mac: '52:54:00:aa:bb:01' } });
  const after = (await client.call('Host.dumpxmls', { vmList: [g.vmID] })).domxmls[g.vmID];
  t.notMatch(after, /52:54:00:aa:bb:01/, 'gone after unplug');
});

t.test('setTicket sets a VNC password with an expiry on a VM with graphics', async (t) => {
  const gfx = tinyGuest('hv-it-ticket', { graphics: 'vnc' });
  t.teardown(() => client.call('VM.destroy', { vmID: gfx.vmID }).catch(() => {}));
  await client.call('VM.create', { vmID: gfx.vmID, spec: gfx.spec });
  await watch.wait(gfx.vmID, 'Up', 30_000);
  const before = Date.now();
  await client.call('VM.setTicket', { vmID: gfx.vmID, password: 's3cret', ttl: 120 });
  const xml = (await client.call('Host.dumpxmls', { vmList: [gfx.vmID] })).domxmls[gfx.vmID]!;
  const validTo = xml.match(/passwdValidTo='([^']+)'/)?.[1];
  t.ok(validTo, 'the graphics device has an expiry');
  const expires = Date.parse(`${validTo}Z`);
  t.ok(expires >= before + 110_000 && expires <= Date.now() + 130_000, `expiry about 120 s ahead (${validTo})`);
  const noGfx = tinyGuest('hv-it-ticket-nogfx');
  t.teardown(() => client.call('VM.destroy', { vmID: noGfx.vmID }).catch(() => {}));
  await client.call('VM.create', { vmID: noGfx.vmID, spec: noGfx.spec });
  await watch.wait(noGfx.vmID, 'Up', 30_000);
  const err = await client.call('VM.setTicket', { vmID: noGfx.vmID, password: 'x', ttl: 10 }).catch((e: { code: number }) => e);
  t.equal((err as { code: number }).code, 1003, 'a VM without graphics answers wrongState');
});
