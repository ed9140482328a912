import t from 'tap';
import { defaultDecisionSettings, resolveDecisionSettings, type DecisionSettings } from '../../../controller/decision-settings.js';
import { enrolledHost, type HostHealth } from '../../../controller/health/host-status.js';
import { FIT } from '../../../controller/health/fitness.js';
import { nextHostHealth, type PollOutcome, type HealthStep } from '../../../controller/health/next-host-health.js';
import { nonResponsiveGraceMs } from '../../../controller/health/grace.js';
import type { DecisionEvent } from '../../../controller/decision-event.js';

const S = defaultDecisionSettings();
const ok = (vmCount = 0): PollOutcome => ({ kind: 'answered', vmCount, fitness: FIT });
const fail: PollOutcome = { kind: 'failed', error: 'ECONNREFUSED' };

/** Applies polls at the given times (ms) and returns every step. */
function run(start: HostHealth, polls: [number, PollOutcome][], isSpm = false, s: DecisionSettings = S): { host: HostHealth; steps: HealthStep[]; events: DecisionEvent[] } {
  let host = start;
  const steps: HealthStep[] = [];
  for (const [at, poll] of polls) {
    const step = nextHostHealth(host, poll, { isSpm }, at, s);
    steps.push(step);
    host = step.host;
  }
  return { host, steps, events: steps.flatMap((x) => x.events) };
}

/** An Up host whose last good poll was at time 0 and reported vmCount VMs. */
function upAt0(vmCount = 0): HostHealth {
  return run(enrolledHost('h1', -1000), [[0, ok(vmCount)]]).host;
}

/** Failed polls every 3 s after an Up host's last answer at 0: the status after each. */
function statusesAfterFailures(host: HostHealth, until: number, isSpm = false): Map<number, string> {
  const out = new Map<number, string>();
  let h = host;
  for (let at = 3000; at <= until; at += 3000) {
    h = nextHostHealth(h, fail, { isSpm }, at, S).host;
    out.set(at, h.status);
  }
  return out;
}

t.test('an enrolled host is Installing until the first poll answers, then Up; failed polls before that leave it Installing', async (t) => {
  const r = run(enrolledHost('h1', 0), [[3000, fail], [6000, fail], [60_000, fail], [200_000, fail], [203_000, ok(0)]]);
  t.same(r.steps.slice(0, 4).map((x) => x.host.status), ['Installing', 'Installing', 'Installing', 'Installing']);
  t.equal(r.host.status, 'Up');
  t.equal(r.events.length, 1, 'one transition, one event');
  t.match(r.events[0], { at: 203_000, kind: 'host.status', host: 'h1', data: { from: 'Installing', to: 'Up' } });
  t.match(r.events[0]!.reason, /first contact/);
});

t.test('the first failed poll turns an Up host Connecting, with the error and the grace in the event', async (t) => {
  const step = nextHostHealth(upAt0(), fail, { isSpm: false }, 3000, S);
  t.equal(step.host.status, 'Connecting');
  t.equal(step.host.failedPolls, 1);
  t.equal(step.host.lastError, 'ECONNREFUSED');
  t.match(step.events, [{ at: 3000, kind: 'host.status', data: { from: 'Up', to: 'Connecting', graceMs: 60_000 } }]);
  t.match(step.events[0]!.reason, /ECONNREFUSED/);
  t.equal(step.vmsTurnedUnknown, false);
});

t.test('NonResponsive takes more than 2 failed polls AND more than 60 s: with 3 s polls it comes at the first poll after 60 s', async (t) => {
  const st = statusesAfterFailures(upAt0(), 66_000);
  t.equal(st.get(9000), 'Connecting', '3 failed polls but only 9 s: still Connecting');
  t.equal(st.get(60_000), 'Connecting', 'exactly 60 s is not more than the grace');
  t.equal(st.get(63_000), 'NonResponsive');
});

t.test('NonResponsive takes more than 2 failed polls even when the grace has long passed (slow, timed-out polls)', async (t) => {
  const r = run(upAt0(), [[61_000, fail], [122_000, fail], [183_000, fail]]);
  t.same(r.steps.map((x) => x.host.status), ['Connecting', 'Connecting', 'NonResponsive']);
});

t.test('the grace grows by 20 s for the SPM and 0.5 s per VM (oVirt: 20 VMs -> 70 s, SPM with 40 VMs -> 100 s)', async (t) => {
  t.equal(nonResponsiveGraceMs(S, { isSpm: false, vmCount: 20 }), 70_000);
  t.equal(nonResponsiveGraceMs(S, { isSpm: true, vmCount: 40 }), 100_000);
  t.equal(nonResponsiveGraceMs(S, { isSpm: true, vmCount: 0 }), 80_000);
  const spm40 = statusesAfterFailures(upAt0(40), 105_000, true);
  t.equal(spm40.get(99_000), 'Connecting');
  t.equal(spm40.get(102_000), 'NonResponsive');
  const plain20 = statusesAfterFailures(upAt0(20), 75_000);
  t.equal(plain20.get(69_000), 'Connecting');
  t.equal(plain20.get(72_000), 'NonResponsive');
});

t.test('each part of the grace is a setting', async (t) => {
  const s = resolveDecisionSettings({ nonResponsiveGraceMs: 10_000, spmExtraGraceMs: 5000, perVmGraceMs: 1000, nonResponsiveAttempts: 1 });
  t.equal(nonResponsiveGraceMs(s, { isSpm: true, vmCount: 3 }), 18_000);
  const r = run(upAt0(3), [[3000, fail], [18_000, fail], [18_001, fail]], true, s);
  t.same(r.steps.map((x) => x.host.status), ['Connecting', 'Connecting', 'NonResponsive']);
});

t.test("a host turning NonResponsive turns its VMs Unknown (never Down), in the step and an event", async (t) => {
  const r = run(upAt0(4), [[3000, fail], [6000, fail], [9000, fail], [64_000, fail], [67_000, fail]]);
  const turn = r.steps.findIndex((x) => x.host.status === 'NonResponsive');
  t.equal(turn, 3);
  t.equal(r.steps[turn]!.vmsTurnedUnknown, true);
  t.equal(r.steps[turn + 1]!.vmsTurnedUnknown, false, 'only once, at the transition');
  const unknown = r.events.find((e) => e.kind === 'host.vms-unknown');
  t.match(unknown, { at: 64_000, severity: 'warning', data: { vmCount: 4 } });
  t.match(unknown!.reason, /Unknown/);
  t.match(r.events.find((e) => e.data?.['to'] === 'NonResponsive'), { severity: 'error', data: { from: 'Connecting', failedPolls: 4 } });
});

t.test('a NonResponsive host that answers again is Up, and the event says after how many failed polls', async (t) => {
  const r = run(upAt0(), [[3000, fail], [6000, fail], [9000, fail], [64_000, fail], [70_000, ok(2)]]);
  t.equal(r.host.status, 'Up');
  t.equal(r.host.failedPolls, 0);
  t.equal(r.host.vmCount, 2);
  t.match(r.events.at(-1), { at: 70_000, data: { from: 'NonResponsive', to: 'Up' } });
  t.match(r.events.at(-1)!.reason, /after 4 failed poll/);
});

t.test('every transition is one event with its reason and timestamp; a poll that changes nothing gives none', async (t) => {
  const r = run(upAt0(), [[3000, ok()], [6000, fail], [9000, fail], [12_000, ok()], [15_000, ok()]]);
  t.same(r.events.map((e) => [e.at, e.data?.['from'], e.data?.['to']]), [[6000, 'Up', 'Connecting'], [12_000, 'Connecting', 'Up']]);
  for (const e of r.events) t.ok(e.reason.length > 10, `reason given: ${e.reason}`);
});

t.test('an agent answering 99 makes the host Initializing; still 99 after 3 min makes it NonOperational; a good poll makes it Up', async (t) => {
  const rec: PollOutcome = { kind: 'recovering' };
  const r = run(upAt0(), [[3000, rec], [100_000, rec], [183_000, rec], [183_001, rec], [190_000, rec], [200_000, ok()]]);
  t.same(r.steps.map((x) => x.host.status), ['Initializing', 'Initializing', 'Initializing', 'NonOperational', 'NonOperational', 'Up']);
  t.match(r.steps[3]!.host.reasons, [{ code: 'recoveryTimeout' }]);
  t.same(r.steps[5]!.host.reasons, [], 'reasons cleared when Up');
  t.equal(r.steps[0]!.host.failedPolls, 0, '99 is an answer: no failed poll');
});

t.test('a reachable host missing a required network is NonOperational naming it; Up once the network is there', async (t) => {
  const missing: PollOutcome = { kind: 'answered', vmCount: 0, fitness: { missingRequiredNetworks: ['storage', 'ovirtmgmt'], unreachableDomains: [] } };
  const r = run(upAt0(), [[3000, missing], [6000, missing], [9000, ok()]]);
  t.same(r.steps.map((x) => x.host.status), ['NonOperational', 'NonOperational', 'Up']);
  t.same(r.steps[0]!.host.reasons.map((x) => [x.code, x.subject]), [['requiredNetworkMissing', 'ovirtmgmt'], ['requiredNetworkMissing', 'storage']]);
  t.equal(r.events.length, 2, 'the repeated poll with the same reasons gives no event');
  t.match(r.events[0]!.reason, /required network ovirtmgmt.*storage/);
});

t.test('NonOperational reasons that change give a host.unfit event', async (t) => {
  const a: PollOutcome = { kind: 'answered', vmCount: 0, fitness: { missingRequiredNetworks: ['a'], unreachableDomains: [] } };
  const b: PollOutcome = { kind: 'answered', vmCount: 0, fitness: { missingRequiredNetworks: ['b'], unreachableDomains: [] } };
  const r = run(upAt0(), [[3000, a], [6000, b]]);
  t.match(r.events.map((e) => e.kind), ['host.status', 'host.unfit']);
  t.same(r.host.reasons.map((x) => x.subject), ['b']);
});

t.test('pool storage unreachable makes the host NonOperational only after 5 min, and the clock restarts when it comes back', async (t) => {
  const sd: PollOutcome = { kind: 'answered', vmCount: 0, fitness: { missingRequiredNetworks: [], unreachableDomains: ['sd-1'] } };
  const r = run(upAt0(), [[3000, sd], [200_000, sd], [250_000, ok()], [253_000, sd], [552_000, sd], [553_000, sd]]);
  t.same(r.steps.map((x) => x.host.status), ['Up', 'Up', 'Up', 'Up', 'Up', 'NonOperational']);
  t.match(r.host.reasons, [{ code: 'poolStorageUnreachable', subject: 'sd-1' }]);
  t.equal(r.steps[2]!.host.storageUnreachableSince, null);
});

t.test('a failed poll turns a NonOperational host Connecting too (it is no longer known reachable)', async (t) => {
  const missing: PollOutcome = { kind: 'answered', vmCount: 0, fitness: { missingRequiredNetworks: ['n'], unreachableDomains: [] } };
  const r = run(upAt0(), [[3000, missing], [6000, fail]]);
  t.equal(r.host.status, 'Connecting');
});
