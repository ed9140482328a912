import t from 'tap';
import { defaultDecisionSettings } from '../../../controller/decision-settings.js';
import { beginStart, recordStartOutcome, VmStateError } from '../../../controller/reconcile/start-guard.js';
import { findStrays, strayEvents } from '../../../controller/reconcile/strays.js';
import { newVmRecord, type HostReport } from '../../../controller/reconcile/vm-record.js';

const S = defaultDecisionSettings();
const up = (hostId: string, vms: Record<string, 'Up' | 'Down'> = {}, at = 1000): HostReport =>
  ({ hostId, status: 'Up', at, vms: new Map(Object.entries(vms).map(([k, v]) => [k, { status: v }])) });

t.test('beginStart records the start in flight (desired running) for persisting before VM.create', async (t) => {
  const r = beginStart(newVmRecord('vm1'), [up('a')], 'a', 5000, S, 'job-1');
  t.same(r.record.startInFlight, { hostId: 'a', since: 5000, accepted: false, jobId: 'job-1' });
  t.match(r.record, { desired: 'running', hostId: 'a', status: 'WaitForLaunch' });
  t.match(r.events.at(-1), { kind: 'vm.start', host: 'a', data: { jobId: 'job-1' } });
});

t.test('a second start while the first is in flight, or while the VM runs, is refused with VmStateError (1204)', async (t) => {
  const first = beginStart(newVmRecord('vm1'), [up('a'), up('b')], 'a', 5000, S).record;
  t.throws(() => beginStart(first, [up('a'), up('b')], 'b', 6000, S), { name: 'VmStateError', code: 1204, message: /in flight on a/ });
  const running = { ...first, startInFlight: null, status: 'Up' as const };
  t.throws(() => beginStart(running, [up('a', { vm1: 'Up' })], 'b', 7000, S), VmStateError);
  t.throws(() => beginStart(running, [{ hostId: 'a', status: 'NonResponsive' }, up('b')], 'b', 7000, S), { message: /may still run there/ });
});

t.test('VM.create outcomes: created keeps the start in flight until listed; refused ends it Down; unknown keeps waiting', async (t) => {
  const started = beginStart(newVmRecord('vm1'), [up('a')], 'a', 5000, S).record;
  t.same(recordStartOutcome(started, { hostId: 'a', result: 'created' }, 5100).record.startInFlight, { hostId: 'a', since: 5000, accepted: true });
  const refused = recordStartOutcome(started, { hostId: 'a', result: 'refused', error: '78 hook refused' }, 5100);
  t.match(refused.record, { status: 'Down', hostId: null, startInFlight: null });
  t.match(refused.events, [{ kind: 'vm.start-failed', reason: /78 hook refused/ }]);
  t.doesNotThrow(() => beginStart(refused.record, [up('a')], 'a', 6000, S), 'a refused start may be retried');
  const unsure = recordStartOutcome(started, { hostId: 'a', result: 'unknown', error: 'timeout' }, 5100);
  t.same(unsure.record, started);
  t.throws(() => beginStart(unsure.record, [up('a')], 'a', 6000, S), VmStateError, 'an unanswered start blocks another');
  const late = recordStartOutcome(newVmRecord('vm1'), { hostId: 'a', result: 'created' }, 5100);
  t.match(late.events, [{ kind: 'vm.start-late' }]);
});

t.test('strays: Hostvisor VMs an agent runs that the store does not know are reported once, external ones never', async (t) => {
  const b: HostReport = { hostId: 'b', status: 'Up', at: 1, vms: new Map([['x', { status: 'Up' }], ['ext', { status: 'Up', external: true }], ['vm1', { status: 'Up' }]]) };
  const strays = findStrays(new Set(['vm1']), [b, { hostId: 'c', status: 'NonResponsive' }]);
  t.same(strays, [{ hostId: 'b', vmId: 'x', status: 'Up' }]);
  t.match(strayEvents(strays, new Set(), 10), [{ kind: 'vm.stray', host: 'b', vm: 'x' }]);
  t.same(strayEvents(strays, new Set(['b/x']), 10), []);
});
