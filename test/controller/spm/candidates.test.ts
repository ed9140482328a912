import t from 'tap';
import { spmCandidates } from '../../../controller/spm/candidates.js';
import type { SpmHostView } from '../../../controller/spm/spm-record.js';
import { seededRandom } from '../sim/seeded-random.js';

const h = (hostId: string, spmPriority: number, extra: Partial<SpmHostView> = {}): SpmHostView =>
  ({ hostId, status: 'Up', spmPriority, poolHostNo: 1, poolConnected: true, ...extra });

t.test('candidates: Up, connected, with a lockspace id and priority >= 0; highest priority first', async (t) => {
  const hosts = [h('low', 1), h('never', -1), h('high', 10), h('zero', 0), h('down', 10, { status: 'NonResponsive' }),
    h('unfit', 10, { status: 'NonOperational' }), h('nopool', 10, { poolConnected: false }), h('noid', 10, { poolHostNo: null })];
  t.same(spmCandidates(hosts, seededRandom(1)).map((x) => x.hostId), ['high', 'low', 'zero']);
});

t.test('ties are broken by the injected random source, whatever order the hosts come in', async (t) => {
  const hosts = ['a', 'b', 'c', 'd', 'e'].map((id) => h(id, 5));
  const orders = new Set<string>();
  for (let seed = 1; seed <= 40; seed++) {
    const one = spmCandidates(hosts, seededRandom(seed)).map((x) => x.hostId).join('');
    const reversed = spmCandidates([...hosts].reverse(), seededRandom(seed)).map((x) => x.hostId).join('');
    t.equal(one, reversed, `seed ${seed}: same order for the same source`);
    orders.add(one[0]!);
  }
  t.equal(orders.size, 5, 'every tied host comes first for some seed');
});
