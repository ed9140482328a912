// Typed events from a real agent process over real mTLS: a VM's lifecycle
// (libvirt's test:///default driver) as VM_status events with the <vmId>
// parsed out and the body typed, and a hook added on disk as hooks_changed.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { HostvisorClient } from '../../../api/client/client.js';
import type { VmStatusEventBody } from '../../../api/events.js';
import { addHook } from '../../agent/hooks/hook-fixtures.js';
import { within } from '../../agent/libvirt/qemu-helpers.js';
import { AgentProcess } from './agent-process.js';

const agent = await AgentProcess.start();
t.teardown(() => agent.stop());
const client = await HostvisorClient.connect({ ...agent.target, timeoutMs: 20_000 });
t.teardown(() => client.close());

/** Resolves with the first typed VM_status event of `vmId` with `status`. */
function statusEvent(vmId: string, status: VmStatusEventBody['status']): Promise<{ body: VmStatusEventBody; notifyTime: number }> {
  return new Promise((resolve) => {
    const off = client.on('VM_status', (id, body, params) => {
      if (id === vmId && body.status === status) { off(); resolve({ body, notifyTime: params.notify_time }); }
    });
  });
}

t.test("a VM's lifecycle arrives as typed VM_status events: vmId parsed from the method, the body typed, raw listeners seeing the same", async (t) => {
  const vmID = randomUUID();
  const typed: string[] = [];
  const raw: string[] = [];
  const offTyped = client.on('VM_status', (id, body) => { if (id === vmID) typed.push(body.status); });
  const offRaw = client.onEvent((method) => { if (method.endsWith(vmID)) raw.push(method); });
  const up = statusEvent(vmID, 'Up');
  t.match(await client.call('VM.create', { vmID, spec: { name: `evt-${vmID.slice(0, 8)}`, memoryMiB: 64, domainType: 'qemu' } }), { vmId: vmID, status: 'WaitForLaunch' });
  const u = await within('the Up event', up, 15_000);
  t.ok(Number.isFinite(u.notifyTime), `Up carries notify_time (${u.notifyTime})`);
  const down = statusEvent(vmID, 'Down');
  await client.call('VM.destroy', { vmID });
  const d = await within('the Down event', down, 15_000);
  t.same([d.body.exitCode, d.body.exitReason], [0, 6], 'Down carries exitCode 0 and exitReason 6 (destroyed), typed as numbers');
  offTyped();
  offRaw();
  t.same(typed.slice(0, 3), ['WaitForLaunch', 'Powering up', 'Up'], `the typed listener saw the launch in order (${typed.join(' -> ')})`);
  t.equal(typed.at(-1), 'Down');
  t.equal(raw.length, typed.length, 'the raw listener saw each of them too');
  t.ok(raw.every((m) => m === `|virt|VM_status|${vmID}`), 'as |virt|VM_status|<vmId>');
});

t.test('a hook added on disk arrives as a typed hooks_changed event with the inventory', async (t) => {
  const changed = new Promise<Record<string, unknown>>((resolve) => {
    const off = client.on('hooks_changed', (params) => { if (params.hooks.after_vm_pause) { off(); resolve(params.hooks); } });
  });
  addHook(agent.config['hooks.dir'], 'after_vm_pause', '50_typed', 'exit 0');
  const hooks = await within('hooks_changed', changed, 10_000);
  t.ok((hooks.after_vm_pause as Record<string, unknown>)['50_typed'], 'the new script is in the event');
});

t.test('a listener removed stops hearing events', async (t) => {
  const vmID = randomUUID();
  let heard = 0;
  const off = client.on('VM_status', (id) => { if (id === vmID) heard++; });
  off();
  const up = statusEvent(vmID, 'Up');
  await client.call('VM.create', { vmID, spec: { name: `evt-${vmID.slice(0, 8)}`, memoryMiB: 64, domainType: 'qemu' } });
  await within('the Up event', up, 15_000);
  t.equal(heard, 0, 'the removed listener heard nothing');
  await client.call('VM.destroy', { vmID });
});
