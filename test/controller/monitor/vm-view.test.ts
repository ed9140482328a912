// The monitor's view of one host's VMs: a list replaces it, an event changes one VM, an event
// heard while a list was in flight is applied again on top of that list (it may be newer), and
// a lost host's VMs become Unknown, except those known to be Down.
import t from 'tap';
import { VmView } from '../../../controller/monitor/vm-view.js';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';
const listed = (vmId: string, status: 'Up' | 'Down' | 'Paused' | 'Powering up', external = false) => ({ vmId, vmName: vmId.slice(-1), status, external });

t.test('a list replaces the view and says what changed, including VMs no longer listed', async (t) => {
  const v = new VmView();
  t.same(v.applyList([listed(A, 'Up'), listed(B, 'Paused', true)], 1000), [{ vmId: A, from: null, to: 'Up' }, { vmId: B, from: null, to: 'Paused' }]);
  t.equal(v.at, 1000);
  t.same(v.current.get(B), { status: 'Paused', external: true }, 'external kept');
  t.same(v.applyList([listed(A, 'Up'), listed(C, 'Powering up')], 2000), [{ vmId: C, from: null, to: 'Powering up' }, { vmId: B, from: 'Paused', to: null }]);
});

t.test('an event changes one VM; the list time stays that of the list', async (t) => {
  const v = new VmView();
  v.applyList([listed(A, 'Up')], 1000);
  t.same(v.applyEvent(A, { status: 'Down', exitMessage: 'shut down' }), [{ vmId: A, from: 'Up', to: 'Down' }]);
  t.same(v.current.get(A), { status: 'Down', exitMessage: 'shut down' });
  t.same(v.applyEvent(A, { status: 'Down' }), [], 'the same status again: no change');
  t.same(v.applyEvent(B, { status: 'WaitForLaunch' }), [{ vmId: B, from: null, to: 'WaitForLaunch' }], 'a VM not listed yet is added');
  t.equal(v.at, 1000);
});

t.test('an event heard while a list is in flight is applied again on top of it', async (t) => {
  const v = new VmView();
  v.applyList([listed(A, 'Powering up')], 1000);
  v.listRequested();
  v.applyEvent(A, { status: 'Up' }); // the agent sent it after it had taken the list
  const changes = v.applyList([listed(A, 'Powering up')], 2000); // the older list arrives after the event
  t.equal(v.current.get(A)?.status, 'Up', 'the newer event wins over the list taken before it');
  t.same(changes, [], 'and nothing is reported changed');
  v.listRequested();
  v.listFailed();
  v.applyEvent(A, { status: 'Paused' });
  v.applyList([listed(A, 'Up')], 3000);
  t.equal(v.current.get(A)?.status, 'Up', 'after a failed list, events are not kept for the next one');
});

t.test('a lost host: every VM Unknown except those known Down', async (t) => {
  const v = new VmView();
  v.applyList([listed(A, 'Up'), listed(B, 'Down'), listed(C, 'Paused')], 1000);
  t.same(v.allUnknown(), [{ vmId: A, from: 'Up', to: 'Unknown' }, { vmId: C, from: 'Paused', to: 'Unknown' }]);
  t.same([...v.current.values()].map((x) => x.status), ['Unknown', 'Down', 'Unknown']);
  t.same(v.allUnknown(), [], 'twice: nothing more changes');
});
