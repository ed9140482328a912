// The event fan-out: each service event becomes the notification the schema
// names, with the body engines expect and a monotonic notify_time.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { fanOutEvents } from '../../../agent/rpc/events.js';
import { Events } from '../../../api/schema.js';

t.test('VM status, hook inventory and network setup events reach the broadcast as the schema names them', async (t) => {
  const vms = new EventEmitter();
  const hooks = new EventEmitter();
  const networks = new EventEmitter();
  const sent: { method: string; params: Record<string, unknown> }[] = [];
  fanOutEvents({ vms, hooks, networks } as never, (method, params) => sent.push({ method, params }));
  const before = Math.round(performance.now());
  const vm = { id: '3f0e0c4c-1f53-4a9b-9e58-2a4c2e9d3b11', eventBody: () => ({ status: 'Up' }) };
  vms.emit('status', vm);
  hooks.emit('changed', { before_vm_start: { '50_x': { checksum: 'abc' } } });
  networks.emit('setup', { status: 'applied', at: 1 });
  t.equal(sent.length, 3, 'one notification per event');
  t.same(sent.map((s) => s.method), [`|virt|VM_status|${vm.id}`, Events.hooks_changed.method, Events.network_setup.method]);
  t.same(sent[0]!.params[vm.id], { status: 'Up' }, "the VM's event body under its id");
  t.same(sent[1]!.params.hooks, { before_vm_start: { '50_x': { checksum: 'abc' } } }, 'the hook inventory');
  t.same([sent[2]!.params.status, sent[2]!.params.at], ['applied', 1], 'the lastSetup record, flattened into params');
  for (const s of sent) t.ok(typeof s.params.notify_time === 'number' && s.params.notify_time >= before, `${s.method}: notify_time is monotonic ms`);
});
