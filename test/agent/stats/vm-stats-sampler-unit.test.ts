// Unit: VmStatsSampler's scheduling and libvirt usage, on a fake connection that only knows the
// bulk stats call (Connection.domainStats; any per-VM call would throw). The fake turns the query
// into libvirt's words with the facade's own domainStatsFlags, as Connection does.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { domainStatsFlags, type Connection, type DomainStatsQuery, type RawDomainStats } from '../../../agent/libvirt/index.js';
import { LibvirtUnavailableError } from '../../../agent/libvirt/errors.js';
import { ConnectGetAllDomainStatsFlags as F, DomainStatsTypes as S } from '../../../agent/libvirt/generated/enums.js';
import type { LogFields, Logger } from '../../../agent/log.js';
import { VmStatsSampler, VM_STATS_FLAGS, VM_STATS_GROUPS } from '../../../agent/stats/vm-stats-sampler.js';

const UUID = '11111111-2222-3333-4444-555555555555';

interface Call { stats: number; flags: number }

class FakeConn {
  calls: Call[] = [];
  /** What the next calls return; a function may block the call. */
  next: (n: number) => Promise<RawDomainStats[]> | RawDomainStats[] = () => [];
  domainStats(q: DomainStatsQuery): Promise<RawDomainStats[]> {
    this.calls.push(domainStatsFlags(q));
    return Promise.resolve(this.next(this.calls.length));
  }
  asConnection(): Connection {
    return this as unknown as Connection;
  }
}

function captureLog(): { log: Logger; lines: { level: string; msg: string; fields?: LogFields }[] } {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields) => { lines.push({ level, msg, fields }); };
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return { log, lines };
}

const dom = (cpuNs: number): RawDomainStats => ({ name: 'vm', uuid: UUID, stats: { 'cpu.time': cpuNs } });

t.test('one bulk call per sample, with the right groups and flags; the timestamp is taken before the call', async (t) => {
  const conn = new FakeConn();
  let clock = 1000;
  conn.next = (n) => { clock += 500; return [dom(n * 1_000_000_000)]; }; // the call itself "takes" 500 ms
  const s = new VmStatsSampler({ getConnection: () => conn.asConnection(), log: captureLog().log, now: () => clock });
  t.equal(s.intervalMs, 15_000, "VDSM's default interval");

  await s.sampleNow();
  t.equal(s.stats(UUID)?.sampleTime, 1000, 'sampleTime is the time before the call');
  t.equal(s.stats(UUID)?.cpuPct, 0, 'one sample: rate 0');
  clock += 1500; // 2000 ms after the first timestamp
  await s.sampleNow();
  t.equal(s.stats(UUID)?.sampleTime, 3000);
  t.equal(s.stats(UUID)?.cpuPct, 50, '1 s of CPU over 2 s');
  t.same([...s.all().keys()], [UUID]);

  t.equal(conn.calls.length, 2, 'exactly one libvirt call per sample');
  const want = S.STATE | S.CPU_TOTAL | S.BALLOON | S.VCPU | S.INTERFACE | S.BLOCK;
  t.equal(conn.calls[0]?.stats, want, 'groups: state, cpu, balloon, vcpu, interface, block');
  t.equal(VM_STATS_GROUPS, want);
  const flags = conn.calls[0]?.flags ?? 0;
  t.ok(flags & F.RUNNING && flags & F.PAUSED, 'running and paused domains');
  t.ok(flags & F.NOWAIT, 'NOWAIT (present in the generated enum)');
  t.equal(flags & (F.SHUTOFF | F.ACTIVE | F.INACTIVE | F.ENFORCE_STATS), 0, 'nothing else');
  t.equal(flags, VM_STATS_FLAGS);

  conn.next = () => [];
  await s.sampleNow();
  t.equal(s.stats(UUID), undefined, 'a domain absent from the next bulk result is dropped');
  t.equal(s.all().size, 0);
});

t.test('libvirt unavailable: sampleNow rejects, the last samples are kept, the periodic tick logs at debug', async (t) => {
  const conn = new FakeConn();
  conn.next = () => [dom(0)];
  let up = true;
  const { log, lines } = captureLog();
  const s = new VmStatsSampler({
    getConnection: () => { if (!up) throw new LibvirtUnavailableError(); return conn.asConnection(); },
    intervalMs: 20, log,
  });
  await s.sampleNow();
  up = false;
  await t.rejects(s.sampleNow(), LibvirtUnavailableError);
  t.ok(s.stats(UUID), 'the previous sample is still there');
  s.start();
  await sleep(70);
  s.stop();
  t.ok(lines.some((l) => l.level === 'debug' && /libvirt unavailable/.test(l.msg)), 'outage logged at debug');
  t.notOk(lines.some((l) => l.level === 'warn' || l.level === 'error'), 'an outage is not a warning');
  t.equal(conn.calls.length, 1, 'no call while unavailable');
});

t.test('start(): a sample at once, then every interval, never overlapping (skipped and logged); stop() ends it', async (t) => {
  const conn = new FakeConn();
  let release: (() => void) | undefined;
  conn.next = (n) => (n === 2 ? new Promise((r) => { release = () => r([dom(n)]); }) : [dom(n)]);
  const { log, lines } = captureLog();
  const s = new VmStatsSampler({ getConnection: () => conn.asConnection(), intervalMs: 25, log });
  s.start();
  s.start(); // idempotent
  t.equal(conn.calls.length, 1, 'the first sample is taken synchronously at start()');
  t.ok(s.running);
  await sleep(140); // the 2nd call blocks: the ticks meanwhile are skipped
  t.equal(conn.calls.length, 2, 'no new call while one is in flight');
  t.ok(s.skippedSamples >= 2, `skipped ${s.skippedSamples} ticks`);
  t.ok(lines.some((l) => l.level === 'warn' && /skipped/.test(l.msg)), 'a skip is logged');
  release?.();
  await sleep(60);
  t.ok(conn.calls.length >= 3, 'sampling resumes once the slow call finished');
  s.stop();
  t.notOk(s.running);
  await sleep(10); // a call that was in flight at stop() may still land
  const n = conn.calls.length;
  await sleep(80);
  t.equal(conn.calls.length, n, 'no call after stop()');
});

t.test('sampleNow() while a sample is in flight waits for it, then takes a fresh one', async (t) => {
  const conn = new FakeConn();
  let release: (() => void) | undefined;
  conn.next = (n) => (n === 1 ? new Promise((r) => { release = () => r([dom(1)]); }) : [dom(n)]);
  let clock = 0;
  const s = new VmStatsSampler({ getConnection: () => conn.asConnection(), log: captureLog().log, now: () => ++clock });
  const first = s.sampleNow();
  const second = s.sampleNow();
  await sleep(5);
  t.equal(conn.calls.length, 1, 'the second waits for the first');
  release?.();
  await Promise.all([first, second]);
  t.equal(conn.calls.length, 2);
  t.equal(s.stats(UUID)?.sampleTime, 2, 'the newest sample is the second one');
});

t.test('intervalMs must be positive', async (t) => {
  t.throws(() => new VmStatsSampler({ getConnection: () => { throw new Error('x'); }, intervalMs: 0, log: captureLog().log }), RangeError);
});
