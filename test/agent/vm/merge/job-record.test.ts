// A merge job survives the trip through the VM's domain XML metadata (what a
// restarted agent reads back), and libvirt's live chain is read as it shows
// it during and after an active commit.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { jobFromAttrs, jobToAttrs, publicJob, type MergeJob } from '../../../../agent/vm/merge/job.js';
import { layerName, liveDiskChain } from '../../../../agent/vm/merge/live-chain.js';
import { emptyMetadata, metadataBlock, metadataFromDomainXml } from '../../../../agent/vm/metadata.js';

const job = (over: Partial<MergeJob> = {}): MergeJob => ({
  id: randomUUID(), domainID: randomUUID(), imageID: randomUUID(), leafVolUUID: randomUUID(), baseVolUUID: randomUUID(), topVolUUID: randomUUID(),
  target: 'vda', active: true, bandwidth: 2, phase: 'commit', ready: false, progress: 42, startedAt: 1_700_000_000_000, ...over,
});

t.test('a job written into the domain XML metadata reads back the same, next to the devices', async (t) => {
  const j = job({ measuredBytes: 83_886_080, extendedToMiB: 512, phase: 'failed', endedAt: 1_700_000_100_000, error: { code: 52, message: 'pivot to x failed: "quoted" <tag> & more' } });
  const m = emptyMetadata();
  m.devices.push({ devtype: 'disk', name: 'vda', storage: { poolID: randomUUID(), domainID: j.domainID, imageID: j.imageID, volumeID: j.leafVolUUID } });
  m.jobs = [jobToAttrs(j), { type: 'snapshot', id: 'other' }];
  const xml = `<domain type='qemu'><name>x</name><metadata>${metadataBlock(m)}</metadata></domain>`;
  const back = metadataFromDomainXml(xml)!;
  t.same(back.devices, m.devices, 'devices unchanged');
  t.equal(back.jobs?.length, 2, 'both job records come back, the foreign one too');
  t.same(jobFromAttrs(back.jobs![0]!), j, 'the merge job is identical');
  t.equal(jobFromAttrs(back.jobs![1]!), undefined, 'a record of another kind is not a merge job');
});

t.test('the public state follows the phase: extend and commit are running, a caught-up commit ready, pivot pivoting', async (t) => {
  t.equal(publicJob(job({ phase: 'extend' })).state, 'running');
  t.equal(publicJob(job({ phase: 'commit' })).state, 'running');
  t.equal(publicJob(job({ phase: 'commit', ready: true })).state, 'ready');
  t.equal(publicJob(job({ phase: 'pivot' })).state, 'pivoting');
  t.equal(publicJob(job({ phase: 'cleanup' })).state, 'cleanup');
  const done = publicJob(job({ phase: 'done', removedVolUUID: 'r', progress: 100 }));
  t.same([done.state, done.removedVolUUID, done.progress], ['done', 'r', 100]);
});

t.test('a record with a missing field or an unknown phase is not guessed at', async (t) => {
  const a = jobToAttrs(job());
  t.equal(jobFromAttrs({ ...a, phase: 'whatever' }), undefined);
  const { target: _t, ...noTarget } = a;
  t.equal(jobFromAttrs(noTarget), undefined);
});

t.test("libvirt's live chain: layers with their indexes and the mirror's readiness", async (t) => {
  const xml = `<domain><devices>
    <disk type='block' device='disk'><driver name='qemu' type='qcow2'/>
      <source dev='/run/l/vg/top-uuid' index='3'/>
      <backingStore type='block' index='1'><format type='qcow2'/><source dev='/run/l/vg/base-uuid'/><backingStore/></backingStore>
      <mirror type='block' job='active-commit' ready='yes'><source dev='/run/l/vg/base-uuid'/></mirror>
      <target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><source file='/tmp/mbox'/><target dev='vdb'/></disk>
  </devices></domain>`;
  const c = liveDiskChain(xml, 'vda')!;
  t.same(c.layers.map((l) => [l.volUUID, l.index]), [['top-uuid', 0], ['base-uuid', 1]]);
  t.same(c.mirror, { job: 'active-commit', ready: true });
  t.equal(layerName('vda', c.layers[1]!), 'vda[1]');
  t.equal(layerName('vda', c.layers[0]!), 'vda');
  t.same(liveDiskChain(xml, 'vdb')!.layers.map((l) => l.volUUID), ['mbox']);
  t.equal(liveDiskChain(xml, 'vdc'), undefined, 'no such disk');
});
