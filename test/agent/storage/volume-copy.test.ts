// Volume.copy between a file domain and a block domain of one pool, on a real
// agent that is the SPM (issue 13, must show 6): a two-volume qcow2 chain on
// the file domain is collapsed into a thin qcow2 volume on the block domain
// and back into a raw file; `qemu-img compare` says every copy has the
// source's data; the task's progress (Task.getStatus and the
// |storage|task_status| events) rises to 100; a Task.stop mid-copy kills
// qemu-img and leaves nothing behind (no volume, LV, data file or process);
// the progress of a 1 GiB copy follows the writes (O_DIRECT, -t none): no
// copy data waits in the page cache while the progress says it is copied.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileAndBlockPool } from './copy-fixture.js';
import { cachedBytes, describeSamples, deviceWrittenBytes, followCopy } from './copy-progress-probe.js';
import { run } from '../../../agent/storage/exec.js';
import { GiB, MiB, pidsMentioning, rejectsWith, taskLab, watchTask } from './tasks-fixture.js';

t.test('Volume.copy file -> block -> file: identical data, progress to 100, a stop leaves nothing', async (t) => {
  const tl = await taskLab(t, 'copy');
  if (!tl) return;
  const { c, fsd, bsd } = await fileAndBlockPool(t, tl, { logMatch: 'volume copied' });

  // Every task_status event, by task.
  const events = new Map<string, Array<{ progress?: number; taskState: string }>>();
  c.onEvent((method, params) => {
    const m = method.match(/^\|storage\|task_status\|(.+)$/);
    if (!m) return;
    const body = params[m[1]!] as { progress?: number; taskState: string };
    events.set(m[1]!, [...(events.get(m[1]!) ?? []), body]);
  });

  // The source: base (384 MiB of 0x5a) <- leaf (128 MiB of 0xc3 over it, 64 MiB of 0x11 further on), 1 GiB virtual.
  const [img, base, leaf] = [randomUUID(), randomUUID(), randomUUID()];
  const fpath = (i: string, v: string) => join(tl.fileRoot, fsd, 'images', i, v);
  await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: img, volumeID: base, size: GiB, volFormat: 'COW', preallocate: 'SPARSE' });
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 384M', fpath(img, base)], { timeoutMs: 120_000 });
  await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: img, volumeID: leaf, size: GiB, volFormat: 'COW', preallocate: 'SPARSE', srcVolUUID: base });
  await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xc3 256M 128M', '-c', 'write -P 0x11 800M 64M', fpath(img, leaf)], { timeoutMs: 120_000 });
  const dataMiB = 384 + 64;

  /** Runs a copy; returns its task id, the progress values polled and its time. */
  const copy = async (params: Record<string, unknown>) => {
    const t0 = performance.now();
    const { taskID } = await c.call('Volume.copy', params as never);
    const polled: number[] = [];
    const { last } = await watchTask(c, taskID, (s) => { if (s.progress !== undefined) polled.push(s.progress); return s.taskState === 'finished'; }, 300_000);
    const seconds = (performance.now() - t0) / 1000;
    return { taskID, last, polled, seconds };
  };
  const compare = async (a: string, af: string, b: string, bf: string) =>
    (await run(['qemu-img', 'compare', '-f', af, '-F', bf, a, b], { timeoutMs: 120_000, okCodes: [0, 1] }));

  const [bimg, bvol] = [randomUUID(), randomUUID()];
  await t.test('file -> block: the chain collapses into one thin qcow2 LV with the same data', async (t) => {
    const r = await copy({ storagedomainID: fsd, imageID: img, volumeID: leaf, dstSdUUID: bsd, dstImgUUID: bimg, dstVolUUID: bvol, volType: 'LEAF', volFormat: 'COW', preallocate: 'SPARSE' });
    t.same({ state: r.last.taskState, result: r.last.taskResult, code: r.last.code }, { state: 'finished', result: 'success', code: 0 }, r.last.message);
    t.equal(r.last.progress, 100, 'Task.getStatus shows progress 100 at the end');
    const info = await c.call('Task.getInfo', { taskID: r.taskID });
    t.equal(info.progress, 100, 'Task.getInfo shows progress 100');
    const vol = info.result as { uuid: string; parent: string; format: string; legality: string; capacity: number; voltype: string; apparentsize: number };
    t.same({ uuid: vol.uuid, format: vol.format, legality: vol.legality, capacity: vol.capacity, voltype: vol.voltype }, { uuid: bvol, format: 'COW', legality: 'LEGAL', capacity: GiB, voltype: 'LEAF' }, 'the result is the new volume');
    t.equal(vol.parent, '00000000-0000-0000-0000-000000000000', 'one volume: the chain was collapsed');
    t.ok(vol.apparentsize < GiB, `the LV is thin: ${vol.apparentsize / MiB} MiB for ${dataMiB} MiB of data`);
    const ev = (events.get(r.taskID) ?? []).map((e) => e.progress).filter((p): p is number => p !== undefined);
    t.ok(ev.length >= 3, `task_status events carried progress ${ev.length} times: ${ev.slice(0, 6).join(', ')} ... ${ev.slice(-3).join(', ')}`);
    t.ok(ev.every((p, i) => i === 0 || p >= ev[i - 1]!), 'event progress never goes down');
    t.equal(ev.at(-1), 100, 'and reaches 100');
    t.equal((events.get(r.taskID) ?? []).at(-1)?.taskState, 'finished', 'the last event says finished');
    t.comment(`copy file -> block: ${dataMiB} MiB of data (1 GiB virtual) in ${r.seconds.toFixed(2)} s: ${(dataMiB / r.seconds).toFixed(0)} MiB/s of data; polled progress ${r.polled.join(',')}`);
    const prep = await c.call('Image.prepare', { storagedomainID: bsd, imageID: bimg });
    try {
      const cmp = await compare(fpath(img, leaf), 'qcow2', prep.path, 'qcow2');
      t.equal(cmp.rc, 0, `qemu-img compare source chain vs block copy: ${cmp.stdout.trim()}`);
      const chk = await run(['qemu-img', 'check', '-f', 'qcow2', prep.path], { timeoutMs: 60_000, okCodes: [0, 2, 3] });
      t.equal(chk.rc, 0, 'qemu-img check is clean on the copy');
    } finally {
      await c.call('Image.teardown', { storagedomainID: bsd, imageID: bimg });
    }
    await c.call('Task.clear', { taskID: r.taskID });
  });

  await t.test('block -> file (raw): the same data again', async (t) => {
    const [fimg, fvol] = [randomUUID(), randomUUID()];
    const r = await copy({ storagedomainID: bsd, imageID: bimg, volumeID: bvol, dstSdUUID: fsd, dstImgUUID: fimg, dstVolUUID: fvol, volType: 'LEAF', volFormat: 'RAW', preallocate: 'SPARSE' });
    t.equal(r.last.taskResult, 'success', r.last.message);
    t.equal(r.last.progress, 100, 'progress 100');
    t.comment(`copy block -> file: ${dataMiB} MiB of data in ${r.seconds.toFixed(2)} s: ${(dataMiB / r.seconds).toFixed(0)} MiB/s of data`);
    const back = await compare(fpath(img, leaf), 'qcow2', fpath(fimg, fvol), 'raw');
    t.equal(back.rc, 0, `qemu-img compare source vs the copy back: ${back.stdout.trim()}`);
    const prep = await c.call('Image.prepare', { storagedomainID: bsd, imageID: bimg });
    try {
      const cmp = await compare(prep.path, 'qcow2', fpath(fimg, fvol), 'raw');
      t.equal(cmp.rc, 0, `qemu-img compare block copy vs file copy: ${cmp.stdout.trim()}`);
    } finally {
      await c.call('Image.teardown', { storagedomainID: bsd, imageID: bimg });
    }
    await c.call('Task.clear', { taskID: r.taskID });
    await c.runSpmTask('Image.delete', { storagedomainID: fsd, imageID: fimg });
  });

  await t.test('Task.stop mid-copy kills qemu-img and removes the half copy: no volume, LV, data file or process left', async (t) => {
    const [simg, svol] = [randomUUID(), randomUUID()];
    const lvsBefore = (await c.call('StorageDomain.getVolumes', { storagedomainID: bsd })).volumes;
    let stopAt: number | undefined;
    let taskID = '';
    // Stop as soon as an event shows the copy under way (the events arrive as qemu-img prints).
    const stopped = new Promise<void>((resolve) => {
      const off = c.onEvent((method, params) => {
        if (!taskID || method !== `|storage|task_status|${taskID}`) return;
        const p = (params[taskID] as { progress?: number }).progress ?? 0;
        if (p >= 3 && stopAt === undefined) {
          stopAt = p;
          off();
          void c.call('Task.stop', { taskID }).then(() => resolve(), () => resolve());
        }
      });
    });
    ({ taskID } = await c.call('Volume.copy', { storagedomainID: fsd, imageID: img, volumeID: leaf, dstSdUUID: bsd, dstImgUUID: simg, dstVolUUID: svol, volType: 'LEAF', volFormat: 'RAW', preallocate: 'PREALLOCATED' }));
    const sawQemuImg = await (async () => { for (let i = 0; i < 100; i++) { if ((await pidsMentioning(svol)).length) return true; if (stopAt !== undefined) return false; await new Promise((r) => setTimeout(r, 20)); } return false; })();
    const { last } = await watchTask(c, taskID, (s) => s.taskState === 'finished', 120_000);
    await stopped;
    t.ok(stopAt !== undefined && stopAt < 100, `stopped at ${stopAt}%${sawQemuImg ? ', with qemu-img seen running' : ''}`);
    t.same({ result: last.taskResult, code: last.code }, { result: 'cleanSuccess', code: 411 }, `rolled back: ${last.message}`);
    const info = await c.call('Task.getInfo', { taskID });
    t.ok(info.recoveryLog.some((l) => l.includes(svol)), `recovery removed the copy: ${info.recoveryLog.join('; ')}`);
    await rejectsWith(t, c.call('Volume.getInfo', { storagedomainID: bsd, imageID: simg, volumeID: svol }), 201, 'the copy');
    t.same((await c.call('StorageDomain.getVolumes', { storagedomainID: bsd })).volumes, lvsBefore, 'the block domain has the volumes it had');
    const dataFiles = await readdir(join(tl.lab.san, 'lv', bsd)).catch(() => [] as string[]);
    t.ok(dataFiles.includes(bvol) && !dataFiles.includes(svol), 'no LV data file left (the earlier copy\'s is there)');
    t.same(await pidsMentioning(svol), [], 'no qemu-img left running');
    await c.call('Task.clear', { taskID });
  });
  await t.test('a 1 GiB copy\'s progress follows its writes (O_DIRECT): rising through many values, no copied data left in the page cache', async (t) => {
    // The source: a raw 1 GiB volume, every byte data, so progress is the share of the bytes written.
    const [rimg, rvol] = [randomUUID(), randomUUID()];
    await c.runSpmTask('Volume.create', { storagedomainID: fsd, imageID: rimg, volumeID: rvol, size: GiB, volFormat: 'RAW', preallocate: 'SPARSE' });
    await run(['qemu-io', '-f', 'raw', '-c', 'write -P 0x3c 0 1G', fpath(rimg, rvol)], { timeoutMs: 180_000 });
    const linkDir = String(tl.overrides['storage.loopLinkDir']);
    for (const to of ['file', 'block'] as const) {
      const [dimg, dvol] = [randomUUID(), randomUUID()];
      const dsd = to === 'file' ? fsd : bsd;
      const { taskID } = await c.call('Volume.copy', { storagedomainID: fsd, imageID: rimg, volumeID: rvol, dstSdUUID: dsd, dstImgUUID: dimg, dstVolUUID: dvol, volType: 'LEAF', volFormat: 'COW', preallocate: 'SPARSE' });
      const r = await followCopy(c, taskID, to === 'file' ? () => cachedBytes(fpath(dimg, dvol)) : () => deviceWrittenBytes(join(linkDir, bsd, dvol)), { timeoutMs: 300_000, counter: to === 'block' });
      t.equal(r.last.taskResult, 'success', `file -> ${to}: ${r.last.message}`);
      t.comment(`1 GiB file -> ${to} in ${r.seconds.toFixed(2)} s (${(1024 / r.seconds).toFixed(0)} MiB/s); ms:progress/${to === 'file' ? 'cached' : 'written'}: ${describeSamples(r.samples)}`);
      const middle = new Set(r.samples.map((x) => x.progress).filter((p) => p >= 1 && p <= 98));
      t.ok(middle.size >= 4, `polled every 100 ms, the progress showed ${middle.size} values between 1 and 98 (at least 4)`);
      const during = r.samples.filter((x) => x.progress >= 10 && x.progress < 100 && x.bytes !== undefined);
      t.ok(during.length >= 2, `${during.length} samples between 10 and 99 %`);
      if (to === 'file') {
        const most = Math.max(0, ...during.map((x) => x.bytes!));
        t.ok(most <= 64 * MiB, `the copy never held more than 64 MiB in the page cache while it ran (at most ${(most / MiB).toFixed(0)} MiB): what the progress counts is written`);
      } else {
        const behind = during.filter((x) => x.bytes! < (x.progress / 100) * GiB - 128 * MiB);
        t.same(behind.map((x) => `${x.progress}%: ${Math.round(x.bytes! / MiB)} MiB`), [], 'at every sample the device had completed the writes of the progress shown (within 128 MiB)');
      }
      const prep = await c.call('Image.prepare', { storagedomainID: dsd, imageID: dimg });
      try {
        const cmp = await compare(fpath(rimg, rvol), 'raw', prep.path, 'qcow2');
        t.equal(cmp.rc, 0, `qemu-img compare source vs the ${to} copy: ${cmp.stdout.trim()}`);
      } finally {
        await c.call('Image.teardown', { storagedomainID: dsd, imageID: dimg });
      }
      await c.call('Task.clear', { taskID });
      await c.runSpmTask('Image.delete', { storagedomainID: dsd, imageID: dimg });
    }
    await c.runSpmTask('Image.delete', { storagedomainID: fsd, imageID: rimg });
  });
});
