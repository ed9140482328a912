// The utilisation history: the ring keeps at most its capacity (the newest), ignores a sample
// older than its newest, and is fed from health observations (a failed poll adds nothing);
// heldFor counts from the first sample of the newest unbroken run, a gap or a stale newest sample
// breaks it; windowMean averages the window and is null for a host not heard lately.
import t from 'tap';
import { heldFor, heldThroughout, SampleRing, UtilHistory, windowMean, type UtilSample } from '../../../controller/balancing/history.js';
import type { HealthObservation } from '../../../controller/monitor/observation-sink.js';

const s = (at: number, cpuPct: number, memFreeMiB = 1000): UtilSample => ({ at, cpuPct, memTotalMiB: 4096, memFreeMiB });
const over = (x: UtilSample) => x.cpuPct > 80;

t.test('the ring keeps the newest `capacity` samples, oldest first, and drops one older than its newest', async (t) => {
  const r = new SampleRing(3);
  for (let i = 1; i <= 5; i++) r.push(s(i * 1000, i));
  t.same(r.samples().map((x) => x.at), [3000, 4000, 5000]);
  r.push(s(4500, 99));
  t.same(r.samples().map((x) => x.at), [3000, 4000, 5000], 'a late sample is stale');
  t.throws(() => new SampleRing(0), RangeError);
});

t.test('UtilHistory takes a sample from each answered poll, nothing from a failed one, CPU as user + system', async (t) => {
  const h = new UtilHistory(10);
  const obs = (at: number | null, stats: Partial<NonNullable<HealthObservation['stats']>> | null): HealthObservation => ({
    host: { hostId: 'h1', status: 'Up', statusSince: 0, reasons: [], failedPolls: 0, lastContactAt: at, vmCount: 0, storageUnreachableSince: null, lastError: null },
    events: [],
    stats: stats && { cpuUser: 0, cpuSys: 0, cpuIdle: 100, memTotal: 4096, memFree: 100, memAvailable: 2000, loadAvg: [0, 0, 0], network: {}, uptime: 1, vmCount: 0, vmActive: 0, ...stats } as NonNullable<HealthObservation['stats']>,
  });
  h.observe(obs(1000, { cpuUser: 30.04, cpuSys: 12.02 }));
  h.observe(obs(4000, null));
  h.observe(obs(7000, { cpuUser: 1, cpuSys: 1, memAvailable: 1500 }));
  t.same(h.of('h1').map((x) => [x.at, x.cpuPct, x.memFreeMiB]), [[1000, 42.1, 2000], [7000, 2, 1500]]);
  t.same(h.of('other'), []);
  const snap = h.snapshot();
  h.observe(obs(10_000, { cpuUser: 5 }));
  t.equal(snap.get('h1')!.length, 2, 'a snapshot does not change with later samples');
  h.forget('h1');
  t.same(h.of('h1'), []);
});

const table: Array<{ name: string; samples: UtilSample[]; now: number; held: number }> = [
  { name: 'no sample: 0', samples: [], now: 10_000, held: 0 },
  { name: 'all over: from the first sample', samples: [s(0, 90), s(3000, 90), s(6000, 95)], now: 7000, held: 7000 },
  { name: 'newest under: 0', samples: [s(0, 90), s(3000, 90), s(6000, 50)], now: 7000, held: 0 },
  { name: 'a dip breaks the run: from the first sample after it', samples: [s(0, 90), s(3000, 50), s(6000, 90), s(9000, 90)], now: 9000, held: 3000 },
  { name: 'a gap over 10 s breaks the run', samples: [s(0, 90), s(3000, 90), s(14_000, 90), s(17_000, 90)], now: 17_000, held: 3000 },
  { name: 'a gap of exactly 10 s does not', samples: [s(0, 90), s(10_000, 90)], now: 10_000, held: 10_000 },
  { name: 'a newest sample older than 10 s: 0 (not heard)', samples: [s(0, 90), s(3000, 90)], now: 13_001, held: 0 },
];
for (const c of table) {
  t.test(`heldFor: ${c.name}`, async (t) => {
    t.equal(heldFor(c.samples, over, c.now, 10_000), c.held);
    if (c.held > 0) t.ok(heldThroughout(c.samples, over, c.now, c.held, 10_000), 'held throughout exactly that long');
    t.notOk(heldThroughout(c.samples, over, c.now, c.held + 1, 10_000), 'but not a millisecond more');
  });
}

t.test('windowMean: the mean over the window; null when not heard lately or no sample in it', async (t) => {
  const xs = [s(0, 100), s(5000, 10), s(10_000, 20), s(15_000, 30)];
  t.equal(windowMean(xs, (x) => x.cpuPct, 15_000, 10_000, 10_000), 20, 'the samples of the last 10 s: 10, 20, 30');
  t.equal(windowMean(xs, (x) => x.cpuPct, 15_000, 60_000, 10_000), 40, 'all four');
  t.equal(windowMean(xs, (x) => x.cpuPct, 26_000, 60_000, 10_000), null, 'newest 11 s old');
  t.equal(windowMean([], (x) => x.cpuPct, 0, 60_000, 10_000), null);
});
