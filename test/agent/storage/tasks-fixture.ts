// Fixture for the SPM task tests: a sanlock daemon, a scratch storage lab
// (loop PVs, a folder for file domains), the agent settings that go with it,
// a pool with this agent as SPM, and small helpers to watch tasks and the
// processes an agent left behind.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { ResultOf } from '../../../api/schema.js';
import type { Overrides } from '../harness.js';
import { ensureSanlockDaemon, sanlockUnavailable } from './sanlock-daemon.js';
import { storageLab, type StorageLab } from './storage-lab.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export interface TaskLab {
  lab: StorageLab;
  /** Root folder for file domains. */
  fileRoot: string;
  /** Agent settings: loop activation in the lab, full preallocation (so a preallocated create takes seconds), 1 s sanlock io timeout. */
  overrides: Overrides;
}

/**
 * undefined when sanlock cannot run here: the test is then marked skipped
 * (plan 0 with the reason; the caller returns at once). Everything it makes
 * is cleaned up by t.teardown.
 */
export async function taskLab(t: Test, name: string): Promise<TaskLab | undefined> {
  const why = await sanlockUnavailable();
  if (why) { t.plan(0, `sanlock cannot run here: ${why}`); return undefined; }
  const daemon = await ensureSanlockDaemon();
  t.teardown(async () => { try { await daemon.stop(); } catch (e) { process.stderr.write(`sanlock daemon stop: ${String(e)}\n`); } });
  const lab = await storageLab(name);
  t.teardown(async () => { try { await lab.cleanup(); } catch (e) { process.stderr.write(`lab cleanup: ${String(e)}\n`); } });
  lab.driver(); // so cleanup also detaches loop devices the agent attached
  const fileRoot = join(lab.san, 'fd');
  await mkdir(fileRoot, { recursive: true });
  const s = lab.settings();
  return {
    lab, fileRoot,
    overrides: {
      'storage.activation': 'loop', 'storage.loopDataDir': s.loopDataDir, 'storage.loopLinkDir': s.loopLinkDir,
      'storage.extentSizeMiB': 4, 'storage.thinInitialSizeMiB': 64, 'storage.sanlockIoTimeoutSec': 1,
      'storage.filePreallocation': 'full', 'storage.taskShutdownWaitMs': 10_000,
    },
  };
}

export type DomainSpecParam = { type: 'file'; root: string } | { type: 'block'; devices: string[] };

/**
 * Creates the domain (unless it exists), connects the pool as host 1 and
 * becomes SPM. Right after an agent was killed, sanlock may not have released
 * the dead process's lease yet: spmStart answers 40 and is retried, as an
 * engine does (bounded; `retried` reports it).
 */
export async function becomeSpm(c: HostvisorClient, sd: string, sp: string, spec: DomainSpecParam, create: boolean,
  retried: (why: string) => void = () => {}): Promise<number> {
  if (create) await c.call('StorageDomain.create', { storagedomainID: sd, spec });
  await c.call('StoragePool.connect', { storagepoolID: sp, hostID: 1, masterSdUUID: sd, domains: { [sd]: spec } });
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      return (await c.call('StoragePool.spmStart', { storagepoolID: sp })).spmLver;
    } catch (e) {
      const err = e as { code?: number; message?: string };
      // 40: another host (or our dead predecessor's lease) holds it yet; 1008: the lease's I/O failed this time.
      if ((err.code !== 40 && err.code !== 1008) || Date.now() > end) throw e;
      retried(String(err.message));
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Polls Task.getStatus (every 50 ms, at most timeoutMs) until `until` holds; returns the states seen, in order, without repeats. */
export async function watchTask(c: HostvisorClient, taskID: string, until: (s: ResultOf<'Task.getStatus'>) => boolean, timeoutMs: number): Promise<{ last: ResultOf<'Task.getStatus'>; seen: string[] }> {
  const seen: string[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await c.call('Task.getStatus', { taskID });
    if (seen.at(-1) !== s.taskState) seen.push(s.taskState);
    if (until(s)) return { last: s, seen };
    if (Date.now() > end) throw new Error(`task ${taskID}: condition not met within ${timeoutMs} ms; states seen ${seen.join(' -> ')}; last ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits (bounded) until a file exists with at least `bytes` allocated on disk. */
export async function waitForAllocated(path: string, bytes: number, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const st = await stat(path).catch(() => undefined);
    const allocated = st ? st.blocks * 512 : 0;
    if (allocated >= bytes) return allocated;
    if (Date.now() > end) throw new Error(`${path}: ${allocated} bytes allocated after ${timeoutMs} ms, waited for ${bytes}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

/** Pids of processes whose command line mentions `needle` (the qemu-img a killed agent left running). */
export async function pidsMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) out.push(Number(name));
  }
  return out;
}

/** Loop devices whose backing file starts with `prefix` (deleted files included). */
export async function loopsBacking(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const dev of (await readdir('/sys/block').catch(() => [] as string[])).filter((d) => /^loop\d+$/.test(d))) {
    const backing = (await readFile(`/sys/block/${dev}/loop/backing_file`, 'utf8').catch(() => '')).trim();
    if (backing.startsWith(prefix)) out.push(`/dev/${dev} (${backing})`);
  }
  return out;
}

/** Kills by pid (SIGKILL) each process, and waits (bounded) until it is gone. */
export async function killPids(pids: readonly number[], timeoutMs = 10_000): Promise<void> {
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && pids.some((p) => { try { process.kill(p, 0); return true; } catch { return false; } })) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Expects the call to fail with this code; returns the error for more checks. */
export async function rejectsWith(t: Test, p: Promise<unknown>, code: number, what: string): Promise<{ code: number; message: string; data?: unknown } | undefined> {
  try {
    await p;
    t.fail(`${what}: expected error ${code}, but it succeeded`);
    return undefined;
  } catch (e) {
    const err = e as { code: number; message: string; data?: unknown };
    t.equal(err.code, code, `${what}: error ${code} (${err.message})`);
    return err;
  }
}
