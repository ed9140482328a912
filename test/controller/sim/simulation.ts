// The decision simulator: a virtual clock, the simulated world, and the controller made of the
// decision functions, stepped one poll interval at a time, with the invariants checked after
// every step:
//   I1 the SPM record never names a host while another host may still hold the lease;
//   I2 a VM never runs on two hosts (it was never started twice);
//   I3 a VM shown Down runs nowhere, and the VMs of a NonResponsive host are Unknown;
//   I4 no host runs more VM memory than it has for VMs.
// Faults (power, agent, management network, storage, a required network, controller restarts)
// and user requests (start, stop) come from a seeded random source: a run replays from its seed.

import { resolveDecisionSettings, type DecisionSettings } from '../../../controller/decision-settings.js';
import type { ClusterPolicy, SchedVm } from '../../../controller/scheduler/sched-types.js';
import { FakeClock } from './fake-clock.js';
import { seededRandom } from './seeded-random.js';
import { REQUIRED_NET, SimController } from './sim-controller.js';
import { World } from './world.js';

export interface SimOptions {
  seed: number;
  hosts: { id: string; memMiB: number; spmPriority?: number }[];
  vmCount: number;
  vmMemoryMiB?: number;
  policy?: ClusterPolicy;
  settings?: DecisionSettings;
}

export class Simulation {
  readonly clock = new FakeClock(0);
  readonly world: World;
  readonly ctl: SimController;
  readonly rnd: () => number;
  readonly s: DecisionSettings;
  readonly violations: string[] = [];
  readonly faults: string[] = [];

  constructor(o: SimOptions) {
    this.rnd = seededRandom(o.seed);
    this.s = o.settings ?? resolveDecisionSettings();
    this.world = new World(0, o.hosts);
    const defs = new Map<string, SchedVm>();
    for (let i = 0; i < o.vmCount; i++) {
      const vmId = `vm${String(i).padStart(2, '0')}`;
      defs.set(vmId, { vmId, clusterId: 'c1', memoryMiB: o.vmMemoryMiB ?? 1024, vcpus: 1, requiredNetworks: i % 3 === 0 ? [REQUIRED_NET] : [], pinnedHostId: null, needsPool: true });
    }
    this.ctl = new SimController(this.world, this.clock, this.s, this.rnd, defs, o.policy ?? { name: 'evenly_distributed', highUtilizationPct: 80 });
    this.ctl.onSpmChange = (from, to) => {
      const holder = this.world.leaseHolder();
      if (to !== null && holder !== null && holder !== to) {
        this.violations.push(`I1 at ${this.clock.now}: SPM record moved ${from} -> ${to} while ${holder} holds the lease`);
      }
    };
  }

  /** One poll interval: timers (agent calls, scheduled faults) run, then the controller polls and decides. */
  step(): void {
    this.clock.runUntil(this.clock.now + this.s.pollIntervalMs, (t) => this.world.advance(t));
    this.ctl.tick();
    this.check();
  }

  run(steps: number, each: () => void = () => {}): void {
    for (let i = 0; i < steps; i++) { each(); this.step(); }
  }

  /** Random faults and requests, then a step; `faultRate` per step. */
  randomStep(faultRate: number): void {
    if (this.rnd() < faultRate) this.randomFault();
    const ids = [...this.ctl.defs.keys()];
    if (this.rnd() < 0.5) {
      const vm = ids[Math.floor(this.rnd() * ids.length)]!;
      if (this.ctl.vms.get(vm)!.status === 'Down') this.ctl.start(vm, this.rnd() < 0.1);
      else this.ctl.start(vm); // a start of a VM that runs or may run: must be refused (409)
    }
    if (this.rnd() < 0.15) this.ctl.stop(ids[Math.floor(this.rnd() * ids.length)]!);
    this.step();
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.rnd() * xs.length)];
  }

  private later(minMs: number, maxMs: number, what: string, fn: () => void): void {
    this.clock.after(minMs + Math.floor(this.rnd() * (maxMs - minMs)), () => { this.faults.push(`${this.clock.now} ${what}`); fn(); });
  }

  randomFault(): void {
    const hosts = [...this.world.hosts.values()];
    const on = hosts.filter((h) => h.power);
    const h = this.pick(on);
    const kind = Math.floor(this.rnd() * 6);
    if (kind === 5) { this.faults.push(`${this.clock.now} controller restart`); this.ctl.restart(); return; }
    if (h === undefined) return;
    this.faults.push(`${this.clock.now} ${['power off', 'agent kill', 'mgmt cut', 'storage cut', 'required net down'][kind]} ${h.id}`);
    switch (kind) {
      case 0: this.world.powerOff(h.id); this.later(30_000, 300_000, `power on ${h.id}`, () => this.world.powerOn(h.id)); break;
      case 1: {
        const back = this.rnd() < 0.8 ? 5000 + Math.floor(this.rnd() * 120_000) : null;
        this.world.killAgent(h.id, back);
        if (back === null) this.later(200_000, 400_000, `agent start ${h.id}`, () => { if (h.power && !h.agent) h.agentStartsAt = this.clock.now; });
        break;
      }
      case 2: h.mgmtNet = false; this.later(5000, 300_000, `mgmt back ${h.id}`, () => { h.mgmtNet = true; }); break;
      case 3: h.storage = false; this.later(10_000, 400_000, `storage back ${h.id}`, () => { h.storage = true; }); break;
      case 4: h.requiredNetUp = false; this.later(10_000, 100_000, `required net up ${h.id}`, () => { h.requiredNetUp = true; }); break;
    }
  }

  private check(): void {
    const now = this.clock.now;
    const where = new Map<string, string[]>();
    for (const h of this.world.hosts.values()) {
      let mem = 0;
      for (const [vmId, d] of h.domains) {
        where.set(vmId, [...(where.get(vmId) ?? []), h.id]);
        mem += d.memoryMiB;
      }
      if (mem > h.memMiB - this.s.hostReservedMemoryMiB) this.violations.push(`I4 at ${now}: ${h.id} runs ${mem} MiB of VMs, has ${h.memMiB - this.s.hostReservedMemoryMiB}`);
    }
    for (const [vmId, hs] of where) if (hs.length > 1) this.violations.push(`I2 at ${now}: ${vmId} runs on ${hs.join(' and ')}`);
    for (const rec of this.ctl.vms.values()) {
      if (rec.status === 'Down' && where.has(rec.vmId)) this.violations.push(`I3 at ${now}: ${rec.vmId} shown Down but runs on ${where.get(rec.vmId)!.join(', ')}`);
      if (rec.hostId !== null && this.ctl.health.get(rec.hostId)?.status === 'NonResponsive' && rec.status !== 'Unknown') {
        this.violations.push(`I3 at ${now}: ${rec.vmId} on NonResponsive ${rec.hostId} shown ${rec.status}, not Unknown`);
      }
    }
  }
}
