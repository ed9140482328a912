// How one Host.getStats poll becomes the observation nextHostHealth takes: answered (with the VMs
// the agent runs, for the grace), recovering (the agent's field, or a 99 answer), or failed with
// a reason naming the error, its code and its cause.
import t from 'tap';
import { answeredPoll, describePollError, failedPoll, type HostStats } from '../../../controller/monitor/poll-outcome.js';
import { FIT } from '../../../controller/health/fitness.js';
import { CallTimeoutError, NotConnectedError, RpcCallError, WaitTimeoutError } from '../../../api/client/errors.js';
import { NoAgentLinkError } from '../../../controller/agents/agent-links.js';

const stats = (over: Partial<HostStats> = {}): HostStats => ({
  cpuUser: 1, cpuSys: 1, cpuIdle: 98, memTotal: 4096, memFree: 2048, memAvailable: 3000, loadAvg: [0, 0, 0],
  network: {}, uptime: 100, vmCount: 5, vmActive: 3, ...over,
});

t.test('an answer is answered, counting the VMs that are not Down; with recovering: true it is recovering', async (t) => {
  const unfit = { missingRequiredNetworks: ['storage'], unreachableDomains: [] };
  t.same(answeredPoll(stats()), { kind: 'answered', vmCount: 3, fitness: FIT });
  t.same(answeredPoll(stats({ recovering: false }), unfit), { kind: 'answered', vmCount: 3, fitness: unfit }, 'the fitness given is passed on');
  t.same(answeredPoll(stats({ recovering: true })), { kind: 'recovering' });
});

t.test('an agent from before the field (no recovering in the answer) is answered', async (t) => {
  const old = stats();
  delete (old as { recovering?: boolean }).recovering;
  t.equal(answeredPoll(old).kind, 'answered');
});

t.test('a 99 answer is recovering; every other error is a failed poll naming it', async (t) => {
  t.same(failedPoll(new RpcCallError('Recovering from crash or initializing', 99)), { kind: 'recovering' });
  const timeout = failedPoll(new CallTimeoutError('Host.getStats', 500));
  t.same(timeout, { kind: 'failed', error: 'Host.getStats: no answer within 500 ms (1007)' });
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  t.same(failedPoll(new NotConnectedError('Host.getStats', { cause: refused })),
    { kind: 'failed', error: 'Host.getStats: Not connected to the agent: connect ECONNREFUSED 127.0.0.1:1 (1101)' }, 'the cause is named');
  t.match(failedPoll(new WaitTimeoutError(500)), { kind: 'failed', error: /Not connected within the time allowed \(500 ms\) \(1105\)/ });
  t.match(failedPoll(new NoAgentLinkError('h1')), { kind: 'failed', error: /no connection to the agent of host h1.*\(1210\)/ });
  t.equal(failedPoll(new RpcCallError('hook refused', 78)).kind, 'failed', 'an error answer other than 99 (a before_get_stats hook) is a failed poll');
  t.equal(describePollError('odd'), 'odd');
});
