// The clean-up decision of a failed template or clone job (cleanupPlan): what it deletes, in
// which order, and what it refuses to delete.
import t from 'tap';
import { cleanupPlan, type MadeVolume } from '../../../controller/templates/cleanup-plan.js';

const ID = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const vol = (sd: number, img: number, v: number): MadeVolume => ({ storageDomainId: ID(sd), imageId: ID(img), volumeId: ID(v) });

t.test('cleanupPlan deletes every image the job recorded, the last made first', async (t) => {
  const made = [vol(1, 10, 20), vol(1, 11, 21), vol(2, 12, 22)];
  const plan = cleanupPlan(made, [vol(1, 40, 50)]);
  t.same(plan.remove, [made[2], made[1], made[0]], 'all three, in reverse order');
  t.same(plan.keep, [], 'nothing kept');
});

t.test('cleanupPlan deletes nothing when the job recorded nothing', async (t) => {
  t.same(cleanupPlan([], [vol(1, 40, 50)]), { remove: [], keep: [] });
});

t.test('cleanupPlan never deletes an image the job read from (a source disk, a template volume), and says why', async (t) => {
  const source = vol(1, 40, 50);
  const plan = cleanupPlan([vol(1, 10, 20), source], [{ storageDomainId: source.storageDomainId, imageId: source.imageId }]);
  t.same(plan.remove, [vol(1, 10, 20)], 'only the image the job made');
  t.equal(plan.keep.length, 1, 'the source is kept');
  t.same(plan.keep[0]!.volume, source, 'naming the source volume');
  t.match(plan.keep[0]!.reason, /read from/, 'with the reason');
});

t.test('cleanupPlan matches images by domain and image: the same image id on another domain is the job\'s', async (t) => {
  const plan = cleanupPlan([vol(2, 40, 20)], [{ storageDomainId: ID(1), imageId: ID(40) }]);
  t.same(plan.remove, [vol(2, 40, 20)], 'deleted: the protected image is on domain 1');
});

t.test('cleanupPlan deletes an image once even if recorded twice (a resumed run recorded it again)', async (t) => {
  const plan = cleanupPlan([vol(1, 10, 20), vol(1, 11, 21), vol(1, 10, 20)], []);
  t.same(plan.remove, [vol(1, 10, 20), vol(1, 11, 21)], 'two deletions');
});
