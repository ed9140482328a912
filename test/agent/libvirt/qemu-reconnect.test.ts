// Integration: ReconnectingLibvirtClient against the real system libvirtd, which the test kills
// (SIGKILL) and starts again. The client must notice, fail calls fast during the outage, reconnect,
// and re-register its durable 'lifecycle' subscription so that events flow again.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ReconnectingLibvirtClient, LibvirtUnavailableError, enums, type Connection, type DisconnectInfo,
} from '../../../agent/libvirt/index.js';
import { createLogger } from '../../../agent/log.js';
import { guestDomainXml, libvirtdCtl } from '../../lab/guest.js';
import {
  EventLog, SYSTEM_URI, destroyGuestQuietly, guestName, makeTempDir, removeDir, run, waitUntil, within,
} from './qemu-helpers.js';

const { DomainEventType, ConnectCloseReason } = enums;

/** "Fast": far below the 20 s call timeout and the ~3 s keepalive, with room for a loaded host. */
const FAST_MS = 500;

/** Runs `fn` and returns what it threw (sync or async) and how long that took. */
async function failure(fn: () => unknown): Promise<{ err: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    await fn();
  } catch (err) {
    return { err, ms: performance.now() - t0 };
  }
  return { err: undefined, ms: performance.now() - t0 };
}

/** Resolves once no `libvirt-binding` benchmark (another engineer's) is running; bounded. */
async function waitForNoBenchmark(timeoutMs: number): Promise<void> {
  await waitUntil('no running libvirt-binding benchmark (pgrep -f libvirt-binding)', async () => {
    try {
      const { stdout } = await run('pgrep', ['-f', 'libvirt-binding'], 10_000);
      return stdout.trim() === '' ? true : undefined;
    } catch {
      return true; // pgrep exits 1 when nothing matches
    }
  }, timeoutMs, 1_000);
}

t.test('ReconnectingLibvirtClient survives a libvirtd SIGKILL: it emits disconnected, fails calls fast with LibvirtUnavailableError, emits connected after libvirtd restarts, and its durable lifecycle subscription delivers STARTED/STOPPED again', async (t) => {
  const before = guestName('reconn-a');
  const after = guestName('reconn-b');
  const dir = await makeTempDir('reconn');
  const logLines: string[] = [];
  const client = new ReconnectingLibvirtClient(SYSTEM_URI, {
    keepAlive: { intervalSec: 1, count: 2 },
    backoff: { initialMs: 100, maxMs: 500, factor: 2 },
    callTimeoutMs: 20_000,
    log: createLogger({ level: 'debug', sink: (l) => logLines.push(l) }),
  });

  t.teardown(async () => {
    // libvirtd must be up again whatever happened; every step is independent of the others.
    try {
      await libvirtdCtl('start', 60_000);
    } catch (e) {
      console.error(`teardown: could not restart libvirtd: ${String(e)}`);
    }
    let conn: Connection | undefined;
    try { conn = client.connection; } catch { /* not connected: virsh fallback */ }
    await destroyGuestQuietly(before, conn);
    await destroyGuestQuietly(after, conn);
    await within('client.stop()', client.stop(), 30_000).catch(() => {});
    await removeDir(dir);
  });

  await libvirtdCtl('start', 60_000); // a previous run may have left it down
  const connected: { generation: number; attempts: number; at: number }[] = [];
  const disconnected: (DisconnectInfo & { generation: number; at: number })[] = [];
  client.on('connected', (c) => connected.push({ ...c, at: performance.now() }));
  client.on('disconnected', (d) => disconnected.push({ ...d, at: performance.now() }));

  await within('first connect', client.start(), 30_000);
  t.ok(client.connected, 'the client connects to qemu:///system');
  t.equal(connected.length, 1, 'connected is emitted once for the first connection');
  t.equal(connected[0]?.generation, 1, 'the first connection is generation 1');

  const lifecycle = new EventLog<'lifecycle'>();
  const durable = await client.subscribe('lifecycle', lifecycle.listener);
  t.teardown(() => durable.close().catch(() => {}));
  const started = (name: string) => (ev: { event: number; domain: { name: string } }) =>
    ev.domain.name === name && ev.event === DomainEventType.STARTED;
  const stopped = (name: string) => (ev: { event: number; domain: { name: string } }) =>
    ev.domain.name === name && ev.event === DomainEventType.STOPPED;

  // Generation 1: the subscription works.
  const domA = await client.connection.createXML(guestDomainXml({ name: before, serialPath: `${dir}/a.serial` }));
  await lifecycle.waitFor(`STARTED for ${before}`, started(before), 20_000);
  await domA.destroy();
  await lifecycle.waitFor(`STOPPED for ${before}`, stopped(before), 20_000);
  t.pass('before the outage the durable subscription delivers STARTED and STOPPED');

  await waitForNoBenchmark(120_000);
  const oldConn = client.connection;
  let oldConnImmediate: Promise<{ err: unknown; ms: number }> | undefined;
  oldConn.once('disconnected', () => { oldConnImmediate = failure(() => oldConn.hostname()); });
  const gotDisconnected = new Promise<void>((resolve) => client.once('disconnected', () => resolve()));
  const tKill = performance.now();
  await libvirtdCtl('kill', 30_000);
  await within("'disconnected' after libvirtd was killed", gotDisconnected, 20_000);
  const d = disconnected[0];
  t.ok(d, 'the client emits disconnected');
  t.comment(`disconnected ${Math.round((d?.at ?? 0) - tKill)} ms after the kill started; reason ${d?.reasonName}`);
  t.ok(d && (d.reason === ConnectCloseReason.EOF || d.reason === ConnectCloseReason.KEEPALIVE ||
    d.reason === ConnectCloseReason.ERROR), `the close reason is EOF, KEEPALIVE or ERROR (${d?.reasonName})`);
  t.equal(d?.generation, 1, 'disconnected names the lost generation');
  t.notOk(client.connected, 'client.connected is false during the outage');

  // Calls during the outage fail fast with LibvirtUnavailableError. Through the client this holds
  // from the moment 'disconnected' is emitted.
  const viaClient = await failure(() => client.connection.hostname());
  t.type(viaClient.err, LibvirtUnavailableError, 'client.connection throws LibvirtUnavailableError');
  t.ok(viaClient.ms < FAST_MS, `and fails fast (${viaClient.ms.toFixed(1)} ms)`);
  t.notOk(oldConn.isOpen, 'the lost connection reports isOpen false');

  // A call on the lost connection made at once (in its own 'disconnected' listener) is refused
  // locally: the connection knows it was lost.
  if (!oldConnImmediate) throw new Error("the lost connection did not emit 'disconnected' itself");
  const immediate = await within('the call made in the disconnected listener', oldConnImmediate, 10_000);
  t.ok(immediate.err !== undefined && immediate.ms < FAST_MS,
    `a call on the lost connection made at the disconnect fails fast (${immediate.ms.toFixed(1)} ms, ${String(immediate.err)})`);
  t.type(immediate.err, LibvirtUnavailableError,
    'a call on the lost connection made at the disconnect fails with LibvirtUnavailableError');
  // Once the client's close() of the lost connection has finished, every call is refused locally.
  // Until then each call must still fail (never succeed or hang), and fast.
  let attempts = 0;
  let slowestMs = 0;
  let nonFailures = 0;
  const viaOldConn = await waitUntil('a call on the lost connection to fail with LibvirtUnavailableError', async () => {
    const f = await failure(() => oldConn.hostname());
    attempts++;
    slowestMs = Math.max(slowestMs, f.ms);
    if (f.err === undefined) nonFailures++;
    return f.err instanceof LibvirtUnavailableError ? f : undefined;
  }, 10_000, 20);
  t.type(viaOldConn.err, LibvirtUnavailableError, 'then a call on the lost connection fails with LibvirtUnavailableError');
  t.equal(nonFailures, 0, `no call on the lost connection succeeded (${attempts} attempts)`);
  const viaOldDomain = await failure(() => domA.state());
  t.type(viaOldDomain.err, LibvirtUnavailableError, 'and so does a call on a domain of the lost connection');
  t.ok(Math.max(slowestMs, viaOldDomain.ms) < FAST_MS,
    `all of them fail fast (slowest ${Math.max(slowestMs, viaOldDomain.ms).toFixed(1)} ms)`);

  // Stay down for a few reconnect attempts (they must keep failing, not give up).
  await sleep(1_500);
  t.equal(connected.length, 1, 'no connection is made while libvirtd is down');
  const failedAttempts = logLines.filter((l) => l.includes('libvirt connect failed')).length;
  t.ok(failedAttempts >= 2, `the client kept retrying during the outage (${failedAttempts} failed attempts)`);

  const gotConnected = new Promise<void>((resolve) => client.once('connected', () => resolve()));
  const tStart = performance.now();
  await libvirtdCtl('start', 60_000);
  const tAnswering = performance.now();
  await within("'connected' after libvirtd was started again", gotConnected, 30_000);
  const c2 = connected[1];
  t.ok(c2, 'the client emits connected again');
  t.equal(c2?.generation, 2, 'the new connection is generation 2');
  t.comment(`libvirtd.sh start took ${Math.round(tAnswering - tStart)} ms; the client was connected ${Math.round((c2?.at ?? 0) - tStart)} ms after it began, after ${c2?.attempts} attempt(s)`);
  t.ok(client.connected, 'client.connected is true again');
  t.not(client.connection, oldConn, 'the client uses a new connection');
  t.ok(await client.connection.hostname(), 'calls work again');

  // Generation 2: the re-registered durable subscription delivers events, once each.
  const domB = await client.connection.createXML(guestDomainXml({ name: after, serialPath: `${dir}/b.serial` }));
  const s = await lifecycle.waitFor(`STARTED for ${after}`, started(after), 20_000);
  t.equal(s.ev.domain.uuid, domB.uuid, 'STARTED arrives for the guest created after the reconnect');
  await domB.destroy();
  await lifecycle.waitFor(`STOPPED for ${after}`, stopped(after), 20_000);
  await sleep(500); // time for any duplicate delivery to show up
  t.equal(lifecycle.matching(started(after)).length, 1, 'STARTED is delivered exactly once (no duplicate registration)');
  t.equal(lifecycle.matching(stopped(after)).length, 1, 'STOPPED is delivered exactly once');
});
