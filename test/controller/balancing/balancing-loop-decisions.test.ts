// The balancing loop's handling of each kind of decision, on a real SQLite store with a fake
// clock: scripted utilisation samples, hosts whose status the test sets (the placement view), no
// agents. Proves: two clusters each get their one decision in the same cycle (one per cluster);
// a park decision with no maintenance flow is not acted on and its event is recorded once, not
// every cycle; with one, the host is parked once and, when the others run over, activated again
// (and an admin's maintenance never is); a history gone stale (no poll heard for longer than the
// sample gap) decides nothing.
import t from 'tap';
import { join } from 'node:path';
import { BalancingLoop, type BalancingDeps } from '../../../controller/balancing/balancing-loop.js';
import { UtilHistory } from '../../../controller/balancing/history.js';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import type { HostStatus } from '../../../controller/health/host-status.js';
import type { Policy } from '../../../controller/model/clusters.js';
import type { Host } from '../../../controller/model/hosts.js';
import { PendingReservations } from '../../../controller/scheduler/reservations.js';
import type { Booking } from '../../../controller/scheduler/sched-types.js';
import { Store } from '../../../controller/store/store.js';
import { VmRegistry } from '../../../controller/vms/vm-registry.js';
import { scratchDir } from '../../agent/harness.js';

const settings = resolveDecisionSettings({ balancingIntervalMs: 3_600_000 });
const MIN = 60_000;

interface World {
  store: Store;
  loop: BalancingLoop;
  now: { t: number };
  status: Map<string, HostStatus>;
  /** scripted CPU % per host, sampled every 3 s by `advance` */
  cpu: Map<string, number>;
  advance(ms: number): void;
  requests: Array<[string, string]>;
}

async function world(o: { hostRequest?: boolean } = {}): Promise<World> {
  const store = await Store.open({ engine: 'sqlite', path: join(scratchDir('hv-bal-'), 'c.db') });
  t.teardown(() => store.close());
  const now = { t: 1_800_000_000_000 };
  const status = new Map<string, HostStatus>();
  const cpu = new Map<string, number>();
  const history = new UtilHistory(settings.balancingHistorySamples);
  const registry = new VmRegistry(store);
  const requests: Array<[string, string]> = [];
  const running = async (): Promise<Booking[]> => (await store.vms.list()).filter((v) => v.hostId !== null && v.status !== 'Down')
    .map((v) => ({ vmId: v.id, hostId: v.hostId!, memoryMiB: v.memoryReservationMiB, vcpus: v.cpuReservation }));
  let booked: Booking[] = [];
  const deps: BalancingDeps = {
    store, settings, history, registry, reservations: new PendingReservations(), clock: () => now.t,
    view: {
      schedHosts: (hosts: readonly Host[]) => hosts.map((h) => ({
        hostId: h.id, clusterId: h.clusterId, status: status.get(h.id) ?? 'Up', poolConnected: true, memTotalMiB: 16_384, cpus: 4, networks: [],
      })),
      running: () => booked,
    },
    isSpm: () => false,
    submit: () => undefined,
    ...(o.hostRequest && {
      hostRequest: async (kind: 'maintenance' | 'activate', hostId: string) => {
        requests.push([kind, hostId]);
        status.set(hostId, kind === 'maintenance' ? 'Maintenance' : 'Up');
        return true;
      },
    }),
  };
  const loop = new BalancingLoop(deps);
  const cycle = loop.cycle.bind(loop);
  loop.cycle = async () => { booked = await running(); return cycle(); };
  return {
    store, loop, now, status, cpu, requests,
    advance(ms) {
      for (const end = now.t + ms; now.t < end;) {
        now.t += 3_000;
        for (const [id, pct] of cpu) history.record(id, { at: now.t, cpuPct: pct, memTotalMiB: 16_384, memFreeMiB: 12_000 });
      }
    },
  };
}

async function cluster(w: World, name: string, policy: Policy, hostCpu: number[], vmsPerHost: number[], thresholds = {}): Promise<Host[]> {
  const c = await w.store.clusters.create({ name, policy, thresholds });
  const hosts: Host[] = [];
  for (const [i, pct] of hostCpu.entries()) {
    const h = await w.store.hosts.create({ name: `${name}-h${i}`, address: 'localhost', port: 50_000 + i, clusterId: c.id, certFingerprint: 'test' });
    hosts.push(h);
    w.cpu.set(h.id, pct);
    for (let k = 0; k < vmsPerHost[i]!; k++) {
      const v = await w.store.vms.create({ name: `${name}-h${i}-vm${k}`, clusterId: c.id, spec: { memoryMiB: 512 }, memoryReservationMiB: 512, cpuReservation: 1, pinnedHostId: null, priority: 0 });
      await w.store.vms.setRuntime(v.id, 'Up', h.id);
    }
  }
  return hosts;
}

const events = async (w: World, kind: string) => (await w.store.eventLog.list(0, 1000)).filter((e) => e.kind === kind);

t.test('two clusters, each out of balance: one decision per cluster in the same cycle', async (t) => {
  const w = await world();
  const [a1, b1] = await cluster(w, 'one', 'evenly_distributed', [95, 10], [3, 0]);
  const [a2, b2] = await cluster(w, 'two', 'vm_evenly_distributed', [30, 30], [3, 0], { highVmCount: 2, migrationThreshold: 2 });
  w.advance(3 * MIN);
  const out = await w.loop.cycle();
  t.same(out.map((x) => [x.decision?.kind, (x.decision as { fromHostId?: string })?.fromHostId, (x.decision as { toHostId?: string })?.toHostId]),
    [['migrate', a1!.id, b1!.id], ['migrate', a2!.id, b2!.id]]);
  const jobs = (await w.store.jobs.list()).filter((j) => j.kind === 'vm.migrate');
  t.equal(jobs.length, 2, 'two vm.migrate jobs, one per cluster');
  const next = await w.loop.cycle();
  t.same(next.map((x) => x.skipped), ['a migration of this cluster is still running', 'a migration of this cluster is still running'], 'and none while they are unfinished');
});

t.test('a park decision with no maintenance flow is not acted on, and recorded once', async (t) => {
  const w = await world();
  const [a] = await cluster(w, 'ps', 'power_saving', [2, 50], [0, 3]);
  w.advance(3 * MIN);
  for (let i = 0; i < 3; i++) {
    const [x] = await w.loop.cycle();
    t.same([x!.decision?.kind, (x!.decision as { hostId: string }).hostId, x!.skipped], ['maintenance', a!.id, 'no host maintenance flow to carry the decision out']);
    w.advance(MIN);
  }
  t.equal((await events(w, 'balancing.maintenance')).length, 1, 'one balancing.maintenance event for three cycles');
  t.notOk(w.loop.policyMaintained.has(a!.id), 'not remembered as parked: it was not');
});

t.test('with a maintenance flow: parked once, activated again when the others run over; an admin\'s maintenance is left alone', async (t) => {
  const w = await world({ hostRequest: true });
  const [a, b, c] = await cluster(w, 'ps2', 'power_saving', [2, 50, 50], [0, 2, 2]);
  w.advance(3 * MIN);
  const [x] = await w.loop.cycle();
  t.same(x!.decision?.kind, 'maintenance');
  t.same(w.requests, [['maintenance', a!.id]], 'the flow was asked once');
  t.ok(w.loop.policyMaintained.has(a!.id));
  w.status.set(c!.id, 'Maintenance'); // an admin's
  w.cpu.set(b!.id, 92);
  w.advance(MIN);
  const [y] = await w.loop.cycle();
  t.equal(y!.decision, null, 'over for 1 min of 2: nothing yet');
  w.advance(70_000);
  const [z] = await w.loop.cycle();
  t.same([z!.decision?.kind, (z!.decision as { hostId: string }).hostId], ['activate', a!.id], 'the parked host is activated, not the admin\'s');
  t.same(w.requests.at(-1), ['activate', a!.id]);
  t.notOk(w.loop.policyMaintained.has(a!.id), 'no longer parked by the policy');
  const activated = await events(w, 'balancing.activate');
  t.equal(activated.length, 1);
  t.match(activated[0]!.message, /over 80 % for 2 min/);
});

t.test('a history gone stale (no poll heard for longer than the sample gap) decides nothing', async (t) => {
  const w = await world();
  await cluster(w, 'stale', 'evenly_distributed', [95, 10], [3, 0]);
  w.advance(3 * MIN);
  w.now.t += settings.balancingSampleGapMs + 1;
  const [x] = await w.loop.cycle();
  t.equal(x!.decision, null);
  w.advance(3_000);
  t.equal((await w.loop.cycle())[0]!.decision, null, 'one fresh sample after the gap is no run of 2 min');
});
