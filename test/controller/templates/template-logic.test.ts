// The pure parts of templates and clones (job progress over several tasks, what a clone is made
// of), and the store's view of a template's dependents (SQLite): the disks of thin clones, with
// the VMs that name them, and neither full clones nor other templates' clones.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobProgress } from '../../../controller/templates/progress.js';
import { cloneDisks, cloneSpec } from '../../../controller/templates/clone-plan.js';
import type { Template } from '../../../controller/model/templates.js';
import { Store } from '../../../controller/store/store.js';
import { TemplateInUseError } from '../../../controller/templates/errors.js';

const ID = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function template(): Template {
  const vol = (name: string, n: number) => ({ name, storageDomainId: ID(1), imageId: ID(10 + n), volumeId: ID(20 + n), sizeBytes: n * 2 ** 30,
    source: { diskId: ID(30 + n), imageId: ID(40 + n), volumeId: ID(50 + n) } });
  return {
    id: ID(2), name: 'tpl', clusterId: ID(3), sourceVmId: ID(4), status: 'ready', createdAt: 0, updatedAt: 0,
    spec: { name: 'src', memoryMiB: 256, vcpus: 2, serialLog: '/run/src.serial', disks: [{ name: 'vda', diskId: ID(31) }, { name: 'vdb', diskId: ID(32), readonly: false }] },
    volumes: [vol('vda', 1), vol('vdb', 2)],
  } as Template;
}

t.test('jobProgress: each task an equal share between the margins, clamped', async (t) => {
  t.equal(jobProgress(0, 2, 0), 5, 'nothing done: the start margin');
  t.equal(jobProgress(0, 2, 50), 28, 'half of the first of two tasks: a quarter of 90 after 5');
  t.equal(jobProgress(1, 2, 0), 50, 'the first of two done');
  t.equal(jobProgress(1, 2, 100), 95, 'the last at 100: the end margin');
  t.equal(jobProgress(2, 2, 0), 95, 'all done');
  t.equal(jobProgress(5, 2, 300), 95, 'never past the end margin');
  t.equal(jobProgress(-1, 2, -5), 5, 'never before the start margin');
  t.equal(jobProgress(0, 0, 0), 95, 'no tasks: the end margin');
  t.equal(jobProgress(0, 1, 40, { from: 0, to: 100 }), 40, 'margins of one\'s own');
  let last = -1;
  for (let i = 0; i < 3; i++) for (let p = 0; p <= 100; p += 10) { const v = jobProgress(i, 3, p); t.ok(v >= last, `monotonic (${i}, ${p})`); last = v; }
});

t.test('cloneDisks / cloneSpec: one disk per template volume, the spec naming them by drive', async (t) => {
  const tpl = template();
  const thin = cloneDisks(tpl, 'web1', 'thin');
  t.same(thin.map((d) => [d.name, d.drive, d.storageDomainId, d.sizeBytes, d.templateId]),
    [['web1-vda', 'vda', ID(1), 2 ** 30, ID(2)], ['web1-vdb', 'vdb', ID(1), 2 * 2 ** 30, ID(2)]], 'thin: on the template\'s domain, depending on it');
  t.ok(cloneDisks(tpl, 'web1', 'full').every((d) => d.templateId === undefined), 'full: no dependency');
  t.ok(cloneDisks(tpl, 'x'.repeat(64), 'thin').every((d) => d.name.length <= 64), 'names stay within 64 characters');
  const spec = cloneSpec(tpl, new Map([['vda', ID(91)], ['vdb', ID(92)]]));
  t.same(spec.disks, [{ name: 'vda', diskId: ID(91) }, { name: 'vdb', diskId: ID(92), readonly: false }], 'each drive names its new disk, its other fields kept');
  t.same([spec.name, spec.serialLog], [undefined, undefined], 'the source VM\'s name and serial log are not carried over');
  const over = cloneSpec(tpl, new Map([['vda', ID(91)], ['vdb', ID(92)]]), { memoryMiB: 512, serialLog: '/run/c.serial' });
  t.same([over.memoryMiB, over.vcpus, over.serialLog, over.disks?.length], [512, 2, '/run/c.serial', 2], 'the request\'s overrides win, the disks stay the clone\'s');
  t.same([spec.memoryMiB, spec.vcpus], [256, 2], 'the rest of the spec is the template\'s');
  t.throws(() => cloneSpec(tpl, new Map([['vda', ID(91)]])), /no clone disk for drive vdb/, 'a drive without a disk is refused');
});

t.test('store: a template\'s dependents are its thin clones\' disks, with their VMs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-tpl-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = await Store.open({ engine: 'sqlite', path: join(dir, 'c.db') });
  t.teardown(() => store.close());
  const cluster = await store.clusters.get('default');
  const sd = await store.storageDomains.create({ clusterId: cluster.id, name: 'data', spec: { type: 'file', root: '/x' } });
  const base = template();
  const tpl = await store.templates.create({ name: 'tpl', clusterId: cluster.id, sourceVmId: ID(4), spec: base.spec, volumes: base.volumes });
  const other = await store.templates.create({ name: 'tpl2', clusterId: cluster.id, sourceVmId: ID(4), spec: base.spec, volumes: base.volumes });
  t.same(await store.templates.dependents(tpl.id), [], 'no clones: no dependents');
  await t.rejects(store.templates.create({ name: 'tpl', clusterId: cluster.id, sourceVmId: ID(4), spec: base.spec, volumes: [] }), { code: 5002 }, 'a name is taken once');

  const a = await store.disks.create({ name: 'a-vda', storageDomainId: sd.id, sizeBytes: 1, provisioning: 'thin', templateId: tpl.id });
  const b = await store.disks.create({ name: 'b-vda', storageDomainId: sd.id, sizeBytes: 1, provisioning: 'thin', templateId: tpl.id });
  await store.disks.create({ name: 'full-vda', storageDomainId: sd.id, sizeBytes: 1, provisioning: 'thin' });
  await store.disks.create({ name: 'o-vda', storageDomainId: sd.id, sizeBytes: 1, provisioning: 'thin', templateId: other.id });
  const vm = await store.vms.create({ name: 'clone-a', clusterId: cluster.id, spec: { memoryMiB: 64, disks: [{ name: 'vda', diskId: a.id }] },
    pinnedHostId: null, priority: 0, memoryReservationMiB: 64, cpuReservation: 1 });
  const deps = await store.templates.dependents(tpl.id);
  t.same([...deps].sort((x, y) => x.diskName.localeCompare(y.diskName)), [{ diskId: a.id, diskName: 'a-vda', vmId: vm.id, vmName: 'clone-a' }, { diskId: b.id, diskName: 'b-vda', vmId: null, vmName: null }],
    'its two thin clones\' disks, one named by a VM; not the full clone, not the other template\'s');
  const e = new TemplateInUseError(tpl.name, deps);
  t.same([e.code, e.details['vms']], [5002, [{ id: vm.id, name: 'clone-a' }]], 'the 409 names the VM');
  t.ok(/clone-a/.test(e.message) && /disk b-vda/.test(e.message), `and the disk no VM names: ${e.message}`);
  t.equal(await store.templates.transition(tpl.id, ['ready'], 'deleting'), false, 'a pending template is not moved to deleting');
  await store.templates.setStatus(tpl.id, 'ready');
  t.equal(await store.templates.transition(tpl.id, ['ready'], 'deleting'), true, 'a ready one is');
  t.equal((await store.templates.get('tpl')).status, 'deleting', 'found by name too');
  await store.templates.delete(tpl.id);
  t.equal(await store.templates.find(tpl.id), undefined, 'deleted');
});
