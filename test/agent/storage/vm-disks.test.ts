// VM.create with disks given by storage ids prepares all of them or none:
// when one disk cannot be prepared (its volume does not exist, or
// after_disk_prepare refuses it), or before_vm_start fails after every disk
// was prepared, the call fails and every image it prepared is torn down again
// (no loop device on its LV, no activation link). Through an agent in this
// process (the real libvirtd), a block domain on a loop PV with loop
// activation, a real sanlock daemon for the SPM that makes the volumes, and
// real hook scripts.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient, scratchDir, startAgent } from '../harness.js';
import { addHook } from '../hooks/hook-fixtures.js';
import type { HostvisorClient, RpcCallError } from '../../../api/client/client.js';
import type { ParamsOf } from '../../../api/schema.js';
import { exists, GiB, loopsBacking, taskLab } from './tasks-fixture.js';

type VmSpec = NonNullable<ParamsOf<'VM.create'>['spec']>;
type Disks = NonNullable<VmSpec['disks']>;

t.test('VM.create whose disks cannot all be prepared fails and leaves none of its images prepared', async (t) => {
  const tl = await taskLab(t, 'vm-disks');
  if (!tl) return;
  const pv = await tl.lab.makePv(4);
  const hooks = scratchDir('hv-vmdisks-hooks-');
  // Custom properties steer the hooks: failprepare=<imageID> refuses that image's drive, failstart=yes refuses the start.
  addHook(hooks, 'after_disk_prepare', '50_refuse', '[ -n "$failprepare" ] && grep -q "$failprepare" "$_hook_json" && { echo "refused $failprepare" >&2; exit 2; }; exit 0');
  addHook(hooks, 'before_vm_start', '50_refuse', '[ "$failstart" = yes ] && { echo "start refused" >&2; exit 2; }; exit 0');
  const { config, stop } = await startAgent({ ...tl.overrides, 'hooks.dir': hooks });
  t.teardown(stop);
  const c: HostvisorClient = await connectClient(config);
  const [sd, sp] = [randomUUID(), randomUUID()];
  t.teardown(async () => {
    await c.call('StoragePool.disconnect', { storagepoolID: sp }).catch(() => {});
    await c.close().catch(() => {});
  });
  const spec = { type: 'block' as const, devices: [pv] };
  await c.call('StorageDomain.create', { storagedomainID: sd, spec });
  await c.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: sd, domains: { [sd]: spec } });
  await c.call('StoragePool.spmStart', { storagepoolID: sp });
  const images = [1, 2].map(() => ({ img: randomUUID(), vol: randomUUID() }));
  for (const { img, vol } of images) {
    await c.runSpmTask('Volume.create', { storagedomainID: sd, imageID: img, volumeID: vol, size: GiB, volFormat: 'COW', preallocate: 'SPARSE' }, { timeoutMs: 60_000 });
  }
  const [a, b] = images as [{ img: string; vol: string }, { img: string; vol: string }];
  const s = tl.lab.settings();
  /** What this host has of the volume: a loop device on its LV file, an activation link. */
  const held = async (vol: string): Promise<string[]> => [
    ...(await loopsBacking(join(s.loopDataDir, sd, vol))),
    ...((await exists(join(s.loopLinkDir, sd, vol))) ? [`link ${vol}`] : []),
  ];
  const disk = (name: string, img: string, vol: string) => ({ name, storage: { poolID: sp, domainID: sd, imageID: img, volumeID: vol } });
  const vmSpec = (disks: Disks, customProperties: Record<string, string> = {}): VmSpec => ({
    name: `hv-vmdisks-${randomUUID().slice(0, 8)}`, memoryMiB: 128, vcpus: 1, domainType: 'qemu', kernel: '/nonexistent/vmlinux', disks, customProperties,
  });
  const create = async (disks: Disks, customProperties?: Record<string, string>): Promise<RpcCallError | undefined> => {
    const vmID = randomUUID();
    const err = await c.call('VM.create', { vmID, spec: vmSpec(disks, customProperties) }).then(() => undefined, (e: unknown) => e as RpcCallError);
    if (!err) await c.call('VM.destroy', { vmID }).catch(() => {});
    t.notOk((await c.call('Host.getVMList', {})).vmList.some((v) => v.vmId === vmID), 'no VM is left registered');
    return err;
  };
  /** Nothing held for any of the volumes, right away and still a moment later (a prepare still running would show then). */
  const nothingHeld = async (what: string) => {
    const now = [...(await held(a.vol)), ...(await held(b.vol))];
    await sleep(1_500);
    const later = [...(await held(a.vol)), ...(await held(b.vol))];
    t.same({ now, later }, { now: [], later: [] }, `${what}: no image left prepared`);
  };

  // The check sees a prepared image: Image.prepare attaches the LV, Image.teardown detaches it.
  await c.call('Image.prepare', { storagedomainID: sd, imageID: a.img, volumeID: a.vol });
  t.ok((await held(a.vol)).length === 2, `a prepared image shows: ${JSON.stringify(await held(a.vol))}`);
  await c.call('Image.teardown', { storagedomainID: sd, imageID: a.img });
  t.same(await held(a.vol), [], 'and is gone after Image.teardown');

  let err = await create([disk('vda', a.img, a.vol), disk('vdb', b.img, randomUUID())]);
  t.equal(err?.code, 201, `the second disk names no volume: 201 (${err?.message})`);
  await nothingHeld('a missing volume on the second disk');

  err = await create([disk('vda', a.img, a.vol), disk('vdb', b.img, b.vol)], { failprepare: b.img });
  t.equal(err?.code, 78, `after_disk_prepare refuses the second disk: 78 (${err?.message})`);
  await nothingHeld('the second disk refused by after_disk_prepare');

  err = await create([disk('vda', a.img, a.vol), disk('vdb', b.img, b.vol)], { failstart: 'yes' });
  t.equal(err?.code, 78, `before_vm_start fails after both disks were prepared: 78 (${err?.message})`);
  await nothingHeld('before_vm_start failed');
});
