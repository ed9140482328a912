// Reconnect backoff: exponential, capped, and jittered within its bounds.
import t from 'tap';
import { backoffDelay, backoffSettings, DEFAULT_BACKOFF } from '../../../api/client/backoff.js';
import { seededRandom } from './fakes.js';

const s = backoffSettings({ initialMs: 100, maxMs: 5_000, factor: 2, jitter: 0.5 });

t.test('without jitter drawn (random 0) the delay doubles from initialMs and stops at maxMs', async (t) => {
  const delays = Array.from({ length: 10 }, (_, i) => backoffDelay(i, s, () => 0));
  t.same(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
});

t.test('the delay never exceeds maxMs, even after very many failures', async (t) => {
  const r = seededRandom(7);
  for (const retry of [0, 5, 50, 1_000, 1e6]) {
    for (let k = 0; k < 100; k++) {
      const d = backoffDelay(retry, s, r);
      if (d > s.maxMs || !Number.isFinite(d)) t.fail(`retry ${retry}: ${d} ms`);
    }
  }
  t.equal(backoffDelay(1e6, s, () => 0), 5_000, 'a huge retry count gives the cap, not Infinity or NaN');
});

t.test('jitter spreads the delay over [base * (1 - jitter), base]', async (t) => {
  const r = seededRandom(42);
  const atCap = Array.from({ length: 1_000 }, () => backoffDelay(20, s, r));
  const min = Math.min(...atCap);
  const max = Math.max(...atCap);
  t.ok(min >= 2_500 && max <= 5_000, `every delay at the cap is within [2500, 5000] ms (saw ${min}..${max})`);
  t.ok(min < 2_600 && max > 4_900, `and the draws cover that range (saw ${min}..${max})`);
  t.ok(new Set(atCap).size > 500, `many distinct delays (${new Set(atCap).size} of 1000): callers are not in lockstep`);
  t.equal(backoffDelay(3, s, () => 0.5), 600, 'random 0.5 takes a quarter off the base of 800 ms');
  t.equal(backoffDelay(3, backoffSettings({ ...s, jitter: 0 }), () => 0.9), 800, 'jitter 0 gives the base whatever the draw');
});

t.test('the defaults are 200 ms doubling to 30 s with half jitter', async (t) => {
  t.same(DEFAULT_BACKOFF, { initialMs: 200, maxMs: 30_000, factor: 2, jitter: 0.5 });
  t.equal(backoffDelay(0, backoffSettings(), () => 0), 200);
  t.equal(backoffDelay(30, backoffSettings(), () => 0), 30_000);
});

t.test('bad settings are refused where they are given, naming the setting', async (t) => {
  t.throws(() => backoffSettings({ initialMs: 0 }), /initialMs must be > 0/);
  t.throws(() => backoffSettings({ initialMs: 500, maxMs: 100 }), /maxMs must be >= initialMs/);
  t.throws(() => backoffSettings({ factor: 0.5 }), /factor must be >= 1/);
  t.throws(() => backoffSettings({ jitter: 1.5 }), /jitter must be within 0..1/);
  t.throws(() => backoffSettings({ initialMs: Number.NaN }), /initialMs/);
});
