// A live merge's base during the commit (agent/vm/merge/base-room.ts): the
// backing layer found in libvirt's bulk stats by disk and index, when it is
// extended and to what, and the drive monitor leaving a claimed layer's
// threshold events alone (libvirt also names the active layer "vda[N]").
import t from 'tap';
import { backingLayerStats, baseExtension, baseMarginBytes } from '../../../../agent/vm/merge/base-room.js';
import { DriveMonitor } from '../../../../agent/storage/thinp/drive-monitor.js';
import { silentLogger } from '../../../../agent/log.js';
import type { Connection } from '../../../../agent/libvirt/index.js';

const MiB = 1024 * 1024;
const policy = { chunkMiB: 64, percent: 50, maxFactor: 1.1 };

/** Bulk stats as libvirt gives them with the backing flag: vda's active layer (index 3), its base (index 2), and vdb. */
const stats = {
  'block.count': 3,
  'block.0.name': 'vda', 'block.0.backingIndex': 3, 'block.0.allocation': 500 * MiB, 'block.0.physical': 512 * MiB, 'block.0.capacity': 1024 * MiB, 'block.0.threshold': 480 * MiB,
  'block.1.name': 'vda', 'block.1.backingIndex': 2, 'block.1.allocation': 40 * MiB, 'block.1.physical': 68 * MiB, 'block.1.capacity': 1024 * MiB,
  'block.2.name': 'vdb', 'block.2.backingIndex': 2, 'block.2.allocation': 1 * MiB, 'block.2.physical': 1 * MiB, 'block.2.capacity': 1 * MiB,
};

t.test("the base's stats are the entry with the disk's name and the base's backing index, not the active layer's or another disk's", async (t) => {
  t.same(backingLayerStats(stats, 'vda', 2), { allocation: 40 * MiB, physical: 68 * MiB, capacity: 1024 * MiB });
  t.same(backingLayerStats(stats, 'vda', 3)?.threshold, 480 * MiB, 'an armed threshold is reported');
  t.equal(backingLayerStats(stats, 'vda', 5), undefined, 'an index libvirt does not report: undefined, not a guess');
  t.equal(backingLayerStats({ 'block.count': 0 }, 'vda', 2), undefined);
});

t.test('the base is extended during the commit only when its free room is at or below half the watermark, by one chunk', async (t) => {
  t.equal(baseMarginBytes(policy), 16 * MiB, 'half of a 64 MiB chunk at 50 %');
  t.equal(baseExtension({ allocation: 40 * MiB, physical: 68 * MiB, capacity: 1024 * MiB }, policy), undefined, '28 MiB free: room enough');
  t.equal(baseExtension({ allocation: 52 * MiB, physical: 68 * MiB, capacity: 1024 * MiB }, policy), 132, '16 MiB free: 68 + 64 MiB');
  t.equal(baseExtension({ allocation: 68 * MiB, physical: 68 * MiB, capacity: 1024 * MiB }, policy), 132, 'full (a commit that failed on ENOSPC): extended');
  t.equal(baseExtension({ allocation: 0, physical: 68 * MiB, capacity: 1024 * MiB }, policy), undefined, 'not written yet by this QEMU (allocation 0): nothing to do');
  t.equal(baseExtension({ allocation: 1090 * MiB, physical: 1100 * MiB, capacity: 1024 * MiB }, policy), 1127, 'near its maximum: up to 1.1 x capacity');
  t.equal(baseExtension({ allocation: 1127 * MiB, physical: 1127 * MiB, capacity: 1024 * MiB }, policy), undefined, 'at its maximum: no more');
});

t.test("the drive monitor leaves a claimed backing layer's threshold events to the merge, and takes them back once released", async (t) => {
  const asked: string[] = [];
  const monitor = new DriveMonitor({
    // Every extension starts by reading the domain: record which drive asked, then stop there.
    getConnection: () => ({ lookupByUUID: async (uuid: string) => { asked.push(uuid); throw new Error('no libvirt in this test'); } }) as unknown as Connection,
    policy, requestExtend: async () => undefined, refresh: async () => 0, resumeIfEnospc: async () => {},
    pollMs: 60_000, retryAfterMs: 60_000, log: silentLogger,
  });
  monitor.add({ vmId: 'vm1', target: 'vda', domainId: 'sd', volumeId: 'leaf' });
  await new Promise((r) => setImmediate(r));
  asked.length = 0;
  monitor.claimLayer('vm1', 'vda[2]');
  monitor.onThreshold('vm1', 'vda[2]');
  await new Promise((r) => setImmediate(r));
  t.same(asked, [], "the base's event started no extension of the active drive");
  monitor.onThreshold('vm1', 'vda[3]');
  await new Promise((r) => setImmediate(r));
  t.same(asked, ['vm1'], 'the active layer named by its index still extends the drive');
  monitor.releaseLayer('vm1', 'vda[2]');
  await new Promise((r) => setTimeout(r, 10));
  asked.length = 0;
  monitor.onThreshold('vm1', 'vda[2]');
  await new Promise((r) => setImmediate(r));
  t.same(asked, ['vm1'], 'once released, the indexed event is the drive\'s again');
});
