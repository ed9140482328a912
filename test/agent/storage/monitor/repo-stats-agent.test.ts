// The domain monitor through a real agent on real storage: a file domain as
// master and a block domain (a VG on a loop PV, loop activation), a real
// sanlock daemon (lab settings). Host.getStorageRepoStats and
// StoragePool.getInfo are read over the API while the test breaks the
// storage under one domain: the file domain's metadata removed, then made a
// fifo (a read that hangs), then the block domain's LUN wiped and its
// metadata LV device detached. The other domain must stay valid throughout.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient, startAgent } from '../../harness.js';
import { createLogger } from '../../../../agent/log.js';
import { RpcCallError, type HostvisorClient } from '../../../../api/client/client.js';
import { directRead, directWrite } from '../../../../agent/storage/direct-io.js';
import { Sanlock } from '../../../../agent/storage/sanlock.js';
import { ensureSanlockDaemon, sanlockUnavailable } from '../sanlock-daemon.js';
import { storageLab } from '../storage-lab.js';
import { readersOf } from './processes.js';
import { waitForRepoStats, type RepoStats } from './repo-stats-wait.js';

const INTERVAL_MS = 500;
const READ_TIMEOUT_MS = 1_500;


const why = await sanlockUnavailable();

t.test('domain monitor: repo stats and pool info through a real agent, while one domain\'s storage breaks and comes back', { skip: why ?? false }, async (t) => {
  const daemon = await ensureSanlockDaemon();
  t.teardown(async () => { try { await daemon.stop(); } catch (e) { process.stderr.write(`sanlock daemon stop: ${String(e)}\n`); } });
  const lab = await storageLab('monitor-agent');
  t.teardown(async () => { try { await lab.cleanup(); } catch (e) { process.stderr.write(`lab cleanup: ${String(e)}\n`); } });
  const pv = await lab.makePv(4);
  const fileRoot = join(lab.san, 'files');
  await mkdir(fileRoot, { recursive: true });
  const s = lab.settings();
  const driver = lab.driver(); // so cleanup also detaches the loop devices the agent attached
  const lines: string[] = [];
  const log = createLogger({ level: 'info', sink: (l) => { lines.push(l); if (process.env.HV_TEST_LOG) process.stderr.write(l + '\n'); } });
  const { config, stop } = await startAgent({
    'storage.activation': 'loop', 'storage.loopDataDir': s.loopDataDir, 'storage.loopLinkDir': s.loopLinkDir,
    'storage.extentSizeMiB': 4, 'storage.sanlockIoTimeoutSec': 1,
    'storage.monitorIntervalMs': INTERVAL_MS, 'storage.monitorReadTimeoutMs': READ_TIMEOUT_MS, 'storage.monitorRefreshIntervalMs': 1_000,
  }, log);
  const client = await connectClient(config);
  const [blockSd, fileSd, sp] = [randomUUID(), randomUUID(), randomUUID()];
  let pvHeader: Buffer | undefined; // set while the LUN is wiped
  t.teardown(async () => {
    try {
      if (pvHeader) await directWrite(pv, 0, pvHeader, { timeoutMs: 10_000 });
      // Already disconnected when the test got to its end (309).
      await client.call('StoragePool.disconnect', { storagepoolID: sp }).catch((e: unknown) => { if ((e as RpcCallError).code !== 309) process.stderr.write(`disconnect: ${String(e)}\n`); });
      await client.close();
      await stop();
    } catch (e) { process.stderr.write(`teardown: ${String(e)}\n`); }
  });

  // ---- not connected
  t.same(await client.call('Host.getStorageRepoStats', {}), {}, 'no pool: no monitored domains');
  const refused = await client.call('StoragePool.getInfo', { storagepoolID: sp }).then(() => undefined, (e: unknown) => e);
  t.ok(refused instanceof RpcCallError && refused.code === 309, `getInfo before connect is refused with 309 (${String(refused)})`);

  // ---- connect: both domains monitored
  const blockSpec = { type: 'block' as const, devices: [pv] };
  const fileSpec = { type: 'file' as const, root: fileRoot };
  await client.call('StorageDomain.create', { storagedomainID: blockSd, spec: blockSpec });
  await client.call('StorageDomain.create', { storagedomainID: fileSd, spec: fileSpec });
  await client.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: fileSd, masterVersion: 3, domains: { [blockSd]: blockSpec, [fileSd]: fileSpec } });
  const first = await waitForRepoStats(client, 'both domains checked and valid', (st) => !!st[blockSd]?.actual && !!st[fileSd]?.actual && st[blockSd]!.valid && st[fileSd]!.valid, 15_000);
  for (const [name, sd] of [['block', blockSd], ['file', fileSd]] as const) {
    const st = first[sd]!;
    t.equal(st.code, 0, `${name}: code 0`);
    t.equal(st.version, 1, `${name}: metadata version 1`);
    t.ok(st.delay > 0 && st.delay < 0.5, `${name}: read delay ${st.delay} s`);
  }
  t.same(Object.keys(await client.call('Host.getStorageRepoStats', { domains: [fileSd] })), [fileSd], 'filtered by domain list');
  t.same(await client.call('Host.getStorageRepoStats', { domains: [randomUUID()] }), {}, 'an unmonitored domain is left out');

  // ---- host ids: the master's was joined by connect; the monitor joins the block domain's (on its ids LV)
  const acquired = await waitForRepoStats(client, 'host id acquired on both domains', (st) => st[blockSd]!.acquired && st[fileSd]!.acquired, 20_000);
  t.ok(acquired[blockSd]!.acquired && acquired[fileSd]!.acquired, 'host id acquired on the master (file) and on the regular (block) domain');
  const sanlock = new Sanlock();
  const blockIds = driver.path(blockSd, 'ids'); // the agent's activation of the ids LV
  t.equal(await sanlock.inqLockspace(blockSd, 1, blockIds, 0), 'joined', 'sanlock agrees: host 1 is in the block domain\'s lockspace');
  await sanlock.remLockspace(blockSd, 1, blockIds, 0);
  await waitForRepoStats(client, 'acquired false after the host id was removed behind the monitor\'s back', (st) => !st[blockSd]!.acquired, 5_000);
  t.pass('acquired follows the lockspace: false once the host id is gone');
  await waitForRepoStats(client, 'the monitor acquires the host id again', (st) => st[blockSd]!.acquired, 20_000);
  t.pass('and true again after the monitor re-acquired it');

  // ---- lastCheck grows between checks and resets at each one
  const samples: number[] = [];
  for (let i = 0; i < 40; i++) {
    samples.push((await client.call('Host.getStorageRepoStats', { domains: [blockSd] }))[blockSd]!.lastCheck);
    await sleep(75);
  }
  let rises = 0;
  let resets = 0;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i]! > samples[i - 1]!) rises++;
    if (samples[i]! < samples[i - 1]!) resets++;
  }
  t.ok(rises >= 5 && resets >= 3, `lastCheck grows (${rises} rises) and resets (${resets} resets) over 3 s: ${samples.join(' ')}`);
  t.ok(Math.max(...samples) < 2.5, `lastCheck stays below the interval plus a check (max ${Math.max(...samples)} s)`);

  // ---- pool info
  let info = await client.call('StoragePool.getInfo', { storagepoolID: sp });
  t.match(info.info, { spUUID: sp, pool_status: 'connected', master_uuid: fileSd, master_ver: 3, hostID: 1, spmStatus: 'Free' }, 'pool, master, master version, host id');
  t.match(info.dominfo[fileSd], { status: 'Active', role: 'Master', type: 'file', version: 1, alerts: [] });
  t.match(info.dominfo[blockSd], { status: 'Active', role: 'Regular', type: 'block', version: 1, alerts: [] });
  for (const sd of [blockSd, fileSd]) {
    const d = info.dominfo[sd]!;
    t.ok(d.disktotal! > 0 && d.diskfree! > 0 && d.diskfree! <= d.disktotal!, `${d.type}: ${d.diskfree} of ${d.disktotal} bytes free`);
  }
  const { spmLver } = await client.call('StoragePool.spmStart', { storagepoolID: sp });
  info = await client.call('StoragePool.getInfo', { storagepoolID: sp });
  t.match(info.info, { spmStatus: 'SPM', spm_id: 1, lver: spmLver }, `SPM id and lease version (${spmLver}) from the lease`);
  await client.call('StoragePool.spmStop', { storagepoolID: sp });
  // Another pool's id: 309 (VDSM's StoragePoolUnknown) from every pool verb alike.
  const otherPool = randomUUID();
  for (const [verb, call] of [
    ['getInfo', () => client.call('StoragePool.getInfo', { storagepoolID: otherPool })],
    ['getSpmStatus', () => client.call('StoragePool.getSpmStatus', { storagepoolID: otherPool })],
    ['spmStart', () => client.call('StoragePool.spmStart', { storagepoolID: otherPool })],
    ['spmStop', () => client.call('StoragePool.spmStop', { storagepoolID: otherPool })],
    ['disconnect', () => client.call('StoragePool.disconnect', { storagepoolID: otherPool })],
  ] as const) {
    const e = await call().then(() => undefined, (err: unknown) => err);
    t.ok(e instanceof RpcCallError && e.code === 309 && e.message.includes(sp), `${verb} of another pool: 309 naming the connected pool (${String(e)})`);
  }

  // ---- the SPM lease unreadable (the master's leases file moved away): not SPM, so the holder is Unknown, never Free
  const leasesFile = join(fileRoot, fileSd, 'dom_md', 'leases');
  await rename(leasesFile, `${leasesFile}.aside`);
  try {
    info = await client.call('StoragePool.getInfo', { storagepoolID: sp });
    t.match(info.info, { spmStatus: 'Unknown', spm_id: -1, lver: -1 }, `getInfo with the lease unreadable: ${JSON.stringify(info.info)}`);
    t.match(info.dominfo[blockSd], { status: 'Active' }, 'and still reports the domains');
    const st = await client.call('StoragePool.getSpmStatus', { storagepoolID: sp }).then((r) => r, (err: unknown) => err);
    t.ok(st instanceof RpcCallError && st.code === 379, `getSpmStatus with the lease unreadable is an error, 379, not Free (${st instanceof Error ? st.message : JSON.stringify(st)})`);
  } finally {
    await rename(`${leasesFile}.aside`, leasesFile);
  }
  info = await client.call('StoragePool.getInfo', { storagepoolID: sp });
  t.match(info.info, { spmStatus: 'Free', spm_id: -1, lver: -1 }, 'the lease read again: Free, nobody holds it');

  // ---- file domain: metadata removed
  const md = join(fileRoot, fileSd, 'dom_md', 'metadata');
  await rename(md, `${md}.aside`);
  let st = await waitForRepoStats(client, 'file domain invalid', (x) => !x[fileSd]!.valid, 5_000);
  t.equal(st[fileSd]!.code, 2001, `file domain invalid with 2001 (${st[fileSd]!.error})`);
  t.match(st[fileSd]!.error, /No such file/);
  t.ok(st[blockSd]!.valid, 'the block domain stays valid');
  info = await client.call('StoragePool.getInfo', { storagepoolID: sp });
  t.match(info.dominfo[fileSd], { status: 'Inactive', alerts: [{ code: 2001 }] }, 'getInfo shows the file domain Inactive with an alert');
  t.match(info.dominfo[blockSd], { status: 'Active' });
  await rename(`${md}.aside`, md);
  await waitForRepoStats(client, 'file domain valid again', (x) => x[fileSd]!.valid, 5_000);
  t.pass('the file domain is valid again once its metadata is back');

  // ---- file domain: a read that hangs (a fifo in place of the metadata)
  await rename(md, `${md}.aside`);
  execFileSync('mkfifo', [md]);
  const hangStart = Date.now();
  let maxReaders = 0;
  let maxBlockLastCheck = 0;
  let maxPingMs = 0;
  let blockInvalid = 0;
  let timedOut: RepoStats | undefined;
  while (Date.now() - hangStart < 8_000) {
    const p0 = performance.now();
    await client.call('Host.ping2', {});
    maxPingMs = Math.max(maxPingMs, performance.now() - p0);
    maxReaders = Math.max(maxReaders, readersOf(md));
    const x = await client.call('Host.getStorageRepoStats', {});
    maxBlockLastCheck = Math.max(maxBlockLastCheck, x[blockSd]!.lastCheck);
    if (!x[blockSd]!.valid) { blockInvalid++; t.comment(`block domain during the hang: ${JSON.stringify(x[blockSd])}`); }
    if (!x[fileSd]!.valid && !timedOut) timedOut = x;
    if (timedOut && Date.now() - hangStart > 3 * (READ_TIMEOUT_MS + INTERVAL_MS)) break;
    await sleep(100);
  }
  t.ok(timedOut, 'the file domain turned invalid');
  t.equal(timedOut?.[fileSd]!.code, 2001, `code 2001: ${timedOut?.[fileSd]!.error}`);
  t.match(timedOut?.[fileSd]!.error, /timed out/, 'because the read timed out');
  t.ok(timedOut![fileSd]!.delay >= READ_TIMEOUT_MS / 1000 * 0.9, `delay shows the time the read was given (${timedOut![fileSd]!.delay} s)`);
  t.equal(blockInvalid, 0, 'the block domain stayed valid during the hang');
  t.equal(maxReaders, 1, 'one read of the hung file was seen at a time, never more');
  t.ok(maxBlockLastCheck < 2.5, `the block domain kept being checked during the hang (lastCheck max ${maxBlockLastCheck} s)`);
  t.ok(maxPingMs < 1_000, `the agent kept answering during the hang (ping2 max ${Math.round(maxPingMs)} ms)`);
  await rm(md);
  await rename(`${md}.aside`, md);
  await waitForRepoStats(client, 'file domain valid after the hang', (x) => x[fileSd]!.valid, 10_000);
  t.pass('valid again once the metadata reads');
  await sleep(300);
  t.equal(readersOf(md), 0, 'no reader left behind');

  // ---- block domain: its LUN wiped and its metadata LV device gone
  pvHeader = await directRead(pv, 0, 4096, { timeoutMs: 10_000 });
  await directWrite(pv, 0, Buffer.alloc(4096), { timeoutMs: 10_000 });
  const mdDev = await driver.attached(blockSd, 'metadata');
  t.ok(mdDev, `the agent had the metadata LV on ${mdDev}`);
  if (mdDev) execFileSync('losetup', ['-d', mdDev]);
  st = await waitForRepoStats(client, 'block domain invalid', (x) => !x[blockSd]!.valid, 10_000);
  t.equal(st[blockSd]!.code, 379, `block domain invalid with 379 (${st[blockSd]!.error})`);
  t.ok(st[fileSd]!.valid, 'the file domain stays valid');
  await sleep(3 * INTERVAL_MS);
  st = await client.call('Host.getStorageRepoStats', {});
  t.ok(!st[blockSd]!.valid && st[blockSd]!.lastCheck < 2.5, 'it stays invalid while the LUN is gone, still being checked');
  await directWrite(pv, 0, pvHeader, { timeoutMs: 10_000 });
  pvHeader = undefined;
  await waitForRepoStats(client, 'block domain valid again', (x) => x[blockSd]!.valid, 15_000);
  t.pass('valid again once the LUN is back (the metadata LV re-activated)');
  t.ok(await driver.attached(blockSd, 'metadata'), 'on a new loop device');

  // ---- the log tells the story
  t.ok(lines.some((l) => l.includes('"msg":"storage domain is invalid"') && l.includes(fileSd)), 'the log records the file domain turning invalid');
  t.ok(lines.some((l) => l.includes('"msg":"storage domain is valid again"') && l.includes(blockSd)), 'and the block domain recovering');

  // ---- disconnect: monitors stop, host ids released
  await client.call('StoragePool.disconnect', { storagepoolID: sp });
  t.same(await client.call('Host.getStorageRepoStats', {}), {}, 'no monitored domains after disconnect');
  const after = await client.call('StoragePool.getInfo', { storagepoolID: sp }).then(() => undefined, (e: unknown) => e);
  t.ok(after instanceof RpcCallError && after.code === 309, 'getInfo after disconnect: 309');
  t.equal(await sanlock.inqLockspace(blockSd, 1, blockIds, 0), 'absent', 'the block domain\'s host id was released');
  t.equal(await driver.attached(blockSd, 'ids'), undefined, 'and its ids LV deactivated on this host');
  t.equal(await driver.attached(blockSd, 'metadata'), undefined, 'as is its metadata LV');
  t.equal(await sanlock.inqLockspace(fileSd, 1, join(fileRoot, fileSd, 'dom_md', 'ids'), 0), 'absent', 'the master\'s host id was released too');
});
