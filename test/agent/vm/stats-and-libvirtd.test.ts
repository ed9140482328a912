// Stats through the API, and the agent across a libvirtd restart.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../harness.js';
import { LAB_DIR, ensureRunDir, waitForSerialMarker, libvirtdCtl } from '../../lab/guest.js';
import { RpcCallError } from '../../../api/client/client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('VM stats: CPU time and disk write bytes rise after the guest writes 100 MiB', async (t) => {
  ensureRunDir();
  const dir = mkdtempSync(join(LAB_DIR, 'run', 'stats-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const disk = join(dir, 'vda.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '1G'], { timeout: 30_000 });
  const { config, stop } = await startAgent({ 'stats.vmIntervalMs': 500 });
  t.teardown(stop);
  const client = await connectClient(config);
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  const g = tinyGuest('hv-it-stats', { cmdline: ['lab.delay=2', 'lab.dd=100'], disks: [{ name: 'vda', path: disk, format: 'qcow2' }] });
  t.teardown(() => client.call('VM.destroy', { vmID: g.vmID }).catch(() => {}));
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 30_000);
  await waitForSerialMarker(g.serial, 'LAB-DD-START', 30_000);
  const before = (await client.call('VM.getStats', { vmID: g.vmID })).statsList[0]!;
  await waitForSerialMarker(g.serial, 'LAB-DD-DONE rc=0', 60_000);
  await sleep(1200); // two sampling intervals
  const after = (await client.call('VM.getStats', { vmID: g.vmID })).statsList[0]!;
  t.equal(after.status, 'Up');
  t.ok((after.cpuTimeNs ?? 0) > (before.cpuTimeNs ?? 0), `CPU time rose: ${before.cpuTimeNs} -> ${after.cpuTimeNs}`);
  const wb = (s: typeof after) => s.disks?.vda?.writeBytes ?? 0;
  t.ok(wb(after) - wb(before) >= 100 * 2 ** 20 * 0.9, `vda write bytes rose by ${wb(after) - wb(before)}`);
  const all = await client.call('Host.getAllVmStats', {});
  t.ok(all.statsList.some((s) => s.vmId === g.vmID && s.disks?.vda), 'getAllVmStats answers from the same sample');
  const host = await client.call('Host.getStats', {});
  t.ok(host.memTotal > 0 && host.vmCount >= 1, 'host stats report memory and the VM count');
});

t.test('libvirtd restart: calls fail fast during the outage, events flow again within 5 s of its return', async (t) => {
  const { config, stop } = await startAgent({
    'libvirt.keepAliveIntervalSec': 1, 'libvirt.keepAliveCount': 2,
    'libvirt.reconnectInitialMs': 100, 'libvirt.reconnectMaxMs': 500,
  });
  t.teardown(stop);
  t.teardown(() => libvirtdCtl('start'));
  const client = await connectClient(config);
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  const g = tinyGuest('hv-it-restart1');
  t.teardown(() => client.call('VM.destroy', { vmID: g.vmID }).catch(() => {}));
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 30_000);

  await libvirtdCtl('kill');
  await watch.wait(g.vmID, 'Unknown', 15_000);
  const t0 = performance.now();
  const during = await client.call('Host.getCapabilities', {}).catch((e: unknown) => e);
  t.equal((during as RpcCallError).code, 1001, 'answered at once with libvirtUnavailable (1001)');
  t.ok(performance.now() - t0 < 1000, 'and fast');
  const listed = (await client.call('Host.getVMList', {})).vmList.find((v) => v.vmId === g.vmID);
  t.equal(listed?.status, 'Unknown', 'during the outage the VM is Unknown, not Down');

  const back = performance.now();
  await libvirtdCtl('start');
  await watch.wait(g.vmID, 'Up', 5_000, back);
  t.pass(`the VM was reconciled back to Up ${Math.round(performance.now() - back)} ms after libvirtd returned`);
  const g2 = tinyGuest('hv-it-restart2');
  t.teardown(() => client.call('VM.destroy', { vmID: g2.vmID }).catch(() => {}));
  await client.call('VM.create', { vmID: g2.vmID, spec: g2.spec });
  await watch.wait(g2.vmID, 'Up', 30_000);
  await client.call('VM.pause', { vmID: g.vmID });
  await watch.wait(g.vmID, 'Paused', 5_000, back);
  t.pass('status events flow again after the restart');
});
