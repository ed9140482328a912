// The reconnecting client against a real agent process over real mTLS: it
// reports the drop when the agent is killed (kill -9), fails calls fast while
// the agent is gone, backs off while connecting is refused, reconnects when
// the agent comes back on the same port, and the listeners registered once
// hear the new connection's events. (Its logic with a driven clock:
// reconnecting-logic.test.ts.)
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { ReconnectingClient, type ConnectionState } from '../../../api/client/reconnecting.js';
import { NotConnectedError } from '../../../api/client/errors.js';
import { within } from '../../agent/libvirt/qemu-helpers.js';
import { AgentProcess } from './agent-process.js';

const agent = await AgentProcess.start();
t.teardown(() => agent.stop());

const BACKOFF = { initialMs: 50, maxMs: 400, factor: 2, jitter: 0.5 };

/** Resolves with the first state that `pred` accepts (now or later). */
function stateWhere(rc: ReconnectingClient, pred: (s: ConnectionState) => boolean): Promise<ConnectionState> {
  if (pred(rc.state)) return Promise.resolve(rc.state);
  return new Promise((resolve) => {
    const off = rc.onState((s) => { if (pred(s)) { off(); resolve(s); } });
  });
}

function createVm(rc: ReconnectingClient, vmID: string): Promise<unknown> {
  return rc.call('VM.create', { vmID, spec: { name: `rc-${vmID.slice(0, 8)}`, memoryMiB: 64, domainType: 'qemu' } });
}

t.test('kill -9 is reported, calls fail fast while the agent is gone, and after its restart the same listeners hear events again', async (t) => {
  const rc = ReconnectingClient.connect({ ...agent.target, timeoutMs: 20_000, connectTimeoutMs: 2_000, backoff: BACKOFF });
  t.teardown(() => rc.close());
  const states: ConnectionState[] = [];
  rc.onState((s) => states.push(s));
  const ups: string[] = [];
  rc.on('VM_status', (vmId, body) => { if (body.status === 'Up') ups.push(vmId); });
  await rc.whenConnected(10_000);
  t.same([rc.state.phase, rc.state.connections], ['connected', 1], 'connected');

  const vm1 = randomUUID();
  const up1 = heardUp(ups, vm1);
  await createVm(rc, vm1);
  await within('Up of the first VM', up1, 15_000);
  t.pass('the listener heard the first VM come up');

  const lost = stateWhere(rc, (s) => s.phase === 'disconnected');
  const killedAt = performance.now();
  await agent.kill9();
  const s = await within('the drop is reported', lost, 5_000);
  t.ok(performance.now() - killedAt < 1_000, `state disconnected within ${Math.round(performance.now() - killedAt)} ms of the kill`);
  t.equal(s.lastError?.name, 'ConnectionLostError', 'lastError: ConnectionLostError');
  t.ok(s.retryInMs! <= BACKOFF.initialMs, `the first retry is due in ${s.retryInMs} ms`);

  // While the agent is down: refused connects back off, calls fail at once.
  const backedOff = await within('three refused attempts', stateWhere(rc, (x) => x.phase === 'disconnected' && x.attempt >= 3), 10_000);
  t.equal(backedOff.lastError?.name, 'ConnectFailedError', 'the last error is now the refused connect');
  t.match((backedOff.lastError?.cause as { code?: string }).code, 'ECONNREFUSED', 'whose cause is ECONNREFUSED');
  const t0 = performance.now();
  const e = await rc.call('Host.ping2', {}).catch((x: unknown) => x);
  const failMs = performance.now() - t0;
  t.ok(e instanceof NotConnectedError && e.code === 1101, 'a call while disconnected: NotConnectedError (1101)');
  t.equal((e as NotConnectedError).cause, backedOff.lastError, 'its cause is the last error');
  t.ok(failMs < 50, `failed in ${failMs.toFixed(1)} ms, no hanging`);

  const restartAt = performance.now();
  await agent.restart();
  await rc.whenConnected(10_000);
  t.comment(`reconnected ${Math.round(performance.now() - restartAt)} ms after the agent was started again (its start included)`);
  t.same([rc.state.phase, rc.state.attempt, rc.state.connections], ['connected', 0, 2], 'connected again: the 2nd connection');
  const tried = states.filter((x) => x.phase === 'connecting').map((x) => x.attempt);
  t.ok(Math.max(...tried) >= 3, `it kept trying while the agent was gone (attempts ${tried.join(',')})`);
  const waits = states.filter((x) => x.phase === 'disconnected').map((x) => x.retryInMs!);
  t.ok(waits.every((w) => w <= BACKOFF.maxMs), `every retry delay within the ${BACKOFF.maxMs} ms cap (${waits.join(', ')})`);

  const vm2 = randomUUID();
  const up2 = heardUp(ups, vm2);
  await createVm(rc, vm2);
  await within('Up of the second VM, on the new connection', up2, 15_000);
  t.pass('the listener registered before the kill heard the second VM come up on the new connection');
  await rc.call('VM.destroy', { vmID: vm2 });

  await rc.close();
  t.equal(rc.state.phase, 'closed', 'closed');
  t.rejects(rc.call('Host.ping2', {}), NotConnectedError, 'calls after close() fail with NotConnectedError');
});

/** Resolves once `vmId` is in `ups` (polled: the listener above fills it). */
async function heardUp(ups: string[], vmId: string): Promise<void> {
  for (let i = 0; i < 1_500 && !ups.includes(vmId); i++) await new Promise((r) => setTimeout(r, 10));
  if (!ups.includes(vmId)) throw new Error(`${vmId} never reported Up`);
}
