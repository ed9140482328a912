import t from 'tap';
import { improbableAllocation, maxSizeBytes, needsExtension, nextSizeMiB, thresholdFor, watermarkBytes, MiB } from '../../../../agent/storage/thinp/sizing.js';

const vdsm = { chunkMiB: 2560, percent: 20, maxFactor: 1.1 };

t.test("VDSM's numbers: a 2560 MiB chunk at 20 % keeps 2048 MiB free", async (t) => {
  t.equal(watermarkBytes(vdsm), 2048 * MiB);
  t.equal(thresholdFor(4096 * MiB, vdsm), 2048 * MiB);
  t.equal(thresholdFor(1024 * MiB, vdsm), 1, 'never below 1 byte');
});

t.test('the next size grows by a chunk and stops at 1.1 x capacity', async (t) => {
  const cap = 10 * 1024 * MiB;
  t.equal(nextSizeMiB(2560 * MiB, cap, vdsm), 5120);
  t.equal(nextSizeMiB(10 * 1024 * MiB, cap, vdsm), Math.ceil(maxSizeBytes(cap, vdsm) / MiB));
  t.equal(nextSizeMiB(maxSizeBytes(cap, vdsm), cap, vdsm), undefined, 'at the maximum: no more');
});

t.test('extension is due when free room drops under the watermark; absurd allocations are flagged', async (t) => {
  t.ok(needsExtension(2100 * MiB, 4096 * MiB, vdsm));
  t.notOk(needsExtension(1000 * MiB, 4096 * MiB, vdsm));
  t.ok(improbableAllocation(100 * 1024 * MiB, 4096 * MiB, 10 * 1024 * MiB, vdsm));
  t.notOk(improbableAllocation(4000 * MiB, 4096 * MiB, 10 * 1024 * MiB, vdsm));
});
