import t from 'tap';
import { defaultDecisionSettings } from '../../../controller/decision-settings.js';
import { enrolledHost, type HostHealth } from '../../../controller/health/host-status.js';
import { FIT } from '../../../controller/health/fitness.js';
import { nextHostHealth } from '../../../controller/health/next-host-health.js';
import { activate, requestMaintenance, HostStateError } from '../../../controller/health/maintenance.js';

const S = defaultDecisionSettings();
const up = (vmCount: number): HostHealth => nextHostHealth(enrolledHost('h1', 0), { kind: 'answered', vmCount, fitness: FIT }, { isSpm: false }, 0, S).host;

t.test('maintenance: PreparingForMaintenance while VMs run, Maintenance at the first poll with none', async (t) => {
  let h = requestMaintenance(up(2), 1000, 'admin: kernel update').host;
  t.equal(h.status, 'PreparingForMaintenance');
  h = nextHostHealth(h, { kind: 'answered', vmCount: 1, fitness: FIT }, { isSpm: false }, 4000, S).host;
  t.equal(h.status, 'PreparingForMaintenance');
  const step = nextHostHealth(h, { kind: 'answered', vmCount: 0, fitness: FIT }, { isSpm: false }, 7000, S);
  t.equal(step.host.status, 'Maintenance');
  t.match(step.events, [{ at: 7000, data: { from: 'PreparingForMaintenance', to: 'Maintenance' } }]);
});

t.test('a host in Maintenance ignores failed polls and answers alike', async (t) => {
  let h = requestMaintenance(up(0), 1000, 'x').host;
  h = nextHostHealth(h, { kind: 'answered', vmCount: 0, fitness: FIT }, { isSpm: false }, 2000, S).host;
  t.equal(h.status, 'Maintenance');
  for (let at = 5000; at < 400_000; at += 3000) {
    const step = nextHostHealth(h, { kind: 'failed', error: 'down' }, { isSpm: false }, at, S);
    t.equal(step.events.length, 0);
    h = step.host;
  }
  t.equal(h.status, 'Maintenance');
  h = nextHostHealth(h, { kind: 'answered', vmCount: 0, fitness: { missingRequiredNetworks: ['n'], unreachableDomains: [] } }, { isSpm: false }, 400_000, S).host;
  t.equal(h.status, 'Maintenance', 'an unfit host in maintenance stays there');
});

t.test('PreparingForMaintenance keeps its state through the grace, then NonResponsive like any host', async (t) => {
  let h = requestMaintenance(up(1), 0, 'x').host;
  const seen: string[] = [];
  for (let at = 3000; at <= 66_000; at += 3000) {
    h = nextHostHealth(h, { kind: 'failed', error: 'timeout' }, { isSpm: false }, at, S).host;
    seen.push(h.status);
  }
  t.notOk(seen.includes('Connecting'));
  t.equal(seen.at(-1), 'NonResponsive');
});

t.test('activate moves a host out of maintenance to Initializing; the next good poll decides Up', async (t) => {
  const m = requestMaintenance(up(0), 0, 'x').host;
  const a = activate(m, 10_000, 'admin: done');
  t.equal(a.host.status, 'Initializing');
  t.match(a.events, [{ at: 10_000, reason: 'admin: done', data: { from: 'PreparingForMaintenance', to: 'Initializing' } }]);
  t.equal(nextHostHealth(a.host, { kind: 'answered', vmCount: 0, fitness: FIT }, { isSpm: false }, 13_000, S).host.status, 'Up');
});

t.test('maintenance and activate refuse requests the state forbids, with HostStateError (code 1202)', async (t) => {
  t.throws(() => activate(up(0), 0, 'x'), HostStateError);
  const m = requestMaintenance(up(0), 0, 'x').host;
  t.throws(() => requestMaintenance(m, 1, 'again'), { name: 'HostStateError', code: 1202, message: /already PreparingForMaintenance/ });
  const lost: HostHealth = { ...up(3), status: 'NonResponsive' };
  t.throws(() => requestMaintenance(lost, 1, 'x'), { message: /3 VM\(s\) whose state is unknown/ });
  t.equal(requestMaintenance({ ...lost, vmCount: 0 }, 1, 'x').host.status, 'Maintenance', 'an unreachable host without VMs may go straight to Maintenance');
});
