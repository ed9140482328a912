// Stopping the domain monitors while a check is stuck, through a real agent
// process on real storage (a block domain on a loop PV, loop activation, a
// file master, a real sanlock daemon):
//  - the block domain's metadata activation is stuck behind its VG's lvm lock
//    (held by this test, as a long lvm command elsewhere would) when the pool
//    disconnects; once the lock is released the activation finishes, and
//    still no loop device of the domain may be left attached;
//  - the agent is stopped while a read check hangs (the master's metadata is
//    a fifo): once the read ends the agent exits at once, with no timer of
//    the monitor holding it up.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient, spawnAgent, stopChild, testConfig, waitExit } from '../../harness.js';
import type { HostvisorClient } from '../../../../api/client/client.js';
import { ensureSanlockDaemon, sanlockUnavailable } from '../sanlock-daemon.js';
import { storageLab, type StorageLab } from '../storage-lab.js';
import { lvmCommandsOn, readersOf } from './processes.js';
import { waitForRepoStats, type RepoStats } from './repo-stats-wait.js';

const INTERVAL_MS = 300;
const READ_TIMEOUT_MS = 1_500;


async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Loop devices attached right now whose backing file lies under `dir`. */
function loopsBacking(dir: string): string[] {
  const out = execFileSync('losetup', ['-n', '-l', '-O', 'NAME,BACK-FILE'], { encoding: 'utf8', timeout: 10_000 });
  return out.split('\n').filter((l) => l.includes(`${dir}/`));
}

/**
 * Holds lvm's lock of the VG (the flock on /run/lock/lvm/V_<vg>, which every
 * lvm command on the VG takes), as a long lvm command on another host would.
 * One process holds it (killing it releases the lock) and, as lvm itself
 * does, makes sure it holds the file that is in place: lvm unlinks its lock
 * file when it lets go of it.
 */
async function holdVgLock(vg: string): Promise<ChildProcess> {
  const file = `/run/lock/lvm/V_${vg}`;
  const py = [
    'import fcntl, os, sys, time',
    'p = sys.argv[1]',
    'for _ in range(1000):',
    '    f = open(p, "a")',
    '    fcntl.flock(f, fcntl.LOCK_EX)',
    '    try:',
    '        if os.fstat(f.fileno()).st_ino == os.stat(p).st_ino: break',
    '    except FileNotFoundError: pass',
    '    f.close()',
    'print("held", flush=True)',
    'time.sleep(600)',
  ].join('\n');
  const holder = spawn('/usr/bin/python3', ['-c', py, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const held = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 30_000);
    holder.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('held')) { clearTimeout(timer); resolve(true); } });
    holder.once('exit', () => { clearTimeout(timer); resolve(false); });
  });
  if (!held) {
    holder.kill('SIGKILL');
    throw new Error(`could not hold ${file}`);
  }
  return holder;
}

interface Setup { lab: StorageLab; client: HostvisorClient; child: ChildProcess; logs: string[]; blockSd: string; fileSd: string; sp: string; fileRoot: string }

async function connectedAgent(t: Test, name: string, extra: Record<string, number> = {}): Promise<Setup> {
  const daemon = await ensureSanlockDaemon();
  t.teardown(async () => { try { await daemon.stop(); } catch (e) { process.stderr.write(`sanlock daemon stop: ${String(e)}\n`); } });
  const lab = await storageLab(name);
  t.teardown(async () => { try { await lab.cleanup(); } catch (e) { process.stderr.write(`lab cleanup: ${String(e)}\n`); } });
  lab.driver(); // so cleanup also detaches the loop devices the agent attached
  const pv = await lab.makePv(4);
  const fileRoot = join(lab.san, 'files');
  await mkdir(fileRoot, { recursive: true });
  const s = lab.settings();
  const config = await testConfig({
    'storage.activation': 'loop', 'storage.loopDataDir': s.loopDataDir, 'storage.loopLinkDir': s.loopLinkDir,
    'storage.extentSizeMiB': 4, 'storage.sanlockIoTimeoutSec': 1, 'storage.lvmTimeoutMs': 60_000,
    'storage.monitorIntervalMs': INTERVAL_MS, 'storage.monitorReadTimeoutMs': READ_TIMEOUT_MS, 'storage.monitorRefreshIntervalMs': 1_000,
    ...extra,
  });
  const { child, logs } = await spawnAgent(config);
  t.teardown(() => stopChild(child, 20_000));
  if (process.env['HV_TEST_LOG']) child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  const client = await connectClient(config);
  t.teardown(() => client.close().catch(() => {}));
  const [blockSd, fileSd, sp] = [randomUUID(), randomUUID(), randomUUID()];
  const blockSpec = { type: 'block' as const, devices: [pv] };
  const fileSpec = { type: 'file' as const, root: fileRoot };
  await client.call('StorageDomain.create', { storagedomainID: blockSd, spec: blockSpec });
  await client.call('StorageDomain.create', { storagedomainID: fileSd, spec: fileSpec });
  await client.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: fileSd, masterVersion: 1, domains: { [blockSd]: blockSpec, [fileSd]: fileSpec } });
  await waitForRepoStats(client, 'both domains valid, host id acquired on both', (st) => !!st[blockSd]?.valid && !!st[fileSd]?.valid && !!st[blockSd]?.acquired && !!st[fileSd]?.acquired && !!st[blockSd]?.actual, 30_000);
  return { lab, client, child, logs, blockSd, fileSd, sp, fileRoot };
}

const why = await sanlockUnavailable();

t.test('disconnect while the block domain\'s metadata activation is stuck on the VG lock: after the lock is released, no loop device of the domain is attached', { skip: why ?? false }, async (t) => {
  const { lab, client, child, logs, blockSd, sp } = await connectedAgent(t, 'monitor-stop-lock');
  const driver = lab.driver();
  const lvDir = join(lab.settings().loopDataDir, blockSd);
  t.ok(await driver.attached(blockSd, 'metadata') && await driver.attached(blockSd, 'ids'), 'the monitor has the metadata and ids LVs attached');

  // The lock first (so the re-activation below gets stuck), then the metadata device goes: the read fails and the next check re-activates.
  const holder = await holdVgLock(blockSd);
  t.teardown(async () => { holder.kill('SIGKILL'); await waitExit(holder, 5_000); });
  const mdDev = await driver.attached(blockSd, 'metadata');
  execFileSync('losetup', ['-d', mdDev!], { timeout: 10_000 });
  await waitForRepoStats(client, 'block domain invalid', (st) => !st[blockSd]!.valid, 10_000);
  await until('the monitor\'s re-activation (lvm lvs) stuck on the lock', () => lvmCommandsOn(blockSd, 'lvs').length > 0, 10_000);
  t.pass(`the metadata re-activation is stuck: ${lvmCommandsOn(blockSd, 'lvs').length} lvs waiting for the lock`);

  const t0 = performance.now();
  await client.call('StoragePool.disconnect', { storagepoolID: sp });
  const disconnectMs = performance.now() - t0;
  t.ok(disconnectMs < 3 * (READ_TIMEOUT_MS + 1_000) + 5_000, `disconnect answered in ${Math.round(disconnectMs)} ms with the activation still stuck`);
  const right = loopsBacking(lvDir);
  t.same(right, [], `no loop device of the domain attached right after disconnect ${JSON.stringify(right)}`);
  t.ok(lvmCommandsOn(blockSd, 'lvs').length > 0, 'the activation is still stuck behind the lock');

  // The lock goes: the stuck activation runs to its end (lvs, then losetup).
  const logFrom = logs.length;
  holder.kill('SIGKILL');
  await waitExit(holder, 5_000);
  await until('the stuck lvm commands ended', () => lvmCommandsOn(blockSd).length === 0, 30_000);
  // The activation goes on after lvs (a losetup, then, with the monitor stopped, its undoing): give it time to show.
  const end = Date.now() + 5_000;
  let leaked: string[] = [];
  while (Date.now() < end) {
    leaked = loopsBacking(lvDir);
    if (leaked.length || logs.slice(logFrom).some((l) => l.includes('an activation that finished after the monitor stopped was dropped'))) break;
    await sleep(100);
  }
  await sleep(500);
  leaked = loopsBacking(lvDir);
  t.same(leaked, [], `no loop device of the domain is attached once the late activation has finished ${JSON.stringify(leaked)}`);
  t.ok(logs.slice(logFrom).some((l) => l.includes('an activation that finished after the monitor stopped was dropped') && l.includes('"lv":"metadata"')), 'the agent logged that it dropped the late metadata activation');

  // With nothing of the pool left running, the agent stops and exits at once.
  await client.close();
  child.kill('SIGTERM');
  const exited = await waitExit(child, 20_000);
  t.ok(exited, 'the agent exited on SIGTERM');
});

t.test('SIGTERM while a read check hangs: the agent exits as soon as the read ends, with no monitor timer holding it up', { skip: why ?? false }, async (t) => {
  // A long read timeout: a timer of that length left behind by the monitor would show in the exit time.
  const readTimeoutMs = 8_000;
  const { child, logs, fileSd, fileRoot } = await connectedAgent(t, 'monitor-stop-exit', { 'storage.monitorReadTimeoutMs': readTimeoutMs });
  const md = join(fileRoot, fileSd, 'dom_md', 'metadata');
  await rename(md, `${md}.aside`);
  execFileSync('mkfifo', [md]);
  await until('a read check hung on the fifo', () => readersOf(md) === 1, 10_000);

  const exit = new Promise<number>((resolve) => child.once('exit', () => resolve(Date.now())));
  child.kill('SIGTERM');
  await until('the agent is stopping', () => logs.some((l) => l.includes('"msg":"stopping"')), 10_000);
  // The agent closes its RPC server first, then disconnects the pool, which stops the monitors.
  await sleep(1_500);
  t.equal(readersOf(md), 1, 'the read check is still hung while the agent stops');
  // A writer ends the hung read: dd's open returns (its O_DIRECT read of a pipe may then fail; either way dd exits).
  const fd = openSync(md, constants.O_WRONLY | constants.O_NONBLOCK);
  try { writeSync(fd, 'x'); } catch { /* dd already gone: EPIPE */ } finally { closeSync(fd); }
  await until('the read check ended', () => readersOf(md) === 0, 5_000);
  const readEnded = Date.now();
  const exitedAt = await Promise.race([exit, sleep(30_000).then(() => undefined)]);
  t.ok(exitedAt !== undefined, 'the agent exited');
  if (exitedAt === undefined) return;
  const stopped = logs.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } }).find((r) => r['msg'] === 'stopped');
  t.ok(stopped, 'it logged "stopped"');
  const stoppedAt = Date.parse(String(stopped?.['ts']));
  t.comment(`agent stop phases: ${JSON.stringify(stopped)}`);
  t.comment(`read ended -> "stopped" ${stoppedAt - readEnded} ms -> exit ${exitedAt - stoppedAt} ms (read timeout ${readTimeoutMs} ms)`);
  t.ok(exitedAt - stoppedAt < 2_000, `the process exited ${exitedAt - stoppedAt} ms after it logged "stopped"`);
  t.ok(exitedAt - readEnded < readTimeoutMs, `and ${exitedAt - readEnded} ms after the read ended, less than the read timeout`);
});
