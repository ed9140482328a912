// AgentLinks against real agent processes over real mTLS (libvirt's test driver): one
// connection per host, following sync(); the resync hook on every connection made (the first,
// and after a kill -9 and restart); a removed host's connection closed; a Correlation-Id on
// every call, found in the agent's log; every call bounded, also to an agent that stopped
// answering (SIGSTOP); and close() leaves no timer or socket behind.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { AgentLinks, NoAgentLinkError } from '../../../controller/agents/agent-links.js';
import { resolveDecisionSettings } from '../../../controller/decision-settings.js';
import { CallTimeoutError, RpcCallError } from '../../../api/client/errors.js';
import { freePort } from '../../agent/harness.js';
import { within } from '../../agent/libvirt/qemu-helpers.js';
import { AgentProcess } from '../../api/client/agent-process.js';
import { credentialsOf, endpointOf } from './test-hosts.js';
import { activeResources, moreThan } from '../leak-check.js';

const a = await AgentProcess.start(); // one after the other: the first makes the shared test PKI
const b = await AgentProcess.start();
t.teardown(() => Promise.all([a.stop(), b.stop()]));

const CALL_TIMEOUT_MS = 2_000;
const settings = resolveDecisionSettings({ agentCallTimeoutMs: CALL_TIMEOUT_MS, agentKeepaliveMs: 1_000, agentReconnectMaxMs: 500, agentConnectTimeoutMs: 2_000 });
const creds = credentialsOf(a);

/** Polls `cond` every 20 ms until true; fails after ms. */
async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function logged(agent: AgentProcess, msg: string, extra: (l: Record<string, unknown>) => boolean = () => true): Record<string, unknown> | undefined {
  for (const line of agent.logs) {
    let l: Record<string, unknown>;
    try { l = JSON.parse(line) as Record<string, unknown>; } catch { continue; }
    if (l.msg === msg && extra(l)) return l;
  }
  return undefined;
}

t.test('one link per host following sync(), the resync hook on every connection made, a removed host disconnected', async (t) => {
  const links = new AgentLinks({ credentials: creds, settings });
  t.teardown(() => links.close());
  const resyncs: string[] = [];
  links.onResync((hostId, n) => resyncs.push(`${hostId}#${n}`));

  await links.sync([endpointOf('host-a', a), endpointOf('host-b', b)]);
  await within('both connected', Promise.all([links.get('host-a')!.whenConnected(10_000), links.get('host-b')!.whenConnected(10_000)]), 12_000);
  t.same(links.hostIds().sort(), ['host-a', 'host-b'], 'a link for each host');
  t.same(resyncs.sort(), ['host-a#1', 'host-b#1'], 'the resync hook heard the first connection of each');
  t.same(await links.call('host-a', 'Host.ping2', {}), {}, 'a call through the link is answered');
  await links.sync([endpointOf('host-a', a), endpointOf('host-b', b)]);
  t.same(resyncs.length, 2, 'a second sync() with the same hosts changes nothing (no redial)');

  await a.kill9();
  await a.restart();
  await until('the link to the restarted agent reconnects', () => resyncs.includes('host-a#2'), 10_000);
  t.pass('after kill -9 and restart of host-a\'s agent, the resync hook heard its 2nd connection');
  t.same(await links.call('host-a', 'Host.ping2', {}), {}, 'and calls go through again');

  const bDisconnectsBefore = b.logs.filter((l) => l.includes('"msg":"engine disconnected"')).length;
  await links.sync([endpointOf('host-a', a)]);
  t.equal(links.get('host-b'), undefined, 'host-b removed: no link');
  const e = await links.call('host-b', 'Host.ping2', {}).catch((x: unknown) => x);
  t.ok(e instanceof NoAgentLinkError && e.code === 1210 && e.hostId === 'host-b', 'a call for it: NoAgentLinkError (1210) naming the host');
  await until('host-b\'s agent sees the connection close', () => b.logs.filter((l) => l.includes('"msg":"engine disconnected"')).length > bDisconnectsBefore, 5_000);
  t.pass('host-b\'s agent logged the controller\'s connection closed');

  // The same host id at another endpoint: the old connection goes, a new link dials the new one.
  const old = links.get('host-a')!;
  const moved = links.set(endpointOf('host-a', b));
  t.not(moved, old, 'a changed endpoint makes a new link');
  await moved.whenConnected(10_000);
  t.equal(old.state.phase, 'closed', 'the old link is closed');
  await until('resync of the moved host', () => resyncs.filter((r) => r === 'host-a#1').length === 2, 5_000);
  t.pass('the new link\'s first connection is heard as a resync too');
});

t.test('every call carries a Correlation-Id that the agent logs with it', async (t) => {
  const links = new AgentLinks({ credentials: creds, settings });
  t.teardown(() => links.close());
  links.set(endpointOf('host-b', b));
  await links.get('host-b')!.whenConnected(10_000);
  const given = `job-${randomUUID()}`;
  const missing = randomUUID();
  const e = await links.call('host-b', 'VM.destroy', { vmID: missing }, { correlationId: given }).catch((x: unknown) => x);
  t.ok(e instanceof RpcCallError && e.code === 1, 'VM.destroy of an unknown VM: the agent answers noVM (1)');
  await until('the agent logs the rejected call', () => logged(b, 'call rejected', (l) => l.correlationId === given) !== undefined, 5_000);
  t.match(logged(b, 'call rejected', (l) => l.correlationId === given), { method: 'VM.destroy', code: 1, correlationId: given },
    'the agent\'s log line for the call carries the caller\'s Correlation-Id');

  const before = b.logs.length;
  await links.call('host-b', 'VM.destroy', { vmID: randomUUID() }).catch(() => {});
  await until('logged', () => b.logs.slice(before).some((l) => l.includes('"msg":"call rejected"')), 5_000);
  const own = b.logs.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'call rejected');
  t.match(own?.correlationId, /^ctl-[0-9a-f]{8}$/, `a call given none gets one of its own (${String(own?.correlationId)})`);
});

t.test('every call is bounded: an agent that stopped answering (SIGSTOP) fails the call after agentCallTimeoutMs', async (t) => {
  const links = new AgentLinks({ credentials: creds, settings: resolveDecisionSettings({ ...settings, agentKeepaliveMs: 60_000 }) });
  t.teardown(() => links.close());
  links.set(endpointOf('host-b', b));
  await links.get('host-b')!.whenConnected(10_000);
  await b.signal('SIGSTOP');
  t.teardown(() => b.signal('SIGCONT'));
  const t0 = performance.now();
  const outcome = (p: Promise<unknown>): Promise<{ x: unknown; ms: number }> =>
    p.then(() => ({ x: 'answered', ms: performance.now() - t0 }), (x: unknown) => ({ x, ms: performance.now() - t0 }));
  const [e, short] = await Promise.all([
    outcome(links.call('host-b', 'Host.getVMList', {})),
    outcome(links.call('host-b', 'Host.ping2', {}, { timeoutMs: 300 })),
  ]);
  await b.signal('SIGCONT');
  t.ok(e.x instanceof CallTimeoutError && e.x.code === 1007, `the default bound: CallTimeoutError (1007): ${String(e.x)}`);
  t.ok(e.ms >= CALL_TIMEOUT_MS - 50 && e.ms < CALL_TIMEOUT_MS + 1_000, `after ${Math.round(e.ms)} ms (agentCallTimeoutMs ${CALL_TIMEOUT_MS})`);
  t.ok(short.x instanceof CallTimeoutError, 'a bound given with the call is honoured');
  t.ok(short.ms >= 250 && short.ms < 1_500, `after ${Math.round(short.ms)} ms (its bound 300 ms)`);
  t.same(await links.call('host-b', 'Host.ping2', {}), {}, 'the continued agent answers on the same link');
});

t.test('close() leaves no timer or socket: connected, retrying and mid-connect links all gone', async (t) => {
  const held: Socket[] = [];
  const silent = createServer((s) => { held.push(s); }); // accepts TCP, never speaks TLS
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => { for (const s of held) s.destroy(); silent.close(); });
  await new Promise((r) => setTimeout(r, 200)); // earlier tests' sockets finish closing
  const baseline = activeResources();
  const links = new AgentLinks({ credentials: creds, settings: resolveDecisionSettings({ ...settings, agentConnectTimeoutMs: 60_000 }) });
  links.set(endpointOf('up', b));
  links.set({ hostId: 'refused', address: '127.0.0.1', port: await freePort() });
  links.set({ hostId: 'silent', address: '127.0.0.1', port: (silent.address() as { port: number }).port });
  await links.get('up')!.whenConnected(10_000);
  await until('the refused one is waiting to retry', () => links.get('refused')!.state.phase === 'disconnected', 5_000);
  t.equal(links.get('silent')!.state.phase, 'connecting', 'the silent one is mid-connect');
  const open = activeResources();
  t.same(moreThan(open, baseline), ['TCPSocketWrap', 'Timeout'],
    `while open there are more sockets and timers than before (${JSON.stringify(open)} vs ${JSON.stringify(baseline)}): the check below can fail`);
  await links.close();
  t.same([links.hostIds().length], [0], 'no links left');
  for (const s of held) s.destroy(); // the silent server's own end (it never reads, so it never sees the close)
  await until('sockets released', () => moreThan(activeResources(), baseline).length === 0, 2_000).catch(() => {});
  const after = activeResources();
  t.same(moreThan(after, baseline), [], `after close() no more timers or sockets than before (${JSON.stringify(after)})`);
  t.throws(() => links.set(endpointOf('late', b)), /closed/, 'a closed AgentLinks takes no new host');
});
