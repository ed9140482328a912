// Connections that never become WebSocket: 100 of them (TLS then silence,
// half a request line, a header one byte at a time, TCP without TLS), spread
// over ten loopback addresses, must each be closed within the upgrade bound
// from accept (rpc.upgradeTimeoutMs, 5 s by default), and the agent's
// descriptor count must return to its baseline. One address cannot hold
// more than rpc.maxConnectionsPerPeer (32) connections: the rest are closed
// at once. An engine still connects throughout. The agent is a child process
// with its default settings. Loopback only; every wait is bounded.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient, spawnAgent, stopChild, testConfig } from '../harness.js';
import { clientCreds, fdCount, openStalled, openTls, type StallKind, type Stalled } from './hostile-clients.js';

/** Default rpc.upgradeTimeoutMs. */
const UPGRADE_BOUND_MS = 5_000;
/** Timers fire late on a loaded 2-core machine; a close this late still counts as within the bound. */
const SLACK_MS = 1_500;
const PER_PEER_CAP = 32;
const KINDS: [StallKind, number][] = [['tls-silent', 40], ['half-request-line', 25], ['slow-header', 25], ['tcp-only', 10]];

t.test('100 connections that never upgrade are closed within the upgrade bound and the descriptors come back', async (t) => {
  const config = await testConfig();
  const { child } = await spawnAgent(config);
  t.teardown(() => stopChild(child, 10_000));
  const pid = child.pid!;
  const port = config['rpc.port'];
  const creds = clientCreds(config['pki.dir']);
  await sleep(1_000);
  const baseline = fdCount(pid);

  const stalled: Stalled[] = [];
  t.teardown(() => { for (const s of stalled) s.stop(); });
  let k = 0;
  for (const [kind, n] of KINDS) {
    for (let i = 0; i < n; i++, k++) {
      // Ten per address, so the per-peer cap is not what closes them.
      stalled.push(await openStalled(kind, port, creds, { localAddress: `127.0.0.${2 + (k % 10)}`, slowByteMs: 200 }));
    }
  }
  // The agent accepts asynchronously: give it a moment to take them all (bounded).
  const acceptUntil = performance.now() + 2_000;
  let opened = fdCount(pid);
  while (opened < baseline + stalled.length && performance.now() < acceptUntil) { await sleep(50); opened = fdCount(pid); }
  t.comment(`agent descriptors: ${baseline} at rest, ${opened} with the ${stalled.length} stalled connections open`);
  t.ok(opened >= baseline + stalled.length, 'the agent holds a descriptor for each stalled connection');

  // An engine connects and is answered while they are held.
  const engine = await connectClient(config, { timeoutMs: 5_000 });
  t.same(await engine.call('Host.ping2', {}), {}, 'an engine connects and is answered while 100 connections stall');
  await engine.close({ graceMs: 0 });

  const until = Math.max(...stalled.map((s) => s.openedAt)) + UPGRADE_BOUND_MS + SLACK_MS;
  while (performance.now() < until && stalled.some((s) => s.closedAt === undefined)) await sleep(50);
  for (const [kind] of KINDS) {
    const mine = stalled.filter((s) => s.kind === kind);
    const open = mine.filter((s) => s.closedAt === undefined).length;
    const late = mine.filter((s) => s.closedAt !== undefined && s.closedAt - s.openedAt > UPGRADE_BOUND_MS + SLACK_MS).length;
    const worst = Math.max(...mine.map((s) => (s.closedAt ?? Infinity) - s.openedAt));
    t.equal(open + late, 0, `${kind}: all ${mine.length} closed by the agent within ${UPGRADE_BOUND_MS} ms of accept (${open} still open, ${late} late; worst ${worst === Infinity ? 'never' : `${Math.round(worst)} ms`})`);
  }

  const fdUntil = performance.now() + 3_000;
  let fds = fdCount(pid);
  while (fds > baseline && performance.now() < fdUntil) { await sleep(100); fds = fdCount(pid); }
  t.ok(fds <= baseline, `the agent's descriptor count is back at its baseline (${fds} now, ${baseline} before)`);
});

t.test(`one address holds at most ${PER_PEER_CAP} connections; the rest are closed at accept, and others still connect`, async (t) => {
  const config = await testConfig();
  const { child } = await spawnAgent(config);
  t.teardown(() => stopChild(child, 10_000));
  const port = config['rpc.port'];
  const creds = clientCreds(config['pki.dir']);
  const TRIES = PER_PEER_CAP + 8;

  const held: Stalled[] = [];
  t.teardown(() => { for (const s of held) s.stop(); });
  let refusedAtOnce = 0;
  for (let i = 0; i < TRIES; i++) {
    try {
      const s = await openStalled('tls-silent', port, creds, { localAddress: '127.0.0.20' });
      held.push(s);
    } catch {
      refusedAtOnce++; // closed before the TLS handshake could finish
    }
  }
  await sleep(500);
  const open = held.filter((s) => s.closedAt === undefined).length;
  t.equal(open, PER_PEER_CAP, `${PER_PEER_CAP} of ${TRIES} connections from one address stay open (until the upgrade bound)`);
  const closedFast = held.filter((s) => s.closedAt !== undefined && s.closedAt - s.openedAt < 1_000).length;
  t.equal(refusedAtOnce + closedFast, TRIES - PER_PEER_CAP, `the other ${TRIES - PER_PEER_CAP} were closed at once (${refusedAtOnce} before the TLS handshake finished)`);

  // Another address is not affected, and a full engine connection works from it.
  const other = await openTls(port, creds, { localAddress: '127.0.0.21' });
  t.ok(other.sock.authorized, 'a connection from another address completes TLS');
  other.sock.destroy();
  const engine = await connectClient(config, { timeoutMs: 5_000 });
  t.same(await engine.call('Host.ping2', {}), {}, 'an engine from 127.0.0.1 connects and is answered');
  await engine.close({ graceMs: 0 });
});
