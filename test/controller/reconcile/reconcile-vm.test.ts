import t from 'tap';
import { defaultDecisionSettings } from '../../../controller/decision-settings.js';
import { reconcileVm } from '../../../controller/reconcile/reconcile-vm.js';
import { newVmRecord, type HostReport, type ReportedVm, type VmRecord, type VmRuntimeStatus } from '../../../controller/reconcile/vm-record.js';
import type { HostStatus } from '../../../controller/health/host-status.js';

const S = defaultDecisionSettings();

function rep(hostId: string, status: HostStatus, vms: Record<string, VmRuntimeStatus | ReportedVm> | undefined, at = 1000): HostReport {
  if (vms === undefined) return { hostId, status };
  return { hostId, status, at, vms: new Map(Object.entries(vms).map(([k, v]) => [k, typeof v === 'string' ? { status: v } : v])) };
}
const rec = (over: Partial<VmRecord>): VmRecord => ({ ...newVmRecord('vm1'), ...over });
const upOnA = rec({ desired: 'running', hostId: 'a', status: 'Up' });

t.test("the agent's running state wins: a VM the store had on a but b runs is recorded on b, with an event", async (t) => {
  const r = reconcileVm(upOnA, [rep('a', 'Up', {}), rep('b', 'Up', { vm1: 'Up' })], 2000, S);
  t.match(r.record, { hostId: 'b', status: 'Up' });
  t.match(r.events.map((e) => e.kind), ['vm.host-differs', 'vm.status']);
  t.match(r.blockers, [/Up on b/]);
});

t.test('a VM the store thinks Up whose host answers without it is Down; "desired running" vs Down is one event while it lasts', async (t) => {
  const hosts = [rep('a', 'Up', {})];
  const r1 = reconcileVm(upOnA, hosts, 2000, S);
  t.match(r1.record, { hostId: null, status: 'Down', noted: 'desired running, but Down' });
  t.same(r1.events.map((e) => e.kind), ['vm.status', 'vm.differs']);
  t.same(r1.blockers, [], 'a Down VM may be started');
  const r2 = reconcileVm(r1.record, hosts, 5000, S);
  t.same(r2.events, [], 'the same difference is not reported again');
});

t.test('a VM desired stopped that an agent runs stays running: an event, no correction, and no second start', async (t) => {
  const r = reconcileVm(newVmRecord('vm1'), [rep('a', 'Up', { vm1: 'Up' })], 2000, S);
  t.match(r.record, { desired: 'stopped', hostId: 'a', status: 'Up' });
  t.match(r.events.find((e) => e.kind === 'vm.differs')?.reason, /desired stopped, but Up on a/);
  t.match(r.blockers, [/Up on a/]);
});

const unreachable: [HostStatus | 'gone' | 'unpolled', RegExp][] = [
  ['NonResponsive', /NonResponsive: the VM may still run there/],
  ['Initializing', /Initializing/],
  ['Installing', /Installing/],
  ['gone', /not known/],
  ['unpolled', /Up: the VM may still run there/],
];
for (const [st, why] of unreachable) {
  t.test(`a VM whose host is ${st} is Unknown, never Down, and cannot be started`, async (t) => {
    const hosts = st === 'gone' ? [] : st === 'unpolled' ? [rep('a', 'Up', undefined)] : [rep('a', st, {})];
    const r = reconcileVm(upOnA, hosts, 2000, S);
    t.match(r.record, { hostId: 'a', status: 'Unknown' });
    t.match(r.blockers, [why]);
    t.match(r.events, [{ kind: 'vm.status', severity: 'warning', data: { from: 'Up', to: 'Unknown' } }]);
    t.match(r.events[0]!.reason, /Up -> Unknown on a: /);
  });
}

t.test('a VM whose host is Connecting keeps its last status (within the grace) but cannot be started', async (t) => {
  const r = reconcileVm(upOnA, [rep('a', 'Connecting', { vm1: 'Up' })], 2000, S);
  t.match(r.record, { hostId: 'a', status: 'Up' });
  t.same(r.events, []);
  t.match(r.blockers, [/Connecting/]);
});

t.test('after the host answers again the VM shows its real status', async (t) => {
  const unknown = reconcileVm(upOnA, [rep('a', 'NonResponsive', {})], 2000, S).record;
  const back = reconcileVm(unknown, [rep('a', 'Up', { vm1: 'Paused' })], 90_000, S);
  t.match(back.record, { hostId: 'a', status: 'Paused' });
  t.match(back.events, [{ kind: 'vm.status', data: { from: 'Unknown', to: 'Paused' } }]);
  const gone = reconcileVm(unknown, [rep('a', 'Up', { vm1: { status: 'Down', exitMessage: 'crashed' } })], 90_000, S);
  t.match(gone.record, { hostId: null, status: 'Down' });
});

t.test('a start in flight: WaitForLaunch until the agent lists the VM; a list older than the start proves nothing', async (t) => {
  const inflight = rec({ desired: 'running', hostId: 'a', status: 'WaitForLaunch', startInFlight: { hostId: 'a', since: 10_000, accepted: false } });
  const old = reconcileVm(inflight, [rep('a', 'Up', {}, 9000)], 10_000 + S.startInFlightTimeoutMs + 5000, S);
  t.match(old.record, { status: 'WaitForLaunch', startInFlight: { hostId: 'a' } }, 'a list from before the start');
  t.match(old.blockers, [/in flight on a/]);
  const young = reconcileVm(inflight, [rep('a', 'Up', {}, 12_000)], 12_000, S);
  t.match(young.record, { status: 'WaitForLaunch' }, 'within the timeout');
  const landed = reconcileVm(inflight, [rep('a', 'Up', { vm1: 'Powering up' }, 13_000)], 13_000, S);
  t.match(landed.record, { hostId: 'a', status: 'Powering up', startInFlight: null });
  t.same(landed.events.map((e) => e.kind), ['vm.status']);
});

t.test('a start whose reachable host does not list the VM after the timeout has failed: Down, with an event', async (t) => {
  const inflight = rec({ desired: 'running', hostId: 'a', status: 'WaitForLaunch', startInFlight: { hostId: 'a', since: 10_000, accepted: true, jobId: 'j1' } });
  const now = 10_000 + S.startInFlightTimeoutMs + 1;
  const r = reconcileVm(inflight, [rep('a', 'Up', { vm1: { status: 'Down', exitMessage: 'qemu: no kvm' } }, now)], now, S);
  t.match(r.record, { status: 'Down', hostId: null, startInFlight: null });
  t.match(r.events.find((e) => e.kind === 'vm.start-failed'), { data: { jobId: 'j1' }, reason: /qemu: no kvm/ });
  t.same(r.blockers, []);
});

t.test('a start in flight on a host that stopped answering is Unknown and blocks, however long it takes', async (t) => {
  const inflight = rec({ desired: 'running', hostId: 'a', status: 'WaitForLaunch', startInFlight: { hostId: 'a', since: 10_000, accepted: false } });
  for (const st of ['Connecting', 'NonResponsive', 'Initializing'] as const) {
    const r = reconcileVm(inflight, [rep('a', st, {}), rep('b', 'Up', {})], 10_000 + 10 * S.startInFlightTimeoutMs, S);
    t.match(r.record, { status: 'Unknown', startInFlight: { hostId: 'a' } }, st);
    t.match(r.blockers, [/in flight on a, whose state is unknown/]);
  }
});

t.test('a VM reported on two hosts is an error event, once while it lasts, and blocks', async (t) => {
  const hosts = [rep('a', 'Up', { vm1: 'Up' }), rep('b', 'Up', { vm1: 'Up' })];
  const r1 = reconcileVm(upOnA, hosts, 2000, S);
  t.match(r1.record, { hostId: 'a', status: 'Up' });
  t.match(r1.events, [{ kind: 'vm.running-twice', severity: 'error' }]);
  t.same(reconcileVm(r1.record, hosts, 5000, S).events, []);
  t.ok(r1.blockers.length > 0);
});

t.test('reconcile does not change its input (the caller may keep the old record)', async (t) => {
  const before = JSON.stringify(upOnA);
  reconcileVm(upOnA, [rep('a', 'Connecting', {})], 2000, S);
  reconcileVm(upOnA, [rep('a', 'Up', {})], 2000, S);
  t.equal(JSON.stringify(upOnA), before);
});

t.test('a live migration is one VM: on its source while the destination prepares and copies, then on the destination with no anomaly', async (t) => {
  const during = reconcileVm(upOnA, [rep('a', 'Up', { vm1: 'Migration Source' }), rep('b', 'Up', { vm1: 'Migration Destination' })], 2000, S);
  t.match(during.record, { hostId: 'a', status: 'Migration Source', noted: null }, 'recorded on the source');
  t.notOk(during.events.some((e) => e.kind === 'vm.running-twice'), 'not "running twice"');
  t.match(during.blockers, [/Migration Source on a/], 'a start is still refused');
  const ending = reconcileVm(during.record, [rep('a', 'Up', { vm1: 'Migration Source' }), rep('b', 'Up', { vm1: 'Up' })], 2500, S);
  t.match(ending.record, { hostId: 'a', noted: null }, 'the destination Up a moment before the source says Down: still one VM');
  const after = reconcileVm(during.record, [rep('a', 'Up', { vm1: { status: 'Down', exitMessage: 'migration succeeded' } }), rep('b', 'Up', { vm1: 'Up' })], 3000, S);
  t.match(after.record, { hostId: 'b', status: 'Up' }, 'then on the destination');
  t.same(after.events.map((e) => e.kind), ['vm.status'], 'a status change, not "the host differs"');
  const twice = reconcileVm(upOnA, [rep('a', 'Up', { vm1: 'Up' }), rep('b', 'Up', { vm1: 'Up' })], 2000, S);
  t.ok(twice.events.some((e) => e.kind === 'vm.running-twice'), 'Up on two hosts with no migration is still an anomaly');
});
