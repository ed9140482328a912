// Storage test fixture: a scratch folder under the lab's run dir, loop-backed
// PVs over sparse files, loop-driver settings for one or more "hosts" that
// share one SAN folder, and cleanup that never throws.
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger, silentLogger, type Logger } from '../../../agent/log.js';
import { run } from '../../../agent/storage/exec.js';
import { LoopActivationDriver } from '../../../agent/storage/loop-activation.js';
import { Lvm } from '../../../agent/storage/lvm.js';
import { STORAGE_DEFAULTS, type StorageSettings } from '../../../agent/storage/index.js';
import { GiB } from '../../../agent/storage/types.js';

export const LAB_RUN = join(process.env['HOSTVISOR_LAB'] || '/var/tmp/hostvisor-lab', 'run');
export const testLog: Logger = process.env['HV_TEST_LOG'] ? createLogger({ level: 'debug' }) : silentLogger;

export const uuid = (): string => randomUUID();

export interface StorageLab {
  dir: string;
  /** Stands in for the SAN: loop PV backing files, LV data files, file domains. */
  san: string;
  settings(host?: string): StorageSettings;
  driver(host?: string): LoopActivationDriver;
  /** A sparse file attached to a loop device: a LUN. */
  makePv(sizeGiB?: number): Promise<string>;
  /** Removes VGs on our PVs, detaches every loop device we made, deletes the folder. */
  cleanup(): Promise<void>;
}

export async function storageLab(name: string): Promise<StorageLab> {
  const dir = join(LAB_RUN, `storage-${name}-${process.pid}-${Date.now().toString(36)}`);
  const san = join(dir, 'san');
  await mkdir(join(san, 'luns'), { recursive: true });
  const pvs: Array<{ dev: string; file: string }> = [];
  const drivers = new Map<string, LoopActivationDriver>();
  const settings = (host = 'hostA'): StorageSettings => ({
    ...STORAGE_DEFAULTS,
    activation: 'loop',
    loopDataDir: join(san, 'lv'),
    loopLinkDir: join(dir, host, 'run'),
    lvmTimeoutMs: 30_000,
    qemuImgTimeoutMs: 60_000,
    ioTimeoutMs: 10_000,
    extentSizeMiB: 4,
    thinInitialSizeMiB: 64,
  });
  return {
    dir, san, settings,
    driver(host = 'hostA') {
      let d = drivers.get(host);
      if (!d) {
        const s = settings(host);
        d = new LoopActivationDriver({ dataDir: s.loopDataDir, linkDir: s.loopLinkDir, timeoutMs: s.ioTimeoutMs, log: testLog });
        drivers.set(host, d);
      }
      return d;
    },
    async makePv(sizeGiB = 8) {
      const file = join(san, 'luns', `lun${pvs.length}.img`);
      await run(['truncate', '-s', String(sizeGiB * GiB), file], { timeoutMs: 10_000 });
      const r = await run(['losetup', '-f', '--show', file], { timeoutMs: 10_000 });
      const dev = r.stdout.trim();
      if (!/^\/dev\/loop\d+$/.test(dev)) throw new Error(`losetup printed ${dev}`);
      pvs.push({ dev, file });
      return dev;
    },
    async cleanup() {
      // Our drivers' loop devices (LV activations on every "host").
      for (const d of drivers.values()) {
        for (const vg of await d.activeVgs()) {
          for (const lv of await d.activeLvs(vg)) {
            const dev = await d.attached(vg, lv);
            if (dev) await detachIfBacking(dev, d.dataFile(vg, lv));
          }
        }
      }
      // VGs left on our PVs (activation=0: nothing to deactivate), then the PVs' loop devices.
      for (const pv of pvs) {
        const lvm = new Lvm([pv.dev], { activation: false, timeoutMs: 30_000 });
        const r = await lvm.cmd('pvs', ['--noheadings', '-o', 'vg_name', pv.dev], [0, 5]).catch(() => undefined);
        const vg = r?.stdout.trim();
        if (vg) await lvm.vgremove(vg).catch(() => {});
        await lvm.pvremove([pv.dev]).catch(() => {});
        await detachIfBacking(pv.dev, pv.file);
      }
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/** Detaches a loop device only if it still backs `file` (it may have been reused by someone else). */
export async function detachIfBacking(dev: string, file: string): Promise<void> {
  try {
    const r = await run(['losetup', '-n', '-O', 'BACK-FILE', dev], { timeoutMs: 10_000 });
    if (r.stdout.trim() !== file) return;
    await run(['losetup', '-d', dev], { timeoutMs: 10_000 });
  } catch {
    // not attached
  }
}

/** Size the kernel reports for a block device (follows symlinks). */
export async function blockSize(path: string): Promise<number> {
  const r = await run(['blockdev', '--getsize64', path], { timeoutMs: 10_000 });
  return Number(r.stdout.trim());
}
