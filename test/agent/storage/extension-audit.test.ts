// The extension audit the thin-provisioning tests and bench:thinp rely on:
// it accounts for each extension by its request id, so a count that merely
// adds up (a served request of another volume, host or smaller size, or an
// extension that logged no id) no longer passes.
import t from 'tap';
import { auditExtensions, describeUnmatched } from './extension-audit.js';

const VOL = '11111111-1111-4111-8111-111111111111';
const OTHER = '22222222-2222-4222-8222-222222222222';
const ext = (requestId: string | undefined, toMiB: number) => ({ msg: 'drive extended', volume: VOL, toMiB, ...(requestId ? { requestId } : {}) });
const srv = (requestId: string, o: Partial<{ hostId: number; volumeId: string; sizeMiB: number; status: string }> = {}) =>
  ({ msg: 'extend request served', requestId, hostId: 2, volumeId: VOL, sizeMiB: 768, status: 'ok', ...o });

t.test('every extension matched to its own served request: nothing unmatched', async (t) => {
  const a = auditExtensions([ext('a:1', 512), ext('a:2', 768)], [srv('a:1', { sizeMiB: 512 }), srv('a:2')], 2);
  t.equal(a.unmatched.length, 0);
  t.same(a.matched.map((m) => m.served['requestId']), ['a:1', 'a:2']);
});

t.test('counts that add up do not pass: each wrong record leaves its extension unmatched, with why', async (t) => {
  const extended = [ext('a:1', 512), ext('a:2', 768), ext('a:3', 1024), ext('a:4', 1280), ext('a:5', 1536), ext(undefined, 1792)];
  const served = [
    srv('a:1', { hostId: 3 }), // another host's request
    srv('a:2', { volumeId: OTHER }), // another volume
    srv('a:3', { sizeMiB: 768 }), // smaller than the extension
    srv('a:4', { status: 'failed' }), // not ok
    srv('x:9'), srv('x:10'), // unrelated requests that make the count add up
  ];
  t.ok(served.length >= extended.length, 'a count would have said every extension was served');
  const a = auditExtensions(extended, served, 2);
  t.equal(a.matched.length, 0);
  t.same(a.unmatched.map((u) => u.extended['toMiB']), [512, 768, 1024, 1280, 1536, 1792]);
  t.match(a.unmatched[4]!.why, /no "extend request served" for request a:5/);
  t.match(a.unmatched[5]!.why, /logged no request id/);
  t.match(describeUnmatched(a, 2), /and 4 more$/);
});
