// The decision on a hibernation left `saving` by a suspend whose outcome is unknown
// (controller/vm-images/hibernation-outcome.ts): a pure function of what the hosts and the state
// volume say. Each case is one situation a kill or a timeout can leave.
import t from 'tap';
import { decideSaving, type SavingObservation } from '../../../controller/vm-images/hibernation-outcome.js';

const none: SavingObservation = { unanswered: {}, sightings: [] };
const image = (state: 'complete' | 'partial' | 'empty' | 'unrecognized', magic = 'LibvirtQemudSave') => ({ read: true as const, state, magic, hostId: 'h1' });

t.test('the VM seen running on a host: the save did not complete, the record and its volume are dropped', async (t) => {
  for (const status of ['Up', 'Paused', 'Powering Up', 'Migration Source']) {
    const d = decideSaving({ ...none, sightings: [{ hostId: 'h2', status }] });
    t.same([d.action, d.action === 'drop' && d.runningOn], ['drop', 'h2'], `${status} on h2: drop (${d.reason})`);
  }
  const d = decideSaving({ unanswered: { h3: 'timeout' }, sightings: [{ hostId: 'h2', status: 'Up' }], image: image('complete') });
  t.equal(d.action, 'drop', 'running on h2 decides even with another host silent and a complete image: a running VM is never resumed from it');
});

t.test('a host that does not answer: the outcome is unknown, the record stays saving with the reason', async (t) => {
  const d = decideSaving({ unanswered: { h1: 'connection refused' }, sightings: [] });
  t.equal(d.action, 'keep', 'kept');
  t.match(d.reason, /unknown.*host h1 did not answer \(connection refused\)/, `the reason names the host and why: ${d.reason}`);
  t.equal(decideSaving({ unanswered: { h1: 'timeout' }, sightings: [], image: image('complete') }).action, 'keep', 'a complete image does not decide while a host is silent (the VM may run there)');
});

t.test('the VM still being saved on a host, or listed Unknown: kept', async (t) => {
  const saving = decideSaving({ ...none, sightings: [{ hostId: 'h1', status: 'Saving State' }] });
  t.same([saving.action, /being saved on host h1/.test(saving.reason)], ['keep', true], saving.reason);
  const unknown = decideSaving({ ...none, sightings: [{ hostId: 'h1', status: 'Unknown' }] });
  t.same([unknown.action, /Unknown/.test(unknown.reason)], ['keep', true], unknown.reason);
});

t.test('the VM on no host, every host answering: the state volume decides', async (t) => {
  const ask = decideSaving(none);
  t.same([ask.action, ask.action === 'keep' && ask.needsImage], ['keep', true], 'first the image must be read');
  t.equal(decideSaving({ ...none, image: image('complete') }).action, 'saved', 'a complete save image (LibvirtQemudSave): saved, a start resumes it');
  t.equal(decideSaving({ ...none, sightings: [{ hostId: 'h1', status: 'Down' }], image: image('complete') }).action, 'saved', 'listed Down is not running: the complete image decides');
  for (const [state, pattern] of [['partial', /incomplete save/], ['empty', /nothing was written/], ['unrecognized', /no libvirt save image/]] as const) {
    const d = decideSaving({ ...none, image: image(state, state === 'partial' ? 'LibvirtQemudPart' : '................') });
    t.same([d.action, pattern.test(d.reason), /DELETE \/vms\/\{id\}\/hibernation/.test(d.reason)], ['keep', true, true], `${state}: kept for an admin: ${d.reason}`);
  }
  const unread = decideSaving({ ...none, image: { read: false, why: 'h1: pool not connected' } });
  t.same([unread.action, /could not be read \(h1: pool not connected\)/.test(unread.reason)], ['keep', true], `an unreadable volume: kept: ${unread.reason}`);
});
