// The disconnected signal against a real agent process over real mTLS: a
// kill -9 ends the connection at once, every call still waiting is rejected
// with ConnectionLostError (1102) and its cause, and later calls fail fast
// with NotConnectedError (1101); a keepalive notices a peer that stopped
// answering without the connection closing; connecting to nobody fails with
// ConnectFailedError (1103) within its bound.
import t from 'tap';
import { HostvisorClient } from '../../../api/client/client.js';
import { ConnectFailedError, ConnectionLostError, NotConnectedError } from '../../../api/client/errors.js';
import { freePort } from '../../agent/harness.js';
import { within } from '../../agent/libvirt/qemu-helpers.js';
import { AgentProcess } from './agent-process.js';

const agent = await AgentProcess.start();
t.teardown(() => agent.stop());

t.test('with a keepalive, an agent that stops answering (SIGSTOP) is declared lost though its socket stays open', async (t) => {
  const client = await HostvisorClient.connect({ ...agent.target, keepaliveMs: 300, timeoutMs: 20_000 });
  t.teardown(() => client.close({ graceMs: 0 }));
  await new Promise((r) => setTimeout(r, 1_000));
  t.ok(client.isConnected, 'a healthy agent answers the pings: still connected after 1 s (three intervals)');
  const t0 = performance.now();
  await agent.signal('SIGSTOP');
  const waiting = client.call('Host.getVMList', {}).catch((e: unknown) => e); // sent to a stopped agent: never answered
  const d = await within('disconnected after SIGSTOP', client.disconnected, 5_000);
  const ms = performance.now() - t0;
  await agent.signal('SIGCONT');
  t.ok(ms < 1_500, `disconnected ${Math.round(ms)} ms after the agent stopped (keepalive 300 ms: at most two intervals and a bit)`);
  t.equal(d.error.name, 'ConnectionLostError');
  t.match((d.error.cause as Error).message, /keepalive/, 'its cause names the keepalive');
  const e = await waiting;
  t.ok(e instanceof ConnectionLostError && e.code === 1102, 'the call that waited is rejected with ConnectionLostError (1102)');
  const fresh = await HostvisorClient.connect({ ...agent.target, timeoutMs: 5_000 });
  t.same(await fresh.call('Host.ping2', {}), {}, 'the continued agent serves a new connection');
  await fresh.close();
});

t.test('kill -9 of the agent: disconnected at once, waiting calls rejected with ConnectionLostError and a cause, later calls fail fast', async (t) => {
  const client = await HostvisorClient.connect({ ...agent.target, timeoutMs: 60_000 });
  t.teardown(() => client.close());
  t.same(await client.call('Host.ping2', {}), {}, 'connected and served');
  // Stopped first, so the calls are surely in flight (sent, not answered) when it dies.
  await agent.signal('SIGSTOP');
  const waiting = [client.call('Host.getVMList', {}), client.call('Host.getCapabilities', {}), client.callRaw('Host.ping2', {})]
    .map((p) => p.then(() => 'answered', (e: unknown) => e));
  await new Promise((r) => setTimeout(r, 100));
  const t0 = performance.now();
  await agent.kill9();
  const d = await within('disconnected after kill -9', client.disconnected, 5_000);
  const ms = performance.now() - t0;
  t.ok(ms < 1_000, `the disconnect is signalled ${Math.round(ms)} ms after the agent died`);
  t.equal(d.error.name, 'ConnectionLostError', 'disconnected: ConnectionLostError');
  t.equal(d.error.code, 1102);
  t.ok(d.code === 1006, `with close code ${d.code} (1006: dropped without a close frame)`);
  t.ok(d.error.cause instanceof Error, `and a cause (${(d.error.cause as Error).message})`);
  t.match(d.error.message, /dropped without a close frame \(code 1006\)|ECONNRESET/, 'the message says how it ended');
  const errs = await within('the waiting calls settle', Promise.all(waiting), 2_000);
  t.ok(errs.every((e) => e instanceof ConnectionLostError && e.code === 1102), 'all three waiting calls: ConnectionLostError (1102), none hung until its 60 s timeout');
  t.match((errs[0] as Error).message, /^Host.getVMList: the connection to the agent was lost/, 'each names its method');
  const t1 = performance.now();
  const after = await client.call('Host.ping2', {}).catch((e: unknown) => e);
  t.ok(after instanceof NotConnectedError && after.code === 1101, 'a call after the drop: NotConnectedError (1101)');
  t.ok(performance.now() - t1 < 50, `failed in ${(performance.now() - t1).toFixed(1)} ms`);
  await agent.restart(); // the next test needs one
});

t.test('connecting to a port nobody listens on fails with ConnectFailedError (1103) naming the cause', async (t) => {
  const url = `wss://localhost:${await freePort()}/`;
  const t0 = performance.now();
  const e = await HostvisorClient.connect({ ...agent.target, url, connectTimeoutMs: 3_000 }).catch((x: unknown) => x);
  t.ok(e instanceof ConnectFailedError && e.code === 1103, 'ConnectFailedError, 1103');
  t.match((e as ConnectFailedError).cause, { code: 'ECONNREFUSED' }, 'its cause is the refusal');
  t.ok(performance.now() - t0 < 3_000, 'within the connect bound');
});

t.test('connecting to a server that never answers the TLS handshake ends at connectTimeoutMs', async (t) => {
  const { createServer } = await import('node:net');
  const held: import('node:net').Socket[] = [];
  const silent = createServer((s) => { held.push(s); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => { for (const s of held) s.destroy(); silent.close(); });
  const url = `wss://localhost:${(silent.address() as { port: number }).port}/`;
  const t0 = performance.now();
  const e = await HostvisorClient.connect({ ...agent.target, url, connectTimeoutMs: 500 }).catch((x: unknown) => x);
  const ms = performance.now() - t0;
  t.ok(e instanceof ConnectFailedError, 'ConnectFailedError');
  t.ok(ms >= 450 && ms < 1_500, `after ${Math.round(ms)} ms (bound 500 ms)`);
});

t.test('an aborted connect fails with ConnectFailedError whose cause is the abort reason', async (t) => {
  const ac = new AbortController();
  const reason = new Error('controller shutting down');
  const p = HostvisorClient.connect({ ...agent.target, signal: ac.signal }).catch((x: unknown) => x);
  ac.abort(reason);
  const e = await p;
  t.ok(e instanceof ConnectFailedError && e.cause === reason, 'ConnectFailedError, cause = the reason given to abort()');
});
