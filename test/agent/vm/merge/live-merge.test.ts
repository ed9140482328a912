// Live merge (VM.merge) on real storage with a real guest: two lab hosts, A
// the SPM, B runs the VM, so every extension of the base goes through the
// mailbox to A. Chains are built directly with Volume.create srcVolUUID (the
// "before" data written into the lower volumes on the host with qemu-io, a
// byte pattern per MiB block); the guest writes 1 MiB random blocks into its
// leaf all along (before, during and after the merge), then reads every block
// back: each must hold what was written there. Issue 13's must-show 2 (active
// merge while the guest writes), 3 (agent kill -9 mid active merge), and an
// internal-layer merge on a 3-volume chain; a merge into a thin clone's template refused.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { Connection, blockJobInfo, enums, toNumber } from '../../../../agent/libvirt/index.js';
import { liveDiskChain } from '../../../../agent/vm/merge/live-chain.js';
import { StatusWatch, tinyGuest } from '../../harness.js';
import type { HostvisorClient } from '../../../../api/client/client.js';
import { sanlockUnavailable } from '../../storage/sanlock-daemon.js';
import { MiB, THINP_LAB_SETTINGS, createVolume, logRecords, twoHostPool, waitLog } from '../../storage/two-host-pool.js';
import { badBlocks, guestBlocks, guestCmdline, mailbox, patternMd5, stopAndReadBack, waitJob, waitWrites } from './merge-lab.js';

const echo = !!process.env['HV_TEST_LOG'];
/**
 * A small chunk, so must-show 2's base needs more than the measure and its headroom: the guest's writes since the
 * snapshot are unflushed (QEMU writes the active layer's qcow2 metadata at the guest's next flush, and the writer
 * never flushes), so the measure does not see them and the base must grow while the commit runs.
 */
const CHUNK_MIB = 64;
const CHUNK = CHUNK_MIB * MiB;
const PERCENT = 50;
const HEADROOM = CHUNK * (100 - PERCENT) / 100;
const why = await sanlockUnavailable();

t.test('live merge on a thin block domain, run by a host that is not the SPM', { skip: why ?? false }, async (t) => {
  const pool = await twoHostPool({ name: 'merge', pvGiB: 8, echo, settings: { 'merge.pollMs': 500, 'thinp.chunkMiB': CHUNK_MIB, 'thinp.percent': PERCENT } });
  t.teardown(() => pool.close());
  const { sd, sp } = pool;
  const cA = pool.clients[0]!;
  const cB = (): HostvisorClient => pool.clients[1]!;
  await cA.call('StoragePool.spmStart', { storagepoolID: sp });
  const conn = await Connection.open(pool.hosts[1]!.libvirtUri, { callTimeoutMs: 30_000 });
  t.teardown(() => conn.close());
  const pauses = new Map<string, number>();
  const sub = await conn.subscribe('lifecycle', (ev) => {
    if (ev.event === enums.DomainEventType.SUSPENDED) pauses.set(ev.domain.uuid, (pauses.get(ev.domain.uuid) ?? 0) + 1);
  });
  t.teardown(() => sub.close());

  const volume = (img: string, vol: string, parent?: string, initialMiB = 256) => createVolume(cA, {
    storagedomainID: sd, imageID: img, volumeID: vol, size: 1024 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: initialMiB * MiB,
    ...(parent ? { srcVolUUID: parent } : {}),
  });
  /** qemu-io on B: a byte pattern into MiB blocks [from, from + n) of the image's chain up to `leaf`. */
  const hostWrite = async (img: string, leaf: string, byte: number, from: number, n: number): Promise<void> => {
    const p = await cB().call('Image.prepare', { storagedomainID: sd, imageID: img, volumeID: leaf });
    const r = await pool.agents[1]!.host.exec(['qemu-io', '-f', 'qcow2', '-c', `write -P ${byte} ${from}M ${n}M`, p.path], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`qemu-io failed: ${r.stdout}${r.stderr}`);
  };
  const info = (img: string, vol: string) => cB().call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: vol });
  const liveChain = async (vmID: string) => liveDiskChain(await (await conn.lookupByUUID(vmID)).xml(), 'vda')!.layers.map((l) => l.volUUID);
  const metadataVolume = async (vmID: string) => ((await cB().call('Host.getVMFullList', { vmList: [vmID] })).vmList[0]?.devices
    .find((d) => d.name === 'vda')?.storage as { volumeID?: string } | undefined)?.volumeID;
  const startGuest = async (name: string, img: string, leaf: string, o: { start: number; pauseSec: number }) => {
    const mb = mailbox(name);
    const g = tinyGuest(name, { cmdline: guestCmdline({ ...o, max: 600 }), disks: [pool.disk(img, leaf), mb.disk] });
    const rec = pool.trackVm(cB(), g.vmID);
    const watch = new StatusWatch(cB());
    await cB().call('VM.create', { vmID: g.vmID, spec: g.spec });
    await watch.wait(g.vmID, 'Up', 90_000);
    return { ...g, mb, rec };
  };
  /** After the VM is gone: qemu-img check of a volume, prepared on B. */
  const check = async (img: string, vol: string): Promise<string> => {
    const p = await cB().call('Image.prepare', { storagedomainID: sd, imageID: img, volumeID: vol });
    const r = await pool.agents[1]!.host.exec(['qemu-img', 'check', p.path], { timeoutMs: 120_000 });
    return `${r.stdout}${r.stderr}`;
  };
  /** After the VM is gone: `qemu-img measure` of a volume alone (the size a qcow2 holding its data needs). */
  const measureAlone = async (img: string, vol: string): Promise<number> => {
    const p = await cB().call('Image.prepare', { storagedomainID: sd, imageID: img, volumeID: vol });
    const r = await pool.agents[1]!.host.exec(['qemu-img', 'measure', '--output', 'json', '-O', 'qcow2', '-f', 'qcow2', p.path], { timeoutMs: 120_000 });
    return (JSON.parse(r.stdout) as { required: number }).required;
  };
  const jobEvents: Array<{ vmId: string; states: string[] }> = [];
  const onJobs = (c: HostvisorClient) => c.onEvent((method, params) => {
    const m = method.match(/^\|virt\|VM_job_status\|(.+)$/);
    if (m) jobEvents.push({ vmId: m[1]!, states: ((params[m[1]!] as { jobs: Array<{ state: string }> }).jobs).map((j) => j.state) });
  });
  onJobs(cB());
  /** base (its first `before` MiB written on the host) <- leaf, a guest on the leaf that has written `writes` blocks after them. */
  const baseAndLeaf = async (name: string, o: { before: number; pauseSec: number; writes: number; baseMiB?: number }) => {
    const [img, base, leaf, jobUUID] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await volume(img, base, undefined, o.baseMiB);
    await hostWrite(img, base, 0x11, 0, o.before);
    await volume(img, leaf, base);
    const g = await startGuest(name, img, leaf, { start: o.before, pauseSec: o.pauseSec });
    await waitWrites(g.serial, o.writes, 180_000);
    return { img, base, leaf, jobUUID, g };
  };

  await t.test('must-show 2: active-layer merge while the guest writes, its writes unflushed: the base grows during the commit, ends within one chunk of what its data needs, one volume, every block intact, qemu-img check clean', async (t) => {
    // The base LV just holds its 32 MiB: its headroom comes from the merge's own extension.
    const { img, base, leaf, jobUUID, g } = await baseAndLeaf('hv-it-merge-active', { before: 32, pauseSec: 0.1, writes: 48, baseMiB: 36 });
    const logFrom = pool.agents[1]!.logs.length;
    await cB().call('VM.merge', { vmID: g.vmID, drive: { domainID: sd, imageID: img, volumeID: leaf }, baseVolUUID: base, topVolUUID: leaf, jobUUID });
    const atMerge = guestBlocks(g.serial).written.size;
    const { job, states } = await waitJob(cB, g.vmID, jobUUID, 300_000);
    t.equal(job.state, 'done', `the merge is done (states ${states.join(' -> ')})${job.error ? `: ${job.error.message}` : ''}`);
    t.equal(job.removedVolUUID, leaf, 'the removed volume is the top');
    const atDone = guestBlocks(g.serial).written.size;
    const b = await stopAndReadBack(g, 4);
    t.comment(`blocks: 32 before the chain (host), ${atMerge} written by the guest before VM.merge, ${atDone - atMerge} during it, ${(b.end ?? 0) - 32 - atDone} after`);
    t.same(badBlocks(b, [{ from: 0, to: 32, md5: patternMd5(0x11) }]), [], `all ${b.end} blocks read back by the guest hold what was written (md5)`);
    t.ok((b.end ?? 0) - 32 > atDone, 'the guest wrote blocks after the merge too');

    t.same(await liveChain(g.vmID), [base], "libvirt's chain of vda is the base alone");
    t.equal(await metadataVolume(g.vmID), base, "the VM's metadata names the base as vda's volume");
    t.equal((await info(img, leaf)).legality, 'ILLEGAL', 'the removed top is ILLEGAL');
    const measured = job.measuredBytes ?? NaN;
    const grown = logRecords(pool.agents[1]!.logs, 'merge base extended during the commit', logFrom).filter((r) => r['job'] === jobUUID);
    const retried = logRecords(pool.agents[1]!.logs, 'block commit started', logFrom).filter((r) => r['job'] === jobUUID).length - 1;
    const served = logRecords(pool.agents[0]!.logs, 'extend request served').filter((r) => r['volumeId'] === base);
    t.ok(served.length >= 1, `the base was extended by A, the SPM, through the mailbox (${served.length} request(s))`);
    t.equal(pauses.get(g.vmID) ?? 0, 0, 'the guest never paused');
    t.ok(jobEvents.some((e) => e.vmId === g.vmID && e.states.includes('done')), 'VM_job_status events told the outcome');

    await cA.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: img, volumeID: leaf }, { timeoutMs: 120_000 });
    t.same((await cA.call('StorageDomain.getVolumes', { storagedomainID: sd, imageID: img })).volumes, [base], 'after Volume.delete (SPM A) the image is the base alone');
    await cB().call('VM.destroy', { vmID: g.vmID });
    g.rec.destroyed = true;
    // What the base's data needs, read with the VM gone (all of QEMU's metadata flushed): a fresh qcow2 holding it.
    const baseAfter = await info(img, base);
    const need = await measureAlone(img, base);
    t.comment(`measure before the commit ${(measured / MiB).toFixed(1)} MiB (+ ${HEADROOM / MiB} MiB headroom); the base's data needs ${(need / MiB).toFixed(1)} MiB; `
      + `base LV ${baseAfter.apparentsize / MiB} MiB (extended to ${job.extendedToMiB} MiB); ${grown.length} extension(s) during the commit, ${retried} commit retr${retried === 1 ? 'y' : 'ies'}; chunk ${CHUNK_MIB} MiB`);
    t.ok(need > measured + HEADROOM, 'the measure missed the guest\'s unflushed writes: the base needed more than the measure and its headroom');
    t.ok(grown.length >= 1, 'so the base was extended while the commit ran');
    // The merge's own size for the base (it ends there); the thin monitor then keeps the new leaf's usual watermark free
    // (an extension it logs as "drive extended"). The need was read later: the guest's writes after the merge come off.
    const atEnd = (job.extendedToMiB ?? NaN) * MiB;
    const needAtEnd = need - ((b.end ?? 0) - 32 - atDone) * MiB;
    const extent = THINP_LAB_SETTINGS['storage.extentSizeMiB'] * MiB;
    t.ok(served.some((r) => atEnd - Number(r['sizeMiB']) * MiB >= 0 && atEnd - Number(r['sizeMiB']) * MiB < extent), `the SPM served an extension of the base to that size (served: ${served.map((r) => r['sizeMiB']).join(', ')} MiB)`);
    t.ok(atEnd >= needAtEnd && atEnd - needAtEnd <= CHUNK, `the merge left the base (${atEnd / MiB} MiB) within one chunk above what its data needed (${((atEnd - needAtEnd) / MiB).toFixed(1)} MiB over; LV now ${baseAfter.apparentsize / MiB} MiB)`);
    t.match(await check(img, base), /No errors were found/, 'qemu-img check of the base is clean');
    await cB().call('Image.teardown', { storagedomainID: sd, imageID: img });
  });

  await t.test('internal-layer merge on a 3-volume chain: the leaf gets the base as parent, the middle volume goes, data intact', async (t) => {
    const [img, base, mid, leaf, jobUUID] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await volume(img, base);
    await hostWrite(img, base, 0x11, 0, 16);
    await volume(img, mid, base);
    await hostWrite(img, mid, 0x22, 16, 16);
    await volume(img, leaf, mid);
    const g = await startGuest('hv-it-merge-internal', img, leaf, { start: 32, pauseSec: 0.5 });
    await waitWrites(g.serial, 8, 180_000);
    await cB().call('VM.merge', { vmID: g.vmID, drive: { domainID: sd, imageID: img, volumeID: leaf }, baseVolUUID: base, topVolUUID: mid, jobUUID });
    const { job, states } = await waitJob(cB, g.vmID, jobUUID, 300_000);
    t.equal(job.state, 'done', `the merge is done (states ${states.join(' -> ')})${job.error ? `: ${job.error.message}` : ''}`);
    t.same(await liveChain(g.vmID), [leaf, base], "libvirt's chain is leaf <- base");
    t.equal((await info(img, leaf)).parent, base, "the leaf's metadata names the base as parent");
    t.equal((await info(img, mid)).legality, 'ILLEGAL', 'the middle volume is ILLEGAL');
    t.equal(await metadataVolume(g.vmID), leaf, "the VM's drive is still the leaf");
    const b = await stopAndReadBack(g, 3);
    t.same(badBlocks(b, [{ from: 0, to: 16, md5: patternMd5(0x11) }, { from: 16, to: 32, md5: patternMd5(0x22) }]), [],
      `all ${b.end} blocks (16 of the base, 16 of the merged middle volume, ${(b.end ?? 0) - 32} of the guest) hold what was written`);
    await cA.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: img, volumeID: mid }, { timeoutMs: 120_000 });
    t.same((await cA.call('StorageDomain.getVolumes', { storagedomainID: sd, imageID: img })).volumes, [base, leaf].sort(), 'after Volume.delete of the middle volume: base and leaf');
    await cB().call('VM.destroy', { vmID: g.vmID });
    g.rec.destroyed = true;
    t.match(await check(img, leaf), /No errors were found/, 'qemu-img check of the leaf is clean');
    t.match(await check(img, base), /No errors were found/, 'qemu-img check of the base is clean');
    await cB().call('Image.teardown', { storagedomainID: sd, imageID: img });
  });

  await t.test('a merge into a template volume is refused with 219 before anything is touched (a thin clone\'s leaf into its template)', async (t) => {
    const [src, srcVol, timg, tvol, cimg, cvol, jobUUID] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await volume(src, srcVol);
    await cA.runSpmTask('Volume.copy', { storagedomainID: sd, imageID: src, volumeID: srcVol, dstImgUUID: timg, dstVolUUID: tvol, volType: 'SHARED', volFormat: 'COW', preallocate: 'SPARSE' }, { timeoutMs: 120_000 });
    await createVolume(cA, { storagedomainID: sd, imageID: cimg, volumeID: cvol, size: 1024 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: 256 * MiB, srcImgUUID: timg, srcVolUUID: tvol });
    const tBefore = await cB().call('Volume.getInfo', { storagedomainID: sd, imageID: timg, volumeID: tvol });
    const g = await startGuest('hv-it-merge-template', cimg, cvol, { start: 0, pauseSec: 1 });
    const err = await cB().call('VM.merge', { vmID: g.vmID, drive: { domainID: sd, imageID: cimg, volumeID: cvol }, baseVolUUID: tvol, topVolUUID: cvol, jobUUID })
      .then(() => undefined, (e: unknown) => e as { code: number; message: string });
    t.equal(err?.code, 219, `VM.merge answers 219 (${err?.message ?? 'it was accepted'})`);
    t.same((await cB().call('VM.getJobs', { vmID: g.vmID })).jobs, [], 'no merge job was recorded');
    t.same(await liveChain(g.vmID), [cvol, tvol], "libvirt's chain is unchanged: the clone's leaf on the template");
    const tAfter = await cB().call('Volume.getInfo', { storagedomainID: sd, imageID: timg, volumeID: tvol });
    t.same([tAfter.voltype, tAfter.legality, tAfter.apparentsize], [tBefore.voltype, tBefore.legality, tBefore.apparentsize], 'the template volume is as it was (SHARED, LEGAL, same LV size)');
    await cB().call('VM.destroy', { vmID: g.vmID });
    g.rec.destroyed = true;
    g.mb.stop();
  });

  await t.test('must-show 3: kill -9 of the agent mid active merge (bandwidth-throttled), restart: the merge completes and the chain is consistent', async (t) => {
    const { img, base, leaf, jobUUID, g } = await baseAndLeaf('hv-it-merge-restart', { before: 16, pauseSec: 1, writes: 24 });
    const logFrom = pool.agents[1]!.logs.length;
    await cB().call('VM.merge', { vmID: g.vmID, drive: { domainID: sd, imageID: img, volumeID: leaf }, baseVolUUID: base, topVolUUID: leaf, bandwidth: 2, jobUUID });
    await waitLog(pool.agents[1]!.logs, (l) => l.includes('"msg":"block commit started"') && l.includes(jobUUID), 120_000, 'the commit started');
    const dom = await conn.lookupByUUID(g.vmID);
    const before = await blockJobInfo(dom, 'vda');
    t.ok(before && toNumber(before.cur) < toNumber(before.end), `libvirt's job is mid-copy at the kill (${before ? `${toNumber(before.cur)}/${toNumber(before.end)} bytes` : 'no job'})`);
    await pool.agents[1]!.kill();
    t.comment(`B's agent killed (SIGKILL) ${logRecords(pool.agents[1]!.logs, 'block commit started', logFrom).length} commit(s) in`);
    const { agent } = await pool.respawn(1);
    onJobs(cB());
    await pool.reconnectPool(1);
    const { job, states } = await waitJob(cB, g.vmID, jobUUID, 300_000);
    t.equal(job.state, 'done', `the restarted agent finished the merge (states ${states.join(' -> ')})${job.error ? `: ${job.error.message}` : ''}`);
    t.ok(logRecords(agent.logs, 'active commit pivoted').length === 1, 'the restarted agent did the pivot');
    t.same(await liveChain(g.vmID), [base], "libvirt's chain of vda is the base alone");
    t.equal(await metadataVolume(g.vmID), base, "the VM's metadata names the base");
    t.equal((await info(img, leaf)).legality, 'ILLEGAL', 'the removed top is ILLEGAL');
    t.equal((await info(img, base)).legality, 'LEGAL', 'the base is LEGAL');
    const b = await stopAndReadBack(g, 3);
    t.same(badBlocks(b, [{ from: 0, to: 16, md5: patternMd5(0x11) }]), [], `all ${b.end} blocks hold what was written`);
    t.equal(pauses.get(g.vmID) ?? 0, 0, 'the guest never paused');
    await cA.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: img, volumeID: leaf }, { timeoutMs: 120_000 });
    await cB().call('VM.destroy', { vmID: g.vmID });
    g.rec.destroyed = true;
    t.match(await check(img, base), /No errors were found/, 'qemu-img check of the base is clean');
    await cB().call('Image.teardown', { storagedomainID: sd, imageID: img });
  });
});
