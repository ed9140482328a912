// The placement service around schedule(): decisions made one after another in the same tick
// see each other's reservations (no overbooking however many arrive at once), a refusal names
// each host's filter and reserves nothing, a reservation is released only by the job holding
// it, and a restarted controller rebuilds the reservations from its unfinished vm.start jobs.
import t from 'tap';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import type { Host } from '../../../controller/model/hosts.js';
import type { Job } from '../../../controller/model/jobs.js';
import { PlacementService, policyOf, schedVmOf } from '../../../controller/scheduler/placement-service.js';
import { PendingReservations, placementOf } from '../../../controller/scheduler/reservations.js';
import { NoSuitableHostError } from '../../../controller/scheduler/schedule.js';
import type { Booking, SchedHost, SchedVm } from '../../../controller/scheduler/sched-types.js';

const s = resolveDecisionSettings({ hostReservedMemoryMiB: 1024 });
const host = (id: string, status: Host['status'] = 'Up'): Host => ({
  id, name: id, address: id, port: 1, clusterId: 'c', status, spmPriority: 5, poolHostId: null, certFingerprint: 'f',
  lastContact: null, reasons: [], stats: null, createdAt: 0, updatedAt: 0,
});
const vm = (id: string, memoryMiB = 1000): SchedVm => ({ vmId: id, clusterId: 'c', memoryMiB, vcpus: 1, requiredNetworks: [], pinnedHostId: null, needsPool: false });

function service(running: Booking[] = []) {
  const reservations = new PendingReservations();
  const logs: Array<Record<string, unknown>> = [];
  const view = {
    // 5024 MiB total - 1024 kept = 4000 bookable: four 1000 MiB VMs per host.
    schedHosts: (hs: readonly Host[]): SchedHost[] => hs.map((h) => ({ hostId: h.id, clusterId: h.clusterId, status: h.status, poolConnected: true, memTotalMiB: 5024, cpus: 8, networks: [] })),
    running: () => running,
  };
  const p = new PlacementService({ settings: s, reservations, view, log: (_l, msg, f) => logs.push({ msg, ...f }), clock: () => 1000 });
  return { p, reservations, logs };
}

t.test('ten placements in one synchronous run on two hosts with room for 7 (one VM already runs): 7 placed, 3 refused by memory, none overbooked', async (t) => {
  const { p, reservations, logs } = service([{ vmId: 'resident', hostId: 'h2', memoryMiB: 1000, vcpus: 1 }]);
  const hosts = [host('h1'), host('h2')];
  const outcomes = Array.from({ length: 10 }, (_, i) => {
    try {
      return p.placeAndReserve({ vm: vm(`v${i}`), hosts, policy: policyOf({ policy: 'evenly_distributed', thresholds: {} } as never, s), requestedHostId: null }).placement.hostId;
    } catch (e) {
      return e instanceof NoSuitableHostError ? e.details.hosts.map((x) => `${x.hostId}:${x.filter}`).join(',') : String(e);
    }
  });
  t.same(outcomes.filter((o) => o === 'h1').length, 4, 'h1 takes four');
  t.same(outcomes.filter((o) => o === 'h2').length, 3, 'h2 three (one of its four runs already)');
  t.same(outcomes.filter((o) => o === 'h1:memory,h2:memory'), Array(3).fill('h1:memory,h2:memory'), 'three refused, each naming the memory filter on both hosts');
  t.same([reservations.onHost('h1').memoryMiB, reservations.onHost('h2').memoryMiB], [4000, 3000], 'reserved: 4000 and 3000 of 4000 bookable each');
  t.equal(logs.filter((l) => l['msg'] === 'placement: VM placed and reserved').length, 7, 'each placement logged');
  t.ok(logs.every((l) => Array.isArray(l['scores']) && Array.isArray(l['excluded'])), 'with its scores and exclusions');
});

t.test('an explicit host passes the same filters: one that is not Up is refused with its reason, nothing reserved', async (t) => {
  const { p, reservations } = service();
  const hosts = [host('h1', 'NonResponsive'), host('h2')];
  const e = t.throws(() => p.placeAndReserve({ vm: vm('v'), hosts, policy: { name: 'evenly_distributed', highUtilizationPct: 80 }, requestedHostId: 'h1' })) as unknown as NoSuitableHostError;
  t.same(e.details.hosts.map((x) => [x.hostId, x.filter]), [['h1', 'hostUp'], ['h2', 'pinnedHost']]);
  t.same(reservations.list(), []);
});

t.test('a reservation is released only by the job that holds it; a new start replaces an old one', async (t) => {
  const r = new PendingReservations();
  r.reserve(vm('v'), 'h1', 1);
  r.attach('v', 'job-1');
  r.release('v', 'job-0');
  t.equal(r.get('v')?.hostId, 'h1', 'another job\'s release leaves it');
  r.release('v', 'job-1');
  t.equal(r.get('v'), undefined, 'its own job releases it');
  r.reserve(vm('v'), 'h1', 1);
  r.reserve(vm('v'), 'h2', 2);
  t.same(r.list().map((x) => x.hostId), ['h2'], 'one reservation per VM');
});

t.test('rebuilt from unfinished vm.start jobs: the request\'s placement, or the one a run remembered', async (t) => {
  const job = (id: string, target: string, params: Record<string, unknown>, kind: Job['kind'] = 'vm.start'): Job => ({
    id, kind, targetKind: 'vm', targetId: target, state: 'running', params, steps: [], progress: 0, error: null, correlationId: id,
    createdAt: 0, startedAt: null, endedAt: null, updatedAt: 0,
  });
  const r = new PendingReservations();
  const n = r.rebuild([
    job('j1', 'a', { placement: { hostId: 'h1', memoryMiB: 512, vcpus: 1, since: 5 } }),
    job('j2', 'b', { hostId: null, memo: { placement: { hostId: 'h2', memoryMiB: 256, vcpus: 2, since: 6 } } }),
    job('j3', 'c', { hostId: null }),
    job('j4', 'd', { placement: { hostId: 'h1', memoryMiB: 1, vcpus: 1, since: 1 } }, 'vm.stop'),
  ]);
  t.equal(n, 2, 'two starts carried a placement');
  t.same(r.list().map((x) => [x.vmId, x.hostId, x.memoryMiB]), [['a', 'h1', 512], ['b', 'h2', 256]]);
  r.release('a', 'j9');
  t.ok(r.get('a'), 'held by its job after the rebuild');
  t.equal(placementOf(job('x', 'x', { placement: { hostId: 7 } })), undefined, 'a malformed placement is none');
});

t.test('the scheduler\'s view of a VM: reservations, its NICs\' networks, the pool when it has disks', async (t) => {
  const v = schedVmOf({
    id: 'v', name: 'v', clusterId: 'c', spec: { memoryMiB: 64, nics: [{ network: 'b' }, { network: 'a' }, { network: 'b' }], disks: [{ name: 'vda', diskId: 'd' }] },
    desiredState: 'down', status: 'Down', hostId: null, memoryReservationMiB: 300, cpuReservation: 2, pinnedHostId: 'h', priority: 0, createdAt: 0, updatedAt: 0,
  });
  t.same(v, { vmId: 'v', clusterId: 'c', memoryMiB: 300, vcpus: 2, requiredNetworks: ['a', 'b'], pinnedHostId: 'h', needsPool: true });
  t.equal(policyOf({ policy: 'power_saving', thresholds: { highUtilization: 70 } } as never, s).highUtilizationPct, 70);
  t.equal(policyOf({ policy: 'vm_evenly_distributed', thresholds: {} } as never, s).name, 'evenly_distributed');
});
