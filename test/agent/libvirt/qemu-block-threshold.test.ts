// Integration: a block threshold armed with domain.setBlockThreshold() on a qcow2 file disk fires
// a 'block-threshold' event through conn.subscribe() while the guest is writing.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Connection, toNumber, enums } from '../../../agent/libvirt/index.js';
import { guestDomainXml, waitForSerialMarker } from '../../lab/guest.js';
import { EventLog, SYSTEM_URI, destroyGuestQuietly, guestName, makeTempDir, removeDir, run } from './qemu-helpers.js';

const MiB = 1024 * 1024;
const CHUNKS = 48;

// The guest writes CHUNKS x 1 MiB at increasing offsets, one chunk every 0.2 s, printing a marker per
// chunk: the qcow2's host allocation grows by about 1 MiB per chunk, slowly enough to see the event
// arrive mid-write.
const WORKLOAD = [
  'i=0',
  `while [ $i -lt ${CHUNKS} ]; do`,
  '  dd if=/dev/zero of=/dev/vda bs=1M count=1 seek=$i oflag=direct 2>/dev/null',
  '  echo "LAB-CHUNK $i"',
  '  i=$((i+1))',
  '  sleep 0.2',
  'done',
].join('\n') + '\n';

t.test('setBlockThreshold on a qcow2 disk: a block-threshold event for vda with the armed threshold and excess >= 0 arrives while the guest writes', async (t) => {
  const name = guestName('thr');
  const dir = await makeTempDir('thr');
  const serial = join(dir, 'serial.log');
  const image = join(dir, 'disk.qcow2');
  let conn: Connection | undefined;
  t.teardown(async () => {
    await destroyGuestQuietly(name, conn);
    await conn?.close().catch(() => {});
    await removeDir(dir);
  });

  await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1G']);
  conn = await Connection.open(SYSTEM_URI, { callTimeoutMs: 60_000 });

  const thresholds = new EventLog<'block-threshold'>(name);
  const sub = await conn.subscribe('block-threshold', thresholds.listener);
  t.teardown(() => sub.close().catch(() => {}));

  const xml = guestDomainXml({
    name,
    serialPath: serial,
    disk: { path: image, type: 'file', format: 'qcow2' },
    cmdline: [`lab.sh=${Buffer.from(WORKLOAD).toString('base64')}`, 'lab.end=wait'],
  });
  const dom = await conn.createXML(xml);

  // Arm before the guest has even booted (it writes nothing until its script runs), so no race:
  // 16 MiB above the image's current host allocation, well inside the 48 MiB the guest writes.
  const before = await dom.blockInfo('vda');
  const allocation = toNumber(before.allocation);
  const threshold = allocation + 16 * MiB;
  await dom.setBlockThreshold('vda', threshold);
  t.comment(`host allocation at arming: ${allocation} bytes; threshold ${threshold}`);

  const stats = await conn.getAllDomainStats(enums.DomainStatsTypes.BLOCK);
  const mine = stats.find((s) => s.name === name);
  t.equal(mine && toNumber(mine.stats['block.0.threshold']), threshold, 'domstats show the armed threshold');

  await waitForSerialMarker(serial, 'LAB-SH-START', 120_000);
  const got = await thresholds.waitFor(`block-threshold event with threshold ${threshold}`,
    (ev) => toNumber(ev.threshold) === threshold, 120_000);

  // The guest must still be writing: it has started chunks but not finished them all.
  const text = await readFile(serial, 'latin1');
  const chunksDone = [...text.matchAll(/^LAB-CHUNK (\d+)/gm)].length;
  t.ok(chunksDone > 0 && chunksDone < CHUNKS && !text.includes('LAB-SH-DONE'),
    `the event arrived while the guest was writing (${chunksDone} of ${CHUNKS} chunks done)`);

  const ev = got.ev;
  t.ok(ev.dev === 'vda' || ev.dev === 'vda[1]', `the event names disk vda (dev ${ev.dev})`);
  t.equal(ev.path, image, 'the event names the qcow2 file');
  t.equal(toNumber(ev.threshold), threshold, 'the event carries the armed threshold');
  t.ok(toNumber(ev.excess) >= 0, `excess is >= 0 (${String(ev.excess)})`);
  t.ok(toNumber(ev.excess) < 16 * MiB, 'excess is small: the event fired as the allocation crossed the threshold');
  t.equal(ev.domain.name, name, 'the event names the domain');

  // The guest finishes its writes; the threshold does not fire again (it is one-shot).
  await waitForSerialMarker(serial, /^LAB-SH-DONE rc=0/, 120_000);
  const after = toNumber((await dom.blockInfo('vda')).allocation);
  t.ok(after >= CHUNKS * MiB, `host allocation holds the ${CHUNKS} MiB written (now ${after} bytes)`);
  const devs = new Set(thresholds.events.map((r) => r.ev.dev));
  t.ok(thresholds.events.length <= 2 && devs.size === thresholds.events.length,
    `one event per arming, at most one for each of vda and vda[1] (got ${[...thresholds.events.map((r) => r.ev.dev)].join(', ')})`);
});
