// The convergence schedule's stepping (VDSM's MonitorThread rules) as tables:
// a sequence of observed memory iterations -> the actions due, in order.
import t from 'tap';
import { START, defaultSchedule, exponentialDowntimes, postcopyStarted, scheduleProblem, stepSchedule, type ConvergenceActionT, type ConvergenceScheduleT, type ScheduleState } from '../../../../agent/vm/migration/schedule.js';

const down = (ms: number): Extract<ConvergenceActionT, { name: 'setDowntime' }> => ({ name: 'setDowntime', params: [String(ms)] });
const ABORT: ConvergenceActionT = { name: 'abort' };
const POSTCOPY: ConvergenceActionT = { name: 'postcopy' };

/** Runs observed iterations through the stepper; returns the actions due, as 'iteration:name[:ms]'. */
function run(schedule: ConvergenceScheduleT, iterations: number[], from: ScheduleState = START): { due: string[]; state: ScheduleState } {
  let state = from;
  const due: string[] = [];
  for (const i of iterations) {
    const r = stepSchedule(schedule, state, i);
    state = r.state;
    if (r.action) due.push(`${i}:${r.action.name}${r.action.name === 'setDowntime' ? `:${r.action.params[0]}` : ''}`);
  }
  return { due, state };
}

const minimal: ConvergenceScheduleT = {
  init: [down(100)],
  stalling: [{ limit: 1, action: down(150) }, { limit: 2, action: down(200) }, { limit: 3, action: down(300) }, { limit: -1, action: ABORT }],
};

t.test('stepping: one action per new iteration, when its limit is below the iterations since the first one seen', async (t) => {
  const cases: Array<{ name: string; schedule: ConvergenceScheduleT; iterations: number[]; due: string[] }> = [
    { name: 'the first observation only sets the start', schedule: minimal, iterations: [1], due: [] },
    { name: 'limit 1 needs 2 iterations since the start (limit < n)', schedule: minimal, iterations: [1, 2], due: [] },
    { name: 'steps in order, one per new iteration', schedule: minimal, iterations: [1, 2, 3, 4, 5, 6], due: ['3:setDowntime:150', '4:setDowntime:200', '5:setDowntime:300', '6:abort'] },
    { name: 'repeats and older iterations (event and sample both report) do nothing', schedule: minimal, iterations: [0, 0, 1, 1, 2, 2, 1, 3, 3, 3], due: ['2:setDowntime:150', '3:setDowntime:200'] },
    { name: 'a jump of many iterations still runs only one action', schedule: minimal, iterations: [0, 10], due: ['10:setDowntime:150'] },
    { name: 'counted from the first iteration seen, not from 0', schedule: minimal, iterations: [5, 6, 7], due: ['7:setDowntime:150'] },
    { name: 'limit -1: at the next new iteration', schedule: { init: [], stalling: [{ limit: -1, action: POSTCOPY }] }, iterations: [0, 1], due: ['1:postcopy'] },
    { name: 'an empty schedule never acts', schedule: { init: [], stalling: [] }, iterations: [0, 1, 2, 3, 50], due: [] },
    { name: 'after the last step nothing more', schedule: { init: [], stalling: [{ limit: 0, action: ABORT }] }, iterations: [0, 1, 2, 3], due: ['1:abort'] },
    { name: 'negative or non-finite iterations are ignored', schedule: minimal, iterations: [-1, NaN, 0, Infinity, 1, 2], due: ['2:setDowntime:150'] },
  ];
  for (const c of cases) t.same(run(c.schedule, c.iterations).due, c.due, c.name);
});

t.test('no action once post-copy runs', async (t) => {
  const s: ConvergenceScheduleT = { init: [], stalling: [{ limit: 0, action: POSTCOPY }, { limit: 1, action: ABORT }] };
  const a = run(s, [0, 1]);
  t.same(a.due, ['1:postcopy']);
  t.same(run(s, [2, 3, 4], postcopyStarted(a.state)).due, [], 'the abort after it never runs in post-copy');
  t.same(run(s, [2], a.state).due, ['2:abort'], 'a post-copy that did not start (refused): the next step runs');
});

t.test("the default schedule is VDSM's legacy one", async (t) => {
  t.same(exponentialDowntimes(500, 5), [101, 104, 120, 189, 500], "exponential_downtime(500, 5), VDSM's figures");
  t.same(exponentialDowntimes(300, 1), [300], 'one step: the maximum');
  const d = defaultSchedule(500, 5, false);
  t.same(d.init, [down(101)], 'init: the first downtime');
  t.same(d.stalling.map((e) => [e.limit, e.action.name === 'setDowntime' ? Number(e.action.params[0]) : e.action.name]),
    [[1, 104], [2, 120], [3, 189], [4, 500], [42, 500], [-1, 'abort']], "stalling: (1->104) (2->120) (3->189) (4->500) (42->500) (-1->abort)");
  t.same(defaultSchedule(500, 5, true).stalling.at(-1), { limit: -1, action: POSTCOPY }, 'with post-copy allowed it ends in post-copy');
  const iterations = Array.from({ length: 50 }, (_, i) => i);
  t.same(run(d, iterations).due, ['2:setDowntime:104', '3:setDowntime:120', '4:setDowntime:189', '5:setDowntime:500', '43:setDowntime:500', '44:abort'],
    'stepped over 50 iterations: aborts at the 44th');
});

t.test('postcopy: false with a schedule that needs post-copy is a caller mistake', async (t) => {
  const s: ConvergenceScheduleT = { init: [], stalling: [{ limit: 1, action: POSTCOPY }] };
  t.match(scheduleProblem(s, false), /postcopy/);
  t.equal(scheduleProblem(s, undefined), undefined, 'unset: the schedule implies it');
  t.equal(scheduleProblem(minimal, false), undefined);
});
