// Volume.merge, the cold merge (VDSM's SDM.merge), on a real agent that is
// the SPM of a file and a block domain (loop PV, LVM): a three-volume chain
// base <- mid <- leaf of a stopped VM's disk, written with qemu-io before and
// after each snapshot. An internal merge (mid into base) and then a leaf merge
// (leaf into base) each leave the data as it was (`qemu-img compare` against
// a copy of the chain made first), `qemu-img check` clean, the merged volume
// ILLEGAL and deletable, and the chain one shorter; on block the base LV ends
// within one chunk above what `qemu-img measure` said. A Task.stop during the
// commit leaves the chain as it was. A merge into a template's volume (a thin
// clone's base) is refused with 219 before anything is touched.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { fileAndBlockPool } from './copy-fixture.js';
import { run } from '../../../agent/storage/exec.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { GiB, MiB, rejectsWith, taskLab, watchTask } from './tasks-fixture.js';

const CHUNK_MIB = 256;
const QEMU_MS = 120_000;

const qemuIo = (path: string, ...cmds: string[]) => run(['qemu-io', '-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), path], { timeoutMs: QEMU_MS });
const check = (path: string) => run(['qemu-img', 'check', '-f', 'qcow2', path], { timeoutMs: QEMU_MS, okCodes: [0, 2, 3] });
const compare = (a: string, b: string) => run(['qemu-img', 'compare', '-f', 'qcow2', '-F', 'qcow2', a, b], { timeoutMs: QEMU_MS, okCodes: [0, 1] });

interface Disk { c: HostvisorClient; sd: string; img: string; block: boolean }

/** Creates a volume (on block with room for what the test writes) and returns the prepared leaf's path. */
async function addVolume(d: Disk, vol: string, parent?: string): Promise<string> {
  await d.c.runSpmTask('Volume.create', {
    storagedomainID: d.sd, imageID: d.img, volumeID: vol, size: GiB, volFormat: 'COW', preallocate: 'SPARSE',
    ...(parent ? { srcVolUUID: parent } : {}), ...(d.block ? { initialSize: 320 * MiB } : {}),
  });
  return (await d.c.call('Image.prepare', { storagedomainID: d.sd, imageID: d.img })).path;
}

const info = (d: Disk, vol: string) => d.c.call('Volume.getInfo', { storagedomainID: d.sd, imageID: d.img, volumeID: vol });

/** base <- mid <- leaf, data written at each step; a collapsed copy of the chain in `ref`. */
async function buildChain(d: Disk, ref: string) {
  const [base, mid, leaf] = [randomUUID(), randomUUID(), randomUUID()];
  await qemuIo(await addVolume(d, base), 'write -P 0x5a 0 160M');
  await qemuIo(await addVolume(d, mid, base), 'write -P 0xc3 128M 64M', 'write -P 0x11 400M 64M'); // after snapshot 1: half over the base's data
  const leafPath = await addVolume(d, leaf, mid);
  await qemuIo(leafPath, 'write -P 0x77 100M 32M', 'write -P 0x22 700M 32M'); // after snapshot 2
  await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'qcow2', leafPath, ref], { timeoutMs: QEMU_MS });
  await d.c.call('Image.teardown', { storagedomainID: d.sd, imageID: d.img }); // the VM is stopped: nothing active
  return { base, mid, leaf };
}

/** What a qcow2 holding top over base needs (the agent's measure, asked here independently). */
async function measure(topPath: string, basePath: string, block: boolean): Promise<number> {
  const file = (p: string) => ({ driver: block ? 'host_device' : 'file', filename: p });
  const spec = { driver: 'qcow2', 'read-only': true, file: file(topPath), backing: { driver: 'qcow2', 'read-only': true, file: file(basePath), backing: null } };
  const r = await run(['qemu-img', 'measure', '--output', 'json', '-O', 'qcow2', `json:${JSON.stringify(spec)}`], { timeoutMs: QEMU_MS });
  return (JSON.parse(r.stdout) as { required: number }).required;
}

async function pathsOf(d: Disk): Promise<Map<string, string>> {
  const p = await d.c.call('Image.prepare', { storagedomainID: d.sd, imageID: d.img });
  return new Map(p.chain.map((x) => [x.volUUID as string, x.path as string]));
}

/** Runs Volume.merge; on block also checks the base LV against the measure. */
async function merge(t: Test, d: Disk, base: string, top: string) {
  let measured = 0;
  if (d.block) {
    const paths = await pathsOf(d);
    measured = await measure(paths.get(top)!, paths.get(base)!, true);
    await d.c.call('Image.teardown', { storagedomainID: d.sd, imageID: d.img });
  }
  const t0 = performance.now();
  const r = await d.c.runSpmTask('Volume.merge', { storagedomainID: d.sd, imageID: d.img, baseVolUUID: base, topVolUUID: top });
  const s = (performance.now() - t0) / 1000;
  t.equal(r.uuid, base, 'the task\'s result is the base');
  t.equal(r.legality, 'LEGAL', 'the base is LEGAL');
  if (d.block) {
    const size = r.apparentsize;
    t.ok(size >= measured && size - measured < CHUNK_MIB * MiB,
      `base LV ${size / MiB} MiB for a measure of ${(measured / MiB).toFixed(1)} MiB: within one ${CHUNK_MIB} MiB chunk above it`);
  }
  t.equal((await info(d, top)).legality, 'ILLEGAL', 'the merged volume is ILLEGAL, out of the chain');
  t.comment(`merge of ${top.slice(0, 8)} into ${base.slice(0, 8)}: ${s.toFixed(2)} s`);
}

async function verify(t: Test, d: Disk, ref: string, chain: string[]) {
  const paths = await pathsOf(d);
  try {
    t.same([...paths.keys()], chain, `the chain is ${chain.length} volume(s), base first`);
    const leafPath = paths.get(chain.at(-1)!)!;
    const cmp = await compare(ref, leafPath);
    t.equal(cmp.rc, 0, `the data read through the leaf is what it was before the merge: ${cmp.stdout.trim()}`);
    for (const [v, p] of paths) t.equal((await check(p)).rc, 0, `qemu-img check clean on ${v.slice(0, 8)}`);
  } finally {
    await d.c.call('Image.teardown', { storagedomainID: d.sd, imageID: d.img });
  }
}

t.test('Volume.merge of a stopped VM\'s chain: internal, then leaf; the data stays; a template is never merged into', async (t) => {
  const tl = await taskLab(t, 'coldmerge');
  if (!tl) return;
  tl.overrides['thinp.chunkMiB'] = CHUNK_MIB;
  const { c, fsd, bsd } = await fileAndBlockPool(t, tl, { logMatch: 'cold merge done' });
  const dir = await mkdtemp(join(tmpdir(), 'hv-coldmerge-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  for (const [name, sd, block] of [['file', fsd, false], ['block', bsd, true]] as const) {
    await t.test(`${name} domain`, async (t) => {
      const d: Disk = { c, sd, img: randomUUID(), block };
      const ref = join(dir, `${name}.qcow2`);
      const { base, mid, leaf } = await buildChain(d, ref);

      await t.test('internal merge: mid into base; the leaf is backed by the base', async (t) => {
        await merge(t, d, base, mid);
        t.equal((await info(d, leaf)).parent, base, 'the leaf\'s parent is the base (metadata)');
        await c.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: d.img, volumeID: mid });
        t.same((await c.call('StorageDomain.getVolumes', { storagedomainID: sd, imageID: d.img })).volumes.sort(), [base, leaf].sort(), 'the merged volume is deleted');
        const paths = await pathsOf(d);
        const hdr = await run(['qemu-img', 'info', '--output', 'json', '-U', paths.get(leaf)!], { timeoutMs: QEMU_MS });
        t.equal((JSON.parse(hdr.stdout) as { 'backing-filename': string })['backing-filename'], base, 'the leaf\'s qcow2 header names the base');
        await c.call('Image.teardown', { storagedomainID: sd, imageID: d.img });
        await verify(t, d, ref, [base, leaf]);
      });

      await t.test('leaf merge: the leaf into the base; the base is the leaf', async (t) => {
        await merge(t, d, base, leaf);
        await c.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: d.img, volumeID: leaf });
        t.equal((await info(d, base)).voltype, 'LEAF', 'the base is the image\'s leaf');
        await verify(t, d, ref, [base]);
      });
    });
  }

  await t.test('a Task.stop during the commit leaves the chain as it was', async (t) => {
    const d: Disk = { c, sd: fsd, img: randomUUID(), block: false };
    const [base, top] = [randomUUID(), randomUUID()];
    await qemuIo(await addVolume(d, base), 'write -P 0x01 0 64M');
    const topPath = await addVolume(d, top, base);
    await qemuIo(topPath, 'write -P 0x02 0 900M');
    const ref = join(dir, 'stop.qcow2');
    await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'qcow2', topPath, ref], { timeoutMs: QEMU_MS });
    await c.call('Image.teardown', { storagedomainID: fsd, imageID: d.img });
    const { taskID } = await c.call('Volume.merge', { storagedomainID: fsd, imageID: d.img, baseVolUUID: base, topVolUUID: top });
    let stopped = false;
    const { last } = await watchTask(c, taskID, (s) => {
      if (!stopped && (s.progress ?? 0) > 0 && s.taskState === 'running') { stopped = true; void c.call('Task.stop', { taskID }); }
      return s.taskState === 'finished';
    }, 120_000);
    if (!stopped || last.code === 0) {
      t.comment(`the commit ended before the stop reached it (${last.message}); nothing to prove here on this machine`);
      await c.call('Task.clear', { taskID });
      return;
    }
    t.same({ result: last.taskResult, code: last.code }, { result: 'cleanSuccess', code: 411 }, `rolled back: ${last.message}`);
    const ti = await c.call('Task.getInfo', { taskID });
    t.match(ti.recoveryLog.join(' '), /had not ended/, `recovery: ${ti.recoveryLog.join('; ')}`);
    await c.call('Task.clear', { taskID });
    t.same([(await info(d, base)).legality, (await info(d, top)).legality], ['LEGAL', 'LEGAL'], 'base and top are LEGAL');
    await verify(t, d, ref, [base, top]);
  });

  await t.test('a merge into a template volume (a thin clone\'s base) is refused with 219, nothing touched', async (t) => {
    const d: Disk = { c, sd: fsd, img: randomUUID(), block: false };
    const src = randomUUID();
    await qemuIo(await addVolume(d, src), 'write -P 0x33 0 16M');
    await c.call('Image.teardown', { storagedomainID: fsd, imageID: d.img });
    const [timg, tvol, cimg, cvol] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await c.runSpmTask('Volume.copy', { storagedomainID: fsd, imageID: d.img, volumeID: src, dstImgUUID: timg, dstVolUUID: tvol, volType: 'SHARED', volFormat: 'COW', preallocate: 'SPARSE' });
    await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: cimg, volumeID: cvol, size: GiB, volFormat: 'COW', preallocate: 'SPARSE', srcImgUUID: timg, srcVolUUID: tvol });
    const tpath = join(tl.fileRoot, fsd, 'images', timg, tvol);
    const sum = async () => (await run(['sha256sum', tpath], { timeoutMs: QEMU_MS })).stdout.split(' ')[0];
    const before = await sum();
    const err = await rejectsWith(t, c.call('Volume.merge', { storagedomainID: fsd, imageID: cimg, baseVolUUID: tvol, topVolUUID: cvol }), 219, 'merging a thin clone into its template');
    t.match(err?.message ?? '', /SHARED \(template\)/, 'the error says the base is a template volume');
    t.same((await c.call('Host.getAllTasksStatuses', {})).allTasksStatus, {}, 'no task was made');
    t.equal(await sum(), before, 'the template volume is unchanged (sha256)');
    const ci = await c.call('Volume.getInfo', { storagedomainID: fsd, imageID: cimg, volumeID: cvol });
    t.same([ci.legality, ci.parent], ['LEGAL', tvol], 'the clone is as it was');
  });
});
