import t from 'tap';
import { Simulation } from './simulation.js';
import { SANLOCK_HOST_DEAD_MS } from './world.js';

const GiB = 1024;
const two = (a: number, b: number) => [{ id: 'h1', memMiB: 512 + a * GiB, spmPriority: 10 }, { id: 'h2', memMiB: 512 + b * GiB }];
const three = [{ id: 'h1', memMiB: 512 + 5 * GiB }, { id: 'h2', memMiB: 512 + 5 * GiB }, { id: 'h3', memMiB: 512 + 4 * GiB }];

/** Steps until cond holds (at most maxSteps); returns the time it first held, or null. */
function until(sim: Simulation, cond: () => boolean, maxSteps: number): number | null {
  for (let i = 0; i < maxSteps; i++) {
    sim.step();
    if (cond()) return sim.clock.now;
  }
  return null;
}

/** Two hosts Up, h1 the SPM, VMs vm00..vm0(n-1) started and Up. */
function settled(a: number, b: number, vms: number, seed = 1): Simulation {
  const sim = new Simulation({ seed, hosts: two(a, b), vmCount: vms });
  sim.run(5);
  for (const id of sim.ctl.defs.keys()) sim.ctl.start(id);
  sim.run(5);
  return sim;
}
const vmsOn = (sim: Simulation, host: string) => [...sim.ctl.vms.values()].filter((v) => v.hostId === host);

t.test('SPM host loses power: NonResponsive after the SPM grace, the other host takes the lease once it frees (140 s), never before', async (t) => {
  const sim = settled(4, 4, 4);
  t.equal(sim.ctl.spm.spmHostId, 'h1');
  t.ok(vmsOn(sim, 'h1').length > 0);
  const lostAt = sim.clock.now;
  const renewedAt = sim.world.lease.renewedAt;
  sim.world.powerOff('h1');
  const nonResp = until(sim, () => sim.ctl.health.get('h1')!.status === 'NonResponsive', 60);
  t.ok(nonResp !== null && nonResp - lostAt > 80_000 && nonResp - lostAt <= 86_000, `NonResponsive ${(nonResp! - lostAt) / 1000} s after the loss (SPM grace 80 s)`);
  t.ok(vmsOn(sim, 'h1').every((v) => v.status === 'Unknown'), "h1's VMs are Unknown");
  const elected = until(sim, () => sim.ctl.spm.spmHostId === 'h2', 100);
  t.ok(elected !== null);
  const after = (elected! - lostAt) / 1000;
  t.ok(elected! >= renewedAt + SANLOCK_HOST_DEAD_MS, `h2 SPM ${after} s after the loss: not before the lease frees`);
  t.ok(elected! <= renewedAt + SANLOCK_HOST_DEAD_MS + sim.s.spmRetryIntervalMs + 2 * sim.s.pollIntervalMs, 'and within one retry interval of it');
  t.comment(`failover: NonResponsive after ${(nonResp! - lostAt) / 1000} s, new SPM after ${after} s`);
  t.same(sim.violations, []);
});

t.test("SPM host's agent killed: the lease is released, the other host reads it free and is SPM within two polls", async (t) => {
  const sim = settled(4, 4, 2);
  const lostAt = sim.clock.now;
  sim.world.killAgent('h1', null);
  const elected = until(sim, () => sim.ctl.spm.spmHostId === 'h2', 20);
  t.ok(elected !== null && elected - lostAt <= 2 * sim.s.pollIntervalMs + 3000, `new SPM after ${(elected! - lostAt) / 1000} s`);
  t.equal(sim.ctl.health.get('h1')!.status, 'Connecting', 'long before h1 is declared NonResponsive');
  t.same(sim.violations, []);
});

t.test("SPM host cut from the management network only: it keeps the lease and its VMs run, so nothing moves; all is back when it returns", async (t) => {
  const sim = settled(4, 4, 4);
  const spmChanges = sim.ctl.stats.spmChanges.length;
  const onH1 = vmsOn(sim, 'h1').map((v) => v.vmId);
  t.ok(onH1.length > 0);
  sim.world.host('h1').mgmtNet = false;
  sim.run(200, () => { for (const id of onH1) sim.ctl.start(id); }); // 10 min of retried starts of its VMs
  t.equal(sim.ctl.health.get('h1')!.status, 'NonResponsive');
  t.equal(sim.ctl.stats.spmChanges.length, spmChanges, 'no SPM change while h1 renews its lease');
  t.ok(sim.ctl.events.some((e) => e.kind === 'spm.start-failed' && e.host === 'h2'), 'h2 was tried and refused by the lease');
  t.same(onH1.map((id) => sim.ctl.vms.get(id)!.status), onH1.map(() => 'Unknown'));
  t.ok(sim.ctl.stats.refused409 >= 200 * onH1.length, 'every start of an Unknown VM was refused');
  sim.world.host('h1').mgmtNet = true;
  sim.run(2);
  t.equal(sim.ctl.health.get('h1')!.status, 'Up');
  t.equal(sim.ctl.spm.spmHostId, 'h1');
  t.same(onH1.map((id) => [sim.ctl.vms.get(id)!.status, sim.ctl.vms.get(id)!.hostId]), onH1.map(() => ['Up', 'h1']));
  t.same(sim.violations, []);
});

t.test('10 VMs started in one step on two hosts with memory for 7: 7 run, 3 are refused naming memory on both hosts', async (t) => {
  const sim = new Simulation({ seed: 3, hosts: two(4, 3), vmCount: 10 });
  sim.run(5);
  const answers = [...sim.ctl.defs.keys()].map((id) => sim.ctl.start(id));
  t.equal(answers.filter((a) => a === 'begun').length, 7);
  t.equal(answers.filter((a) => a === '422').length, 3);
  t.same(sim.ctl.stats.refused422, { memory: 6 }, 'each refusal names memory for h1 and h2');
  sim.run(5);
  t.equal([...sim.ctl.vms.values()].filter((v) => v.status === 'Up').length, 7);
  t.same([sim.world.host('h1').domains.size, sim.world.host('h2').domains.size], [4, 3]);
  t.same(sim.violations, []);
});

t.test('controller restart during 10 starts: each VM ends Up exactly once; nothing is started twice', async (t) => {
  for (const delay of [0, 100, 700, 1500]) {
    const sim = new Simulation({ seed: 10 + delay, hosts: two(6, 6), vmCount: 10 });
    sim.run(5);
    for (const id of sim.ctl.defs.keys()) t.equal(sim.ctl.start(id), 'begun');
    sim.clock.runUntil(sim.clock.now + delay, (x) => sim.world.advance(x));
    sim.ctl.restart(); // every answer of an agent call made so far is lost
    sim.run(60, () => { for (const id of sim.ctl.defs.keys()) sim.ctl.start(id); }); // users retry all the while
    const recs = [...sim.ctl.vms.values()];
    t.same(recs.filter((v) => v.status !== 'Up' || v.startInFlight !== null).map((v) => v.vmId), [], `restart after ${delay} ms: all Up, none in flight`);
    const domains = [...sim.world.hosts.values()].reduce((n, h) => n + h.domains.size, 0);
    t.equal(domains, 10, 'ten domains in all: one per VM');
    t.equal(sim.ctl.stats.startsBegun, 10, 'the retried starts were all refused: none was begun twice');
    t.same(sim.violations, []);
  }
});

t.test('a stopped agent: Connecting within 2 polls, NonResponsive after the grace with its VMs Unknown; back: Up with the real status', async (t) => {
  const sim = settled(4, 4, 4);
  sim.run(3);
  const onH2 = vmsOn(sim, 'h2').map((v) => v.vmId);
  const stoppedAt = sim.clock.now;
  sim.world.killAgent('h2', null);
  const connecting = until(sim, () => sim.ctl.health.get('h2')!.status === 'Connecting', 10);
  t.ok(connecting !== null && connecting - stoppedAt <= 2 * sim.s.pollIntervalMs, `Connecting after ${(connecting! - stoppedAt) / 1000} s`);
  const nonResp = until(sim, () => sim.ctl.health.get('h2')!.status === 'NonResponsive', 40);
  const grace = sim.s.nonResponsiveGraceMs + onH2.length * sim.s.perVmGraceMs;
  t.ok(nonResp !== null && nonResp - stoppedAt > grace && nonResp - stoppedAt <= grace + 2 * sim.s.pollIntervalMs, `NonResponsive after ${(nonResp! - stoppedAt) / 1000} s (grace ${grace / 1000} s)`);
  t.same(onH2.map((id) => sim.ctl.vms.get(id)!.status), onH2.map(() => 'Unknown'));
  sim.world.destroyDomain('h2', onH2[0]!); // one VM died while the agent was away
  sim.world.host('h2').agentStartsAt = sim.clock.now;
  const up = until(sim, () => sim.ctl.health.get('h2')!.status === 'Up', 10);
  t.ok(up !== null, 'Up again after the agent recovered (99 first)');
  t.equal(sim.ctl.vms.get(onH2[0]!)!.status, 'Down', 'the VM that died shows Down only now that the agent says so');
  t.same(onH2.slice(1).map((id) => sim.ctl.vms.get(id)!.status), onH2.slice(1).map(() => 'Up'));
  t.same(sim.violations, []);
});

t.test('random runs: 40 seeds x 30 simulated minutes of faults and requests break no invariant', async (t) => {
  const total = { starts: 0, r409: 0, r422: 0, spm: 0, nonResponsive: 0, faults: 0, unknown: 0 };
  for (let seed = 1; seed <= 40; seed++) {
    const sim = new Simulation({ seed, hosts: three, vmCount: 20 });
    for (let i = 0; i < 600; i++) sim.randomStep(0.04);
    t.same(sim.violations.slice(0, 5), [], `seed ${seed}`);
    total.starts += sim.ctl.stats.startsBegun;
    total.r409 += sim.ctl.stats.refused409;
    total.r422 += Object.values(sim.ctl.stats.refused422).reduce((a, b) => a + b, 0);
    total.spm += sim.ctl.stats.spmChanges.length;
    total.faults += sim.faults.length;
    total.nonResponsive += sim.ctl.events.filter((e) => e.data?.['to'] === 'NonResponsive').length;
    total.unknown += sim.ctl.events.filter((e) => e.kind === 'vm.status' && e.data?.['to'] === 'Unknown').length;
  }
  t.comment(`over 40 runs: ${JSON.stringify(total)}`);
  // The runs must exercise what the invariants guard, or they prove nothing.
  for (const [k, v] of Object.entries(total)) t.ok(v > 40, `${k}: ${v}`);
});

t.test('the invariant checks catch a controller that breaks the rules', async (t) => {
  const broken = (sabotage: Simulation['ctl']['sabotage']) => {
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 5; seed++) {
      const sim = new Simulation({ seed, hosts: three, vmCount: 20 });
      sim.ctl.sabotage = sabotage;
      for (let i = 0; i < 600; i++) sim.randomStep(0.04);
      for (const v of sim.violations) kinds.add(v.slice(0, 2));
    }
    return [...kinds].sort();
  };
  t.same(broken({ guessDown: true }), ['I2', 'I3', 'I4'], 'guessing Down for unreachable hosts: VMs started twice, shown Down while running');
  t.same(broken({ ignoreBookings: true }), ['I4'], 'placing without bookings: overbooked hosts');
  t.same(broken({ trustRefusedSpmStart: true }), ['I1'], 'a refused spmStart taken as success: two SPMs');
});

t.test('a run replays exactly from its seed', async (t) => {
  const log = (seed: number) => {
    const sim = new Simulation({ seed, hosts: three, vmCount: 20 });
    for (let i = 0; i < 300; i++) sim.randomStep(0.05);
    return JSON.stringify([sim.ctl.events, sim.faults]);
  };
  t.equal(log(7), log(7));
  t.not(log(7), log(8));
});
