// VM.snapshot through the agent's API on one host that is also the SPM, on a
// thin qcow2 volume of a block domain (loop PV) and the lab's real guest:
// - a live disk-only snapshot while the guest writes: no pause, the guest goes
//   on writing into the new leaf (which the drive monitor extends), libvirt's
//   chain is base <- leaf, the volumes' metadata say so, qemu-img check is
//   clean on every volume; `frozen` is true when the guest answers a guest-agent
//   ping, else false with a warning (the test says which ran);
// - failures: a leaf that does not exist (201) and a leaf libvirt cannot open
//   (48, after a freeze attempt): the VM stays Up, the thaw is asked for, the
//   drive stays on its old leaf and is still watched;
// - a memory snapshot resumed with VM.create restoreState on a new leaf made on
//   the snapshot's base: the guest's serial counter goes on from the value at
//   the snapshot, not from 0 and not from where it was destroyed.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { dirtyTickerScript, labShWord, ticksIn } from '../../lab/workloads.js';
import { waitUntil } from '../libvirt/qemu-helpers.js';
import { createLogger } from '../../../agent/log.js';
import { sanlockUnavailable } from '../storage/sanlock-daemon.js';
import { snapshotLab } from './snapshot-lab.js';

const MiB = 1024 * 1024;
const why = await sanlockUnavailable();

const virsh = (...args: string[]): string => execFileSync('virsh', ['-c', 'qemu:///system', ...args], { encoding: 'utf8', timeout: 30_000 });
/**
 * Writes `totalMiB` to /dev/vda in 16 MiB steps (O_DIRECT, so every step reaches the volume), printing
 * `LAB-W n` after each and `LAB-WRITES-DONE rc=N` at the end, in the background, while the ticker ticks.
 */
function writerThenTicker(totalMiB: number): string {
  return `(
  i=0; rc=0
  while [ $i -lt ${totalMiB / 16} ]; do
    dd if=/dev/urandom of=/tmp/w bs=1M count=16 2>/dev/null
    dd if=/tmp/w of=/dev/vda bs=1M count=16 seek=$((i*16)) oflag=direct 2>/dev/null || rc=$?
    i=$((i+1)); echo "LAB-W $i"
  done
  echo "LAB-WRITES-DONE rc=$rc"
) &
${dirtyTickerScript({ dirtyMiBs: 0 })}`;
}

/** Whether the guest's agent answers (qemu-ga in the guest, on a configured channel). */
function guestAgentAnswers(name: string): boolean {
  const r = spawnSync('virsh', ['-c', 'qemu:///system', 'qemu-agent-command', '--timeout', '5', name, '{"execute":"guest-ping"}'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0;
}

t.test('live snapshots of a thin block disk while the guest writes; failures leave it running; a memory snapshot resumes where it was taken', { skip: why ?? false }, async (t) => {
  const { pv, loopDataDir, agentSettings } = await snapshotLab(t, 'snapshot', 8);
  const lines: string[] = [];
  const log = createLogger({ level: process.env.HV_TEST_LOG ? 'debug' : 'info', sink: (l) => { lines.push(l); if (process.env.HV_TEST_LOG) process.stderr.write(l + '\n'); } });
  const { config, stop } = await startAgent({
    ...agentSettings, 'thinp.chunkMiB': 512, 'thinp.percent': 25, 'thinp.retryAfterMs': 2000, 'vm.snapshotFreezeTimeoutMs': 5000,
  }, log);
  const client = await connectClient(config);
  const watch = new StatusWatch(client);
  const [sd, sp, img, base] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const vmIDs: string[] = [];
  t.teardown(async () => {
    const step = async (what: string, p: Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([p.then(() => 'ok', (e: unknown) => `failed: ${String(e)}`), new Promise((res) => { timer = setTimeout(() => res('timed out'), 30_000); })]);
      clearTimeout(timer);
      if (r !== 'ok') process.stderr.write(`teardown ${what}: ${String(r)}\n`);
    };
    for (const id of vmIDs) await step('VM.destroy', client.call('VM.destroy', { vmID: id }).catch(() => {}));
    await step('pool disconnect', client.call('StoragePool.disconnect', { storagepoolID: sp }));
    await step('client close', client.close());
    await step('agent stop', stop());
  });
  const records = (msg: string): Array<Record<string, unknown>> =>
    lines.filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`)).map((l) => JSON.parse(l) as Record<string, unknown>);
  const newLeaf = async (parent: string, o: { size?: number } = {}) => {
    const id = randomUUID();
    await client.runSpmTask('Volume.create', { storagedomainID: sd, imageID: img, volumeID: id, size: o.size ?? 4096 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: 256 * MiB, srcVolUUID: parent });
    return id;
  };

  await client.call('StorageDomain.create', { storagedomainID: sd, spec: { type: 'block', devices: [pv] } });
  await client.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: sd, domains: { [sd]: { type: 'block', devices: [pv] } } });
  await client.call('StoragePool.spmStart', { storagepoolID: sp });
  await client.runSpmTask('Volume.create', { storagedomainID: sd, imageID: img, volumeID: base, size: 4096 * MiB, volFormat: 'COW', preallocate: 'SPARSE', initialSize: 256 * MiB });

  // The guest writes 1280 MiB of random data to its disk, 16 MiB at a time, and ticks on its console meanwhile.
  const g = tinyGuest('hv-it-snapshot', { cmdline: [labShWord(writerThenTicker(1280))], disks: [{ name: 'vda', storage: { poolID: sp, domainID: sd, imageID: img, volumeID: base }, type: 'block', format: 'qcow2' }] });
  vmIDs.push(g.vmID);
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 60_000);
  await waitForSerialMarker(g.serial, /^LAB-W 4$/, 120_000);
  const withAgent = guestAgentAnswers(g.spec.name);

  // --- failures, while the guest writes ---
  const missing = randomUUID();
  const e1 = await client.call('VM.snapshot', { vmID: g.vmID, snapDrives: [{ domainID: sd, imageID: img, volumeID: missing, baseVolumeID: base }] }).catch((e: { code: number; message: string }) => e);
  t.equal((e1 as { code: number }).code, 201, `a leaf that does not exist: volumeDoesNotExist (201): ${(e1 as { message: string }).message}`);
  const bad = await newLeaf(base);
  // No qcow2 header: libvirt cannot open it. Written into the lab's file under the LV (its loop driver), not through
  // Image.prepare: a failed prepare of this image would deactivate the chain the running guest uses.
  execFileSync('dd', ['if=/dev/zero', `of=${join(loopDataDir, sd, bad)}`, 'bs=64k', 'count=1', 'conv=notrunc'], { timeout: 30_000 });
  const thawsBefore = records('guest filesystems thawed').length + records('guest thaw asked after a failed freeze; it failed too (nothing was frozen)').length;
  const e2 = await client.call('VM.snapshot', { vmID: g.vmID, snapDrives: [{ domainID: sd, imageID: img, volumeID: bad, baseVolumeID: base }] }).catch((e: { code: number; message: string; data?: Record<string, unknown> }) => e);
  t.equal((e2 as { code: number }).code, 48, `a leaf libvirt cannot open: snapshotErr (48): ${(e2 as { message: string }).message}`);
  const thawsAfter = records('guest filesystems thawed').length + records('guest thaw asked after a failed freeze; it failed too (nothing was frozen)').length;
  t.equal(thawsAfter, thawsBefore + 1, 'the failed snapshot still asked for the thaw');
  t.equal(watch.statuses(g.vmID).at(-1), 'Up', 'the VM is still Up');
  t.match(virsh('domblklist', g.spec.name), new RegExp(`vda\\s+\\S*${base}`), 'libvirt: vda still on the base');
  await client.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: img, volumeID: bad });
  t.pass('the caller deleted the failed leaf (Volume.delete)');

  // --- the live disk-only snapshot, while the guest writes ---
  const leaf = await newLeaf(base);
  const wBefore = Math.max(...[...readFileSync(g.serial, 'latin1').matchAll(/LAB-W (\d+)/g)].map((m) => Number(m[1])));
  const snap = await client.call('VM.snapshot', { vmID: g.vmID, snapDrives: [{ domainID: sd, imageID: img, volumeID: leaf, baseVolumeID: base }] });
  t.comment(`snapshot: frozen=${snap.frozen} freezeMs=${snap.freezeMs} snapshotMs=${snap.snapshotMs} warnings=${JSON.stringify(snap.warnings)}`);
  if (withAgent) {
    t.equal(snap.frozen, true, 'the guest answers its agent: frozen (guest-agent branch of this check ran)');
  } else {
    t.equal(snap.frozen, false, 'the guest has no guest agent: not frozen (no-agent branch of this check ran; it switches to frozen=true once the guest answers a guest-ping)');
    t.match(snap.warnings.join('\n'), /not frozen/, 'and a warning says so');
  }
  t.equal(snap.memory, false);
  t.ok(snap.snapshotMs < 10_000, `libvirt's switch took ${snap.snapshotMs} ms`);
  const done = await waitForSerialMarker(g.serial, 'LAB-WRITES-DONE', 300_000);
  t.match(done.line, /rc=0/, `the guest wrote 1280 MiB, ${wBefore * 16} MiB of it before the snapshot`);
  t.ok(wBefore < 80 - 10, 'a good part of the writes came after the snapshot');
  const ticksNow = Math.max(...ticksIn(readFileSync(g.serial, 'latin1')));
  await waitForSerialMarker(g.serial, `LAB-TICK ${ticksNow + 10}`, 60_000);
  t.pass('the guest keeps running (its counter goes on)');
  t.equal(watch.statuses(g.vmID).filter((st) => st === 'Paused').length, 0, `0 pauses (statuses: ${watch.statuses(g.vmID).join(' -> ')})`);
  const leafExt = records('drive extended').filter((r) => r['volume'] === leaf);
  t.ok(leafExt.length >= 1, `the drive monitor followed the new leaf: ${leafExt.length} extension(s) of it`);
  const [bInfo, lInfo] = await Promise.all([base, leaf].map((v) => client.call('Volume.getInfo', { storagedomainID: sd, imageID: img, volumeID: v })));
  t.same([lInfo!.parent, lInfo!.voltype, bInfo!.voltype], [base, 'LEAF', 'INTERNAL'], 'volume metadata: base <- leaf, the leaf LEAF, the base INTERNAL');
  const xml = virsh('dumpxml', g.spec.name);
  const vda = (xml.match(/<disk[\s\S]*?<\/disk>/g) ?? []).find((d) => d.includes("<target dev='vda'")) ?? '';
  t.match(vda, new RegExp(`<source dev='[^']*${leaf}'[\\s\\S]*<backingStore type='block'[\\s\\S]*<source dev='[^']*${base}'`), "libvirt's chain for vda: base <- leaf");

  // --- a memory snapshot, resumed on a new leaf on its base ---
  const top = await newLeaf(leaf);
  const mem = randomUUID();
  await client.runSpmTask('Volume.create', { storagedomainID: sd, imageID: mem, volumeID: mem, size: 256 * MiB, volFormat: 'RAW', preallocate: 'PREALLOCATED' });
  const memRef = { poolID: sp, domainID: sd, imageID: mem, volumeID: mem };
  const before = Math.max(...ticksIn(readFileSync(g.serial, 'latin1')));
  const msnap = await client.call('VM.snapshot', { vmID: g.vmID, snapDrives: [{ domainID: sd, imageID: img, volumeID: top, baseVolumeID: leaf }], snapMemory: memRef });
  const after = Math.max(...ticksIn(readFileSync(g.serial, 'latin1')));
  t.equal(msnap.memory, true, `memory snapshot in ${msnap.snapshotMs} ms, taken between ticks ${before} and ${after}`);
  // The guest goes on well past the snapshot before it is destroyed.
  await waitForSerialMarker(g.serial, `LAB-TICK ${after + 50}`, 60_000);
  await client.call('VM.destroy', { vmID: g.vmID });
  vmIDs.length = 0;

  // Back to the snapshot: what was written after it (the top leaf) goes, a new leaf on the snapshot's base takes its place.
  await client.runSpmTask('Volume.delete', { storagedomainID: sd, imageID: img, volumeID: top });
  const resumedOn = await newLeaf(leaf);
  rmSync(g.serial, { force: true });
  const g2 = { ...g, spec: { ...g.spec, disks: [{ name: 'vda', storage: { poolID: sp, domainID: sd, imageID: img, volumeID: resumedOn }, type: 'block' as const, format: 'qcow2' as const }] } };
  vmIDs.push(g.vmID);
  const t1 = performance.now();
  await client.call('VM.create', { vmID: g.vmID, spec: g2.spec, restoreState: memRef });
  await watch.wait(g.vmID, 'Up', 120_000, t1);
  const resumed = await waitUntil('ticks after the resume', () => {
    const n = ticksIn(readFileSync(g.serial, 'latin1'));
    return n.length >= 3 ? n : undefined;
  }, 60_000);
  t.ok(resumed[0]! >= before && resumed[0]! <= after + 20, `the counter goes on from the snapshot's ${before}..${after}: ${resumed[0]}..${resumed.at(-1)} (not 0, not ${after + 50}+)`);
  t.notMatch(readFileSync(g.serial, 'latin1'), /LAB-BOOT-OK/, 'no new boot');
  t.match(virsh('domblklist', g.spec.name), new RegExp(`vda\\s+\\S*${resumedOn}`), 'it runs on the new leaf, not on the snapshot base');
  await client.call('VM.destroy', { vmID: g.vmID });
  vmIDs.length = 0;

  // Image.prepare sometimes fails with 207: a short read (0 bytes) of a volume's metadata slot in the storage layer,
  // cause not found yet, not in the snapshot code. Retried at most twice here, and each retry is shown.
  const prepare = async (volumeID: string): Promise<string> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await client.call('Image.prepare', { storagedomainID: sd, imageID: img, volumeID })).path;
      } catch (e) {
        if ((e as { code?: number }).code !== 207 || attempt === 3) throw e;
        t.comment(`Image.prepare answered 207 (${(e as Error).message}); retry ${attempt}`);
      }
    }
  };
  // --- every volume checks clean ---
  for (const v of [base, leaf, resumedOn]) {
    const check = execFileSync('qemu-img', ['check', await prepare(v)], { encoding: 'utf8', timeout: 120_000 });
    t.match(check, /No errors were found/, `qemu-img check is clean on ${v === base ? 'the base' : v === leaf ? 'the snapshot leaf' : 'the resumed leaf'}`);
  }
  const chain = execFileSync('qemu-img', ['info', '--backing-chain', '-U', await prepare(resumedOn)], { encoding: 'utf8', timeout: 60_000 });
  t.match(chain, new RegExp(`${resumedOn}[\\s\\S]*backing file: \\S*${leaf}[\\s\\S]*backing file: \\S*${base}`), 'qemu-img: resumed leaf <- snapshot leaf <- base');
  await client.call('Image.teardown', { storagedomainID: sd, imageID: img });
});
