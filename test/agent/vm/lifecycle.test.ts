// VM lifecycle through the agent's API on the real libvirtd with the tiny guest.
import t from 'tap';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { RpcCallError } from '../../../api/client/client.js';
import { ExitReason } from '../../../agent/vm/status.js';

t.test('create -> Up event, pause/cont, ACPI shutdown -> Down with exitReason, destroy', async (t) => {
  const { config, stop } = await startAgent();
  t.teardown(stop);
  const client = await connectClient(config);
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  const g = tinyGuest('hv-it-lifecycle', { customProperties: { owner: 'tap' } });
  t.teardown(() => client.call('VM.destroy', { vmID: g.vmID }).catch(() => {}));

  const created = await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  t.same(created, { vmId: g.vmID, status: 'WaitForLaunch' }, 'create answers WaitForLaunch at once');
  await watch.wait(g.vmID, 'Up', 30_000);
  await waitForSerialMarker(g.serial, 'LAB-BOOT-OK', 30_000);
  t.same(watch.statuses(g.vmID).slice(0, 3), ['WaitForLaunch', 'Powering up', 'Up'], 'status events in order');

  const dup = await client.call('VM.create', { vmID: g.vmID, spec: g.spec }).catch((e: unknown) => e);
  t.equal((dup as RpcCallError).code, 4, 'a second create of the same vmID is refused with exists (4)');

  t.same(await client.call('VM.pause', { vmID: g.vmID }), { status: 'Paused' });
  const paused = await watch.wait(g.vmID, 'Paused', 10_000);
  t.equal(paused.pauseCode, 'NOERR');
  t.same(await client.call('VM.cont', { vmID: g.vmID }), { status: 'Up' });

  const list = await client.call('Host.getVMFullList', {});
  const mine = list.vmList.find((v) => v.vmId === g.vmID);
  t.same(mine?.customProperties, { owner: 'tap' }, 'custom properties kept in the VM metadata');
  t.ok(typeof mine?.id === 'number', 'libvirt runtime id reported');

  await waitForSerialMarker(g.serial, 'LAB-ACPI-READY', 30_000); // the guest listens for the button
  const shut = await client.call('VM.shutdown', { vmID: g.vmID, timeout: 20 });
  t.same(shut, { status: 'Down', method: 'acpi' }, 'the guest powered off on the ACPI button');
  const down = await watch.wait(g.vmID, 'Down', 20_000);
  t.equal(down.exitCode, 0);
  t.equal(down.exitReason, ExitReason.ADMIN_SHUTDOWN);
  t.match(down.exitMessage, /shut down/);

  const stillListed = (await client.call('Host.getVMList', {})).vmList.find((v) => v.vmId === g.vmID);
  t.equal(stillListed?.status, 'Down', 'a Down VM stays listed until the engine destroys it');
  await client.call('VM.destroy', { vmID: g.vmID });
  t.notOk((await client.call('Host.getVMList', {})).vmList.some((v) => v.vmId === g.vmID), 'destroy forgets it');
  const gone = await client.call('VM.pause', { vmID: g.vmID }).catch((e: unknown) => e);
  t.equal((gone as RpcCallError).code, 1, 'operations on it now answer noVM (1)');
});

t.test('destroy of a running VM reports Down with exitReason DESTROYED and removes the domain', async (t) => {
  const { config, stop, agent } = await startAgent();
  t.teardown(stop);
  const client = await connectClient(config);
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  const g = tinyGuest('hv-it-destroy');
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 30_000);
  await client.call('VM.destroy', { vmID: g.vmID });
  const down = await watch.wait(g.vmID, 'Down', 10_000);
  t.equal(down.exitReason, ExitReason.DESTROYED);
  const domains = await agent.client.connection.listAllDomains();
  t.notOk(domains.some((d) => d.uuid === g.vmID), 'no domain left in libvirt');
});

t.test('a launch that libvirt refuses ends Down with LIBVIRT_START_FAILED, not a hang', async (t) => {
  const { config, stop } = await startAgent();
  t.teardown(stop);
  const client = await connectClient(config);
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  const g = tinyGuest('hv-it-badlaunch');
  g.spec.kernel = '/nonexistent/vmlinux';
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  const down = await watch.wait(g.vmID, 'Down', 30_000);
  t.equal(down.exitCode, 1);
  t.equal(down.exitReason, ExitReason.LIBVIRT_START_FAILED);
  await client.call('VM.destroy', { vmID: g.vmID });
});
