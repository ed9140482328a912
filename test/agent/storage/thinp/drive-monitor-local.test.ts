// The drive monitor on one host with a real guest, a real qcow2 on a loop
// device and real libvirt events. The extension step is done locally here
// (grow the backing file, `losetup -c`): the SPM and mailbox path is tested
// with the multi-host lab.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '../../../../agent/libvirt/index.js';
import { DriveMonitor } from '../../../../agent/storage/thinp/drive-monitor.js';
import { silentLogger } from '../../../../agent/log.js';
import { LAB_DIR, ensureRunDir, guestDomainXml, waitForSerialMarker, serialPathFor } from '../../../lab/guest.js';

t.test('threshold events extend a thin qcow2 ahead of a guest writing 768 MiB: no pause, clean image', async (t) => {
  ensureRunDir();
  const dir = mkdtempSync(join(LAB_DIR, 'run', 'thinp-local-'));
  const img = join(dir, 'lv.img');
  writeFileSync(img, '');
  truncateSync(img, 64 * 1024 * 1024);
  const loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8', timeout: 10_000 }).trim();
  t.teardown(() => { try { execFileSync('losetup', ['-d', loop], { timeout: 10_000 }); } catch { /* gone */ } rmSync(dir, { recursive: true, force: true }); });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', loop, '4G'], { timeout: 30_000 });
  const conn = await Connection.open('qemu:///system');
  t.teardown(() => conn.close());
  const name = `hv-it-thinp-local-${process.pid}`;
  const xml = guestDomainXml({ name, cmdline: ['lab.delay=1', 'lab.dd=768', 'lab.end=wait'], disk: { path: loop, type: 'block', format: 'qcow2', errorPolicy: 'stop' } });
  let pauses = 0;
  const events = await conn.subscribe('lifecycle', (ev) => { if (ev.domain.name === name && ev.event === 3) pauses++; });
  const dom = await conn.createXML(xml);
  t.teardown(async () => { await dom.destroy().catch(() => {}); await events.close().catch(() => {}); });
  const monitor = new DriveMonitor({
    getConnection: () => conn,
    // 256 MiB chunks at 50 %: 128 MiB of headroom when the threshold fires. With 128 MiB chunks
    // (64 MiB headroom) a guest writing at full speed on an idle machine outran the local
    // extension twice in a full run (enospc pauses); the extensions here are still 4 or more.
    policy: { chunkMiB: 256, percent: 50, maxFactor: 1.1 },
    requestExtend: async (_d, sizeMiB) => {
      if (statSync(img).size < sizeMiB * 1048576) truncateSync(img, sizeMiB * 1048576);
    },
    refresh: async () => {
      execFileSync('losetup', ['-c', loop], { timeout: 10_000 });
      return Number(execFileSync('blockdev', ['--getsize64', loop], { encoding: 'utf8', timeout: 10_000 }).trim());
    },
    resumeIfEnospc: async () => {
      const s = await dom.state();
      if (s.state === 3) await dom.resume();
    },
    pollMs: 2000, retryAfterMs: 2000, log: silentLogger,
  });
  const thr = await conn.subscribe('block-threshold', (ev) => { if (ev.domain.name === name) monitor.onThreshold(dom.uuid, ev.dev); });
  const io = await conn.subscribe('io-error-reason', (ev) => { if (ev.domain.name === name && ev.reason === 'enospc') monitor.onEnospc(dom.uuid); });
  t.teardown(async () => { monitor.stop(); await thr.close().catch(() => {}); await io.close().catch(() => {}); });
  monitor.start();
  monitor.add({ vmId: dom.uuid, target: 'vda', domainId: 'local', volumeId: 'local' });
  const done = await waitForSerialMarker(serialPathFor(name), 'LAB-DD-DONE', 120_000);
  t.match(done.line, /rc=0/, 'the guest finished its writes');
  t.equal(pauses, 0, 'the VM never paused');
  t.ok(monitor.history.length >= 4, `${monitor.history.length} extensions`);
  t.ok(monitor.history.every((h) => h.trigger !== 'enospc'), 'every extension came before the disk filled');
  await dom.destroy();
  const check = execFileSync('qemu-img', ['check', loop], { encoding: 'utf8', timeout: 60_000 });
  t.match(check, /No errors were found/, 'qemu-img check is clean');
});
