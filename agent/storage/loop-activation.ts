// The `loop` activation driver, for hosts without device-mapper (the lab).
//
// Each LV's data is the file <dataDir>/<vg>/<lv>. dataDir is shared by every
// host (it stands in for the SAN), so two hosts that activate the same LV see
// the same bytes: each host attaches the file to a loop device of its own, and
// both loop devices go through the file's one page cache.
//
// A host's activations are symlinks <linkDir>/<vg>/<lv> → /dev/loopN; linkDir
// is host-local (/run/...). The symlink is the volume's path (like /dev/VG/LV),
// so a qcow2 backing name "<parent volUUID>" resolves next to it. A symlink is
// trusted only if /sys/block/loopN/loop/backing_file still names our file.
//
// Sizes: the file is sized to the LV (LVM metadata, read with lvs). It only
// ever grows (`truncate -s >SIZE`): two hosts refreshing at once can never
// shrink it under a guest. refresh = grow the file to the LV size, then
// `losetup -c` so the loop device sees the new size.
import { mkdir, readFile, readlink, readdir, realpath, rename, rm, stat, symlink, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { silentLogger, type Logger } from '../log.js';
import type { ActivationDriver } from './activation.js';
import { StorageError } from './errors.js';
import { run as defaultRunner, type Runner } from './exec.js';
import { KeyedLock } from './keyed-lock.js';
import type { Lvm } from './lvm.js';

export interface LoopDriverOptions {
  /** Shared by all hosts: LV data files live at <dataDir>/<vg>/<lv>. */
  dataDir: string;
  /** Host-local: activation symlinks live at <linkDir>/<vg>/<lv>. */
  linkDir: string;
  timeoutMs: number;
  runner?: Runner;
  log?: Logger;
}

export class LoopActivationDriver implements ActivationDriver {
  readonly kind = 'loop' as const;
  private readonly runner: Runner;
  private readonly log: Logger;
  private readonly locks = new KeyedLock();

  constructor(private readonly o: LoopDriverOptions) {
    this.runner = o.runner ?? defaultRunner;
    this.log = o.log ?? silentLogger;
  }

  path(vg: string, lv: string): string {
    return join(this.o.linkDir, vg, lv);
  }

  dataFile(vg: string, lv: string): string {
    return join(this.o.dataDir, vg, lv);
  }

  private exec(argv: string[]) {
    return this.runner(argv, { timeoutMs: this.o.timeoutMs, log: this.log });
  }

  async created(_lvm: Lvm, vg: string, lv: string, sizeBytes: number): Promise<void> {
    const file = this.dataFile(vg, lv);
    await mkdir(dirname(file), { recursive: true });
    // A leftover file of an earlier LV of the same name must not leak its data into the new one.
    await rm(file, { force: true });
    await this.exec(['truncate', '-s', String(sizeBytes), file]);
  }

  async removed(lvm: Lvm, vg: string, lvs: readonly string[]): Promise<void> {
    await this.deactivate(lvm, vg, lvs);
    // A loop device with no link (an agent killed between losetup and the link) would keep the file's space forever.
    for (const lv of lvs) await this.detachUnlinked(vg, lv);
    await Promise.all(lvs.map((lv) => rm(this.dataFile(vg, lv), { force: true })));
  }

  /** Detaches every loop device still backed by the LV's data file (the LV is gone: nothing may use it). */
  private async detachUnlinked(vg: string, lv: string): Promise<void> {
    const file = this.dataFile(vg, lv);
    const names = new Set([file, await realpath(file).catch(() => file), join(await realpath(this.o.dataDir).catch(() => this.o.dataDir), vg, lv)]);
    for (const dev of (await readdir('/sys/block').catch(() => [] as string[])).filter((d) => /^loop\d+$/.test(d))) {
      const backing = (await readFile(`/sys/block/${dev}/loop/backing_file`, 'utf8').catch(() => '')).trim().replace(/ \(deleted\)$/, '');
      if (!names.has(backing)) continue;
      await this.exec(['losetup', '-d', `/dev/${dev}`]).catch((e: unknown) => this.log.warn('stray loop device not detached', { vg, lv, dev, err: e }));
      this.log.warn('stray loop device of a removed LV detached', { vg, lv, dev });
    }
  }

  async activate(lvm: Lvm, vg: string, lvs: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!lvs.length) return out;
    const sizes = await this.lvSizes(lvm, vg, lvs);
    await Promise.all(lvs.map((lv) => this.locks.with(`${vg}/${lv}`, async () => {
      const size = sizes.get(lv)!;
      const file = this.dataFile(vg, lv);
      const grew = await this.growFile(file, size, true);
      const dev = await this.attached(vg, lv);
      if (dev) {
        if (grew) await this.exec(['losetup', '-c', dev]);
      } else {
        const r = await this.exec(['losetup', '-f', '--show', file]);
        const newDev = r.stdout.trim();
        if (!/^\/dev\/loop\d+$/.test(newDev)) throw new StorageError('internalError', `losetup printed ${JSON.stringify(newDev)}`);
        await this.link(vg, lv, newDev);
        this.log.debug('loop activated', { vg, lv, dev: newDev });
      }
      out.set(lv, this.path(vg, lv));
    })));
    return out;
  }

  async deactivate(_lvm: Lvm, vg: string, lvs: readonly string[]): Promise<void> {
    await Promise.all(lvs.map((lv) => this.locks.with(`${vg}/${lv}`, async () => {
      const dev = await this.attached(vg, lv);
      // A device still open (a running guest) is detached by the kernel at its last close (autoclear).
      if (dev) await this.exec(['losetup', '-d', dev]);
      await unlink(this.path(vg, lv)).catch(() => {});
    })));
  }

  async refresh(lvm: Lvm, vg: string, lv: string): Promise<number> {
    const size = (await this.lvSizes(lvm, vg, [lv])).get(lv)!;
    return this.locks.with(`${vg}/${lv}`, async () => {
      await this.growFile(this.dataFile(vg, lv), size, false);
      const dev = await this.attached(vg, lv);
      if (!dev) return size;
      let seen = await devSize(dev);
      if (seen < size) {
        await this.exec(['losetup', '-c', dev]);
        seen = await devSize(dev);
      }
      return seen;
    });
  }

  async isActive(vg: string, lv: string): Promise<boolean> {
    return (await this.attached(vg, lv)) !== undefined;
  }

  /** VGs this host has (or had) activations in. */
  async activeVgs(): Promise<string[]> {
    return (await readdir(this.o.linkDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
  }

  /** LVs this host has active in the VG. */
  async activeLvs(vg: string): Promise<string[]> {
    const names = await readdir(join(this.o.linkDir, vg)).catch(() => [] as string[]);
    const out: string[] = [];
    for (const n of names) if (!n.startsWith('.') && (await this.attached(vg, n))) out.push(n);
    return out;
  }

  async removeVg(lvm: Lvm, vg: string): Promise<void> {
    const names = await readdir(join(this.o.linkDir, vg)).catch(() => [] as string[]);
    await this.deactivate(lvm, vg, names.filter((n) => !n.startsWith('.')));
    await rm(join(this.o.linkDir, vg), { recursive: true, force: true });
    await rm(join(this.o.dataDir, vg), { recursive: true, force: true });
  }

  /** The loop device this host attached for the LV, if the link still points at a device backed by our file. */
  async attached(vg: string, lv: string): Promise<string | undefined> {
    const link = this.path(vg, lv);
    const dev = await readlink(link).catch(() => undefined);
    if (!dev) return undefined;
    // The file may be gone (another host removed the LV): the kernel then shows "<path> (deleted)".
    const backing = (await readFile(`/sys/block/${basename(dev)}/loop/backing_file`, 'utf8').catch(() => '')).trim().replace(/ \(deleted\)$/, '');
    const file = this.dataFile(vg, lv);
    if (backing && (backing === file || backing === await realpath(file).catch(() => undefined)
      || backing === join(await realpath(this.o.dataDir).catch(() => this.o.dataDir), vg, lv))) return dev;
    this.log.warn('stale loop activation link removed', { vg, lv, dev, backing });
    await unlink(link).catch(() => {});
    return undefined;
  }

  private async link(vg: string, lv: string, dev: string): Promise<void> {
    const link = this.path(vg, lv);
    await mkdir(dirname(link), { recursive: true });
    const tmp = `${dirname(link)}/.${lv}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    await symlink(dev, tmp);
    await rename(tmp, link);
  }

  /** Grows the file to at least `size`; creates it if `create`. Returns whether it changed. */
  private async growFile(file: string, size: number, create: boolean): Promise<boolean> {
    const st = await stat(file).catch(() => undefined);
    if (st && st.size >= size) return false;
    if (!st) {
      if (!create) return false;
      this.log.warn('loop data file missing; creating it empty', { file, size });
      await mkdir(dirname(file), { recursive: true });
    }
    await this.exec(['truncate', '-s', `>${size}`, file]);
    return true;
  }

  private async lvSizes(lvm: Lvm, vg: string, lvs: readonly string[]): Promise<Map<string, number>> {
    const all = lvs.length === 1 ? await lvm.lvs(vg, lvs[0]) : await lvm.lvs(vg);
    const sizes = new Map(all.map((l) => [l.name, l.size]));
    for (const lv of lvs) if (!sizes.has(lv)) throw new StorageError('unavailable', `LV ${vg}/${lv} does not exist`, 'volumeDoesNotExist', { data: { vg, lv } });
    return sizes;
  }
}

/** Size in bytes the kernel reports for a block device. */
export async function devSize(dev: string): Promise<number> {
  const sectors = await readFile(`/sys/block/${basename(dev)}/size`, 'utf8');
  return Number(sectors.trim()) * 512;
}
