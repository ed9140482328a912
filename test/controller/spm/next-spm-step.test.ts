import t from 'tap';
import { defaultDecisionSettings } from '../../../controller/decision-settings.js';
import { nextSpmStep } from '../../../controller/spm/next-spm-step.js';
import { recordSpmResult } from '../../../controller/spm/spm-result.js';
import { NO_SPM, type SpmHostView, type SpmRecord } from '../../../controller/spm/spm-record.js';
import type { HostStatus } from '../../../controller/health/host-status.js';
import { seededRandom } from '../sim/seeded-random.js';

const S = defaultDecisionSettings();
const rnd = () => seededRandom(7);

function host(hostId: string, no: number, status: HostStatus = 'Up', spmPriority = 5, extra: Partial<SpmHostView> = {}): SpmHostView {
  return { hostId, status, spmPriority, poolHostNo: no, poolConnected: true, ...extra };
}
const spmIs = (hostId: string, lver: number): SpmRecord => ({ ...NO_SPM, spmHostId: hostId, lver });

t.test('with no SPM, spmStart goes to the best candidate and the attempt is in the record before the call', async (t) => {
  const step = nextSpmStep(NO_SPM, [host('a', 1, 'Up', 3), host('b', 2, 'Up', 7), host('c', 3, 'Up', -1)], 1000, S, rnd());
  t.match(step.action, { kind: 'start', hostId: 'b', candidates: ['b', 'a'] });
  t.same(step.record.inFlight, { op: 'start', hostId: 'b', since: 1000 });
  t.match(step.events, [{ kind: 'spm.contend', host: 'b' }]);
});

t.test('a successful spmStart records the SPM and its lver; the next step keeps it', async (t) => {
  const hosts = [host('a', 1), host('b', 2)];
  const s1 = nextSpmStep(NO_SPM, hosts, 0, S, rnd());
  t.equal(s1.action.kind, 'start');
  const chosen = (s1.action as { hostId: string }).hostId;
  const r = recordSpmResult(s1.record, { op: 'start', hostId: chosen, ok: true, lver: 4 }, 500);
  t.same(r.record, { spmHostId: chosen, lver: 4, since: 500, inFlight: null, failedAt: {} });
  t.match(r.events, [{ kind: 'spm.elected', at: 500, data: { lver: 4 } }]);
  t.match(nextSpmStep(r.record, hosts, 3000, S, rnd()).action, { kind: 'keep', hostId: chosen });
});

t.test('while an spmStart is in flight nothing else is tried; with no result after spmOpTimeoutMs it is abandoned', async (t) => {
  const hosts = [host('a', 1), host('b', 2)];
  const s1 = nextSpmStep(NO_SPM, hosts, 0, S, rnd());
  const first = (s1.action as { hostId: string }).hostId;
  t.match(nextSpmStep(s1.record, hosts, S.spmOpTimeoutMs, S, rnd()).action, { kind: 'wait', reason: /in flight/ });
  const s2 = nextSpmStep(s1.record, hosts, S.spmOpTimeoutMs + 1, S, rnd());
  t.match(s2.events[0], { kind: 'spm.abandoned', host: first });
  t.match(s2.action, { kind: 'start' });
  t.not((s2.action as { hostId: string }).hostId, first, 'the abandoned host waits its retry interval; the other is tried');
});

t.test('SPM lost: the next candidate is tried, refused while the old lease is held, retried every interval until it takes the lease', async (t) => {
  let rec = spmIs('a', 7);
  const hosts = [host('a', 1, 'NonResponsive', 9), host('b', 2, 'Up', 5), host('c', 3, 'Up', 2)];
  const tried: string[] = [];
  let now = 100_000;
  for (let i = 0; i < 30 && rec.spmHostId === 'a'; i++, now += 3000) {
    const step = nextSpmStep(rec, hosts, now, S, rnd());
    rec = step.record;
    if (step.action.kind !== 'start') continue;
    tried.push(`${step.action.hostId}@${now / 1000}`);
    t.not(step.action.hostId, 'a', 'the lost SPM is never a candidate');
    const leaseFree = now >= 150_000;
    rec = recordSpmResult(rec, leaseFree
      ? { op: 'start', hostId: step.action.hostId, ok: true, lver: 8 }
      : { op: 'start', hostId: step.action.hostId, ok: false, leaseHeld: true, error: '40' }, now + 100).record;
    t.equal(rec.spmHostId, leaseFree ? step.action.hostId : 'a', 'the record names the old SPM until a start succeeds');
  }
  // b (best) at 100 s, c at the next poll, then each again at the first poll after its 10 s
  // interval; the lease frees at 150 s and c, tried at 151 s, takes it.
  t.same(tried, ['b@100', 'c@103', 'b@112', 'c@115', 'b@124', 'c@127', 'b@136', 'c@139', 'b@148', 'c@151']);
  t.equal(rec.spmHostId, 'c');
  t.equal(rec.lver, 8);
});

t.test('an SPM that is Connecting or Initializing is waited for: no start elsewhere within its grace', async (t) => {
  for (const st of ['Connecting', 'Initializing'] as const) {
    const step = nextSpmStep(spmIs('a', 3), [host('a', 1, st), host('b', 2)], 0, S, rnd());
    t.match(step.action, { kind: 'wait', reason: new RegExp(st) });
    t.equal(step.record.inFlight, null);
  }
});

t.test('a reachable but unfit SPM (NonOperational, maintenance) gets spmStop; once stopped a new SPM is elected', async (t) => {
  const hosts = [host('a', 1, 'PreparingForMaintenance'), host('b', 2)];
  const s1 = nextSpmStep(spmIs('a', 3), hosts, 0, S, rnd());
  t.match(s1.action, { kind: 'stop', hostId: 'a' });
  const failed = recordSpmResult(s1.record, { op: 'stop', hostId: 'a', ok: false, error: '653 unfinished tasks' }, 10).record;
  t.match(nextSpmStep(failed, hosts, 5000, S, rnd()).action, { kind: 'wait', retryAt: 10 + S.spmRetryIntervalMs });
  const s2 = nextSpmStep(failed, hosts, 10 + S.spmRetryIntervalMs, S, rnd());
  t.match(s2.action, { kind: 'stop', hostId: 'a' });
  const stopped = recordSpmResult(s2.record, { op: 'stop', hostId: 'a', ok: true }, 20_000);
  t.equal(stopped.record.spmHostId, null);
  t.match(nextSpmStep(stopped.record, hosts, 20_001, S, rnd()).action, { kind: 'start', hostId: 'b' });
  t.match(nextSpmStep(spmIs('a', 3), [host('a', 1, 'NonOperational'), host('b', 2)], 0, S, rnd()).action, { kind: 'stop', hostId: 'a' });
});

t.test('a recorded SPM that answers and reports the lease Free is forgotten and another elected', async (t) => {
  const a = host('a', 1, 'Up', 5, { lease: { role: 'Free', holder: -1, lver: -1, at: 1000 } });
  const step = nextSpmStep(spmIs('a', 3), [a, host('b', 2, 'Up', 1)], 2000, S, rnd());
  t.match(step.events, [{ kind: 'spm.lost', host: 'a' }, { kind: 'spm.contend' }]);
  t.match(step.action, { kind: 'start', hostId: 'a' }, 'it may take the lease again: it is the best candidate');
  const stale = host('a', 1, 'Up', 5, { lease: { role: 'Free', holder: -1, lver: -1, at: 1000 } });
  t.match(nextSpmStep(spmIs('a', 3), [stale], 1000 + S.spmReportMaxAgeMs + 1, S, rnd()).action, { kind: 'keep' }, 'a stale report is not used');
});

t.test('a controller that lost its record adopts the holder a host reports, without calling anything', async (t) => {
  const b = host('b', 2, 'Up', 5, { lease: { role: 'SPM', holder: 2, lver: 12, at: 900 } });
  const step = nextSpmStep(NO_SPM, [host('a', 1), b], 1000, S, rnd());
  t.match(step.action, { kind: 'keep', hostId: 'b' });
  t.match(step.record, { spmHostId: 'b', lver: 12 });
  t.match(step.events, [{ kind: 'spm.adopted', host: 'b', data: { lver: 12 } }]);
  const viaOther = nextSpmStep(NO_SPM, [host('a', 1, 'Up', 5, { lease: { role: 'Free', holder: 2, lver: 12, at: 900 } }), host('b', 2, 'NonResponsive')], 1000, S, rnd());
  t.match(viaOther.record, { since: 1000 });
  t.match(viaOther.record, { spmHostId: 'b', lver: 12 }, 'a lost holder named by another host is adopted too');
  t.match(viaOther.action, { kind: 'start', hostId: 'a' }, '... and then failed over from');
});

t.test('a report of an older lease version than the record is ignored (the old SPM cannot still hold it)', async (t) => {
  const a = host('a', 1, 'Up', 5, { lease: { role: 'SPM', holder: 1, lver: 6, at: 900 } });
  const step = nextSpmStep(spmIs('b', 7), [a, host('b', 2)], 1000, S, rnd());
  t.match(step.action, { kind: 'keep', hostId: 'b' });
  t.same(step.events, []);
});

t.test('a late spmStart success older than the recorded lease is ignored', async (t) => {
  const r = recordSpmResult(spmIs('b', 9), { op: 'start', hostId: 'a', ok: true, lver: 8 }, 0);
  t.match(r.record, { spmHostId: 'b', lver: 9 });
  t.match(r.events, [{ kind: 'spm.stale-result' }]);
});

t.test('no candidate (all priority -1, not connected, or not Up): wait, saying why', async (t) => {
  const hosts = [host('a', 1, 'Up', -1), host('b', 2, 'Up', 5, { poolConnected: false }), host('c', 3, 'NonOperational'), host('d', 4, 'Up', 5, { poolHostNo: null })];
  const step = nextSpmStep(NO_SPM, hosts, 0, S, rnd());
  t.match(step.action, { kind: 'wait', reason: /no candidate/ });
  t.same(step.events, []);
});

t.test('another host reading the lease free (holder -1) shows the SPM lost it: elected at once, without waiting the grace', async (t) => {
  const b = host('b', 2, 'Up', 5, { lease: { role: 'Free', holder: -1, lver: -1, at: 1000 } });
  const step = nextSpmStep(spmIs('a', 3), [host('a', 1, 'Connecting'), b], 2000, S, rnd());
  t.match(step.events, [{ kind: 'spm.lost', host: 'a', reason: /b reads the SPM lease free/ }, { kind: 'spm.contend', host: 'b' }]);
  t.match(step.action, { kind: 'start', hostId: 'b' });
  const recordedLater = { ...spmIs('a', 3), since: 1000 };
  t.match(nextSpmStep(recordedLater, [host('a', 1, 'Connecting'), b], 2000, S, rnd()).action, { kind: 'wait' }, 'a read begun before the SPM was recorded proves nothing');
  const selfSpm = host('a', 1, 'Up', 5, { lease: { role: 'SPM', holder: 1, lver: 3, at: 1500 } });
  t.match(nextSpmStep(spmIs('a', 3), [selfSpm, b], 2000, S, rnd()).action, { kind: 'keep', hostId: 'a' }, 'the holder saying SPM outweighs a racing read');
});
