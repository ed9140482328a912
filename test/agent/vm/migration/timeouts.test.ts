// KubeVirt's deadlines as pure decisions: progressTimeout (no new low of the
// data remaining for that long) and completionTimeoutPerGiB x memory.
import t from 'tap';
import { checkTimeouts, completionTimeoutMs, startTimeouts, type TimeoutLimits } from '../../../../agent/vm/migration/timeouts.js';

/** Feeds [ms, remaining] samples from a start at 0; returns the first decision and when. */
function run(l: TimeoutLimits, samples: Array<[number, number | undefined]>): string {
  let s = startTimeouts(0);
  for (const [ms, rem] of samples) {
    const r = checkTimeouts(l, s, ms, rem);
    s = r.state;
    if (r.due) return `${r.due}@${ms}`;
  }
  return 'none';
}

t.test('progress and completion deadlines', async (t) => {
  const l: TimeoutLimits = { progressTimeoutMs: 150_000, completionTimeoutMs: 800_000 };
  const cases: Array<{ name: string; limits?: TimeoutLimits; samples: Array<[number, number | undefined]>; want: string }> = [
    { name: 'remaining that goes down every sample: no timeout', samples: [[10_000, 900], [100_000, 800], [200_000, 700], [300_000, 600]], want: 'none' },
    { name: 'remaining stuck: aborted once it has not gone down for progressTimeout', samples: [[10_000, 500], [100_000, 500], [160_000, 500], [161_000, 500]], want: 'progressTimeout@161000' },
    { name: 'remaining growing back in a new iteration is not progress', samples: [[10_000, 500], [60_000, 900], [120_000, 600], [160_001, 501]], want: 'progressTimeout@160001' },
    { name: 'a new low resets the clock', samples: [[10_000, 500], [150_000, 499], [299_000, 499], [300_001, 499]], want: 'progressTimeout@300001' },
    { name: 'no figure at all (job not started): the clock runs from the start', samples: [[100_000, undefined], [150_001, undefined]], want: 'progressTimeout@150001' },
    { name: 'the whole copy past completion: aborted even while progressing', samples: [[200_000, 900], [400_000, 800], [600_000, 700], [800_001, 600]], want: 'completionTimeout@800001' },
    { name: 'both off (0): never', limits: { progressTimeoutMs: 0, completionTimeoutMs: 0 }, samples: [[10_000_000, 5], [20_000_000, 5]], want: 'none' },
    { name: 'completion comes first when both are due', limits: { progressTimeoutMs: 10, completionTimeoutMs: 10 }, samples: [[11, 5]], want: 'completionTimeout@11' },
  ];
  for (const c of cases) t.equal(run(c.limits ?? l, c.samples), c.want, c.name);
  const r = checkTimeouts(l, startTimeouts(0), 150_001, 7);
  t.notOk(r.due, 'the first figure counts as progress itself');
  const stuck = checkTimeouts(l, r.state, 300_002, 7);
  t.match(stuck.message ?? '', /no progress for 150\.0 s .*7 bytes.*150\.0 s/, 'the message says how long and the lowest remaining');
});

t.test('completion deadline: per GiB of guest memory, rounded up, at least 1 GiB', async (t) => {
  t.equal(completionTimeoutMs(800, 256 * 2 ** 20), 800_000, '256 MiB counts as 1 GiB');
  t.equal(completionTimeoutMs(800, 2 ** 30), 800_000, '1 GiB');
  t.equal(completionTimeoutMs(800, 2 ** 30 + 1), 1_600_000, 'just over 1 GiB: 2');
  t.equal(completionTimeoutMs(150, 64 * 2 ** 30), 150 * 64 * 1000, "64 GiB at KubeVirt's 150 s/GiB");
  t.equal(completionTimeoutMs(0, 2 ** 30), 0, '0: off');
});
