// The reconnecting client's own logic, on an in-memory transport and timers
// the test drives: the retry delays it schedules, the state it reports,
// failing fast while disconnected, listeners kept across connections, and a
// close() that leaves nothing scheduled. (Against a real agent:
// reconnecting.test.ts.)
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { HostvisorClient } from '../../../api/client/client.js';
import { ReconnectingClient, type ConnectionState } from '../../../api/client/reconnecting.js';
import { backoffDelay, backoffSettings } from '../../../api/client/backoff.js';
import { ClientClosedError, ConnectFailedError, CLIENT_ERRORS, NotConnectedError, WaitTimeoutError } from '../../../api/client/errors.js';
import { FakeTimers, MemoryTransport, seededRandom, settle } from './fakes.js';

const BACKOFF = { initialMs: 100, maxMs: 3_000, factor: 2, jitter: 0.5 };
const ATTEMPT_MS = 9_999; // distinct from every retry delay, so fire() can tell them apart

/** A connect function whose attempts the test ends: fail(n) or succeed(transport). */
function scriptedConnect() {
  const attempts: { resolve: (c: HostvisorClient) => void; reject: (e: Error) => void; signal: AbortSignal }[] = [];
  return {
    attempts,
    connect: (signal: AbortSignal) => new Promise<HostvisorClient>((resolve, reject) => { attempts.push({ resolve, reject, signal }); }),
    fail(): Error {
      const e = new ConnectFailedError('mem://agent', { cause: new Error(`refused #${attempts.length}`) });
      attempts.at(-1)!.reject(e);
      return e;
    },
    succeed(tr: MemoryTransport): void { attempts.at(-1)!.resolve(new HostvisorClient(tr, { timeoutMs: 1_000 })); },
  };
}

function setup() {
  const timers = new FakeTimers();
  const script = scriptedConnect();
  const states: ConnectionState[] = [];
  const random = seededRandom(99);
  const draws: number[] = [];
  const rc = new ReconnectingClient({
    connect: script.connect, backoff: BACKOFF, attemptTimeoutMs: ATTEMPT_MS, timers,
    random: () => { const r = random(); draws.push(r); return r; },
  });
  rc.onState((s) => states.push(s));
  return { timers, script, states, draws, rc };
}

t.test('failed attempts are retried after capped, jittered exponential delays, the state naming the attempt and the last error', async (t) => {
  const { timers, script, states, draws, rc } = setup();
  t.equal(rc.state.phase, 'connecting', 'connecting from the start');
  const s = backoffSettings(BACKOFF);
  const delays: number[] = [];
  for (let i = 1; i <= 10; i++) {
    const err = script.fail();
    await settle();
    const st = rc.state;
    t.same([st.phase, st.attempt, st.lastError], ['disconnected', i, err], `attempt ${i} failed: disconnected, attempt ${i}, its error`);
    t.equal(st.retryInMs, backoffDelay(i, s, () => draws.at(-1)!), `retry ${i} in ${st.retryInMs} ms, as the backoff draws it`);
    delays.push(st.retryInMs!);
    timers.fire(st.retryInMs!);
    t.same([rc.state.phase, rc.state.attempt], ['connecting', i + 1], `then attempt ${i + 1} starts`);
  }
  t.comment(`retry delays: ${delays.join(', ')} ms`);
  t.ok(delays.every((d) => d <= BACKOFF.maxMs), 'no delay is over maxMs');
  t.ok(delays.slice(5).every((d) => d >= BACKOFF.maxMs / 2), 'once at the cap, delays stay within [maxMs/2, maxMs]');
  t.ok(delays[0]! < delays[3]!, 'delays grow');
  t.equal(script.attempts.length, 11, 'one connect per attempt');
  t.ok(states.some((x) => x.phase === 'disconnected' && x.attempt === 10), 'state listeners saw every change');
  await rc.close();
  t.equal(timers.pending.size, 0, 'close() leaves no timer');
});

t.test('calls while disconnected fail at once with NotConnectedError (1101) carrying the last error; whenConnected is bounded', async (t) => {
  const { timers, script, rc } = setup();
  const err = script.fail();
  await settle();
  let settled: unknown;
  rc.call('Host.ping2', {}).then(() => { settled = 'answered'; }, (e: unknown) => { settled = e; });
  await settle(1);
  t.ok(settled instanceof NotConnectedError, 'rejected with NotConnectedError, no timer needed');
  t.equal((settled as NotConnectedError).code, CLIENT_ERRORS.notConnected.code);
  t.equal((settled as NotConnectedError).cause, err, 'its cause is the last connect error');
  const waiting = rc.whenConnected(500).catch((e: unknown) => e);
  timers.fire(500);
  const w = await waiting;
  t.ok(w instanceof WaitTimeoutError && w.code === 1105, 'whenConnected(500) ends with WaitTimeoutError (1105) when its time is up');
  t.equal((w as WaitTimeoutError).cause, err, 'naming the last error as its cause');
  await rc.close();
  t.equal(timers.pending.size, 0);
});

t.test('listeners registered once hear every connection; a drop starts over at the first delay', async (t) => {
  const { timers, script, rc } = setup();
  const heard: string[] = [];
  rc.on('VM_status', (vmId, body) => heard.push(`${vmId.slice(0, 4)}:${body.status}`));
  const raw: string[] = [];
  rc.onEvent((method) => raw.push(method));
  const vm = randomUUID();
  const status = (st: string) => ({ jsonrpc: '2.0', method: `|virt|VM_status|${vm}`, params: { [vm]: { status: st }, notify_time: 1 } });

  for (let i = 0; i < 3; i++) { // failures before the first connection: the drop later must not continue their backoff
    script.fail();
    await settle();
    timers.fire(rc.state.retryInMs!);
  }
  const first = new MemoryTransport();
  const ready = rc.whenConnected(1_000);
  script.succeed(first);
  await ready;
  t.same([rc.state.phase, rc.state.connections], ['connected', 1], 'connected (1 connection so far)');
  first.onSend = (req) => first.deliver({ jsonrpc: '2.0', id: req.id, result: {} });
  t.same(await rc.call('Host.ping2', {}), {}, 'calls go to the connection');
  first.deliver(status('Up'));
  first.drop({ code: 1006, error: new Error('read ECONNRESET') });
  await settle();
  const st = rc.state;
  t.same([st.phase, st.attempt], ['disconnected', 0], 'the drop is reported: disconnected, no attempt failed since the connection');
  t.equal(st.lastError?.name, 'ConnectionLostError', 'the last error is the ConnectionLostError');
  t.match(st.lastError?.message, /ECONNRESET/, 'naming the cause');
  t.ok(st.retryInMs! <= BACKOFF.initialMs && st.retryInMs! >= BACKOFF.initialMs / 2, `the first retry comes after the initial delay (${st.retryInMs} ms)`);
  timers.fire(st.retryInMs!);
  const second = new MemoryTransport();
  script.succeed(second);
  await settle();
  t.same([rc.state.phase, rc.state.connections], ['connected', 2], 'reconnected (the 2nd connection: a caller resyncs)');
  second.deliver(status('Down'));
  second.deliver({ jsonrpc: '2.0', method: '|future|thing|no_id', params: { a: 1 } });
  t.same(heard, [`${vm.slice(0, 4)}:Up`, `${vm.slice(0, 4)}:Down`], 'the typed listener heard both connections');
  t.same(raw.slice(-1), ['|future|thing|no_id'], 'the raw listener hears methods the schema does not know');
  await rc.close();
  t.equal(rc.state.phase, 'closed');
  t.equal(second.isOpen, false, 'close() closed the connection');
  t.equal(timers.pending.size, 0, 'and left no timer');
});

t.test('an attempt that hangs is cut off at attemptTimeoutMs, its signal aborted; close() during an attempt ends it', async (t) => {
  const { timers, script, rc } = setup();
  timers.fire(ATTEMPT_MS);
  await settle();
  t.ok(script.attempts[0]!.signal.aborted, 'the hung attempt was aborted');
  t.match(rc.state.lastError?.message, /no connection within 9999 ms/, 'and counted as failed');
  t.equal(rc.state.phase, 'disconnected');
  timers.fire(rc.state.retryInMs!);
  t.equal(rc.state.phase, 'connecting', 'the next attempt is under way');
  const waiting = rc.whenConnected(60_000).catch((e: unknown) => e);
  await rc.close();
  t.ok(script.attempts[1]!.signal.aborted, 'close() aborted it');
  t.ok((await waiting) instanceof ClientClosedError, 'whenConnected is rejected with ClientClosedError');
  const late = new MemoryTransport();
  script.succeed(late); // a connect that ignored its signal and finished anyway
  await settle();
  t.equal(late.isOpen, false, 'a connection that arrives after close() is closed, not kept');
  t.equal(timers.pending.size, 0, 'no timer is left');
  t.equal(rc.state.phase, 'closed');
  t.rejects(rc.call('Host.ping2', {}), NotConnectedError, 'calls after close() fail with NotConnectedError');
});

t.test('a connect function that throws instead of rejecting counts as a failed attempt, and leaves no attempt timer', async (t) => {
  const timers = new FakeTimers();
  const bug = new Error('bad options');
  const rc = new ReconnectingClient({ connect: () => { throw bug; }, backoff: BACKOFF, attemptTimeoutMs: ATTEMPT_MS, timers, random: () => 0 });
  await settle();
  t.same([rc.state.phase, rc.state.attempt, rc.state.lastError], ['disconnected', 1, bug], 'disconnected, attempt 1, the thrown error');
  t.same([...timers.pending.values()].map((x) => x.ms), [200], 'only the retry timer is pending (100 ms doubled once, no jitter drawn)');
  await rc.close();
  t.equal(timers.pending.size, 0);
});
