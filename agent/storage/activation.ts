// Block volume activation: how a host gets at an LV's data. The LVM metadata
// work (lvcreate, lvextend, tags) is always real lvm2; activation is a driver:
//   lvm   real hosts: lvchange -ay/-an/--refresh, the device is /dev/VG/LV.
//   loop  hosts without device-mapper (the lab): the LV's data is a file in a
//         directory every host shares (the "SAN"), attached with losetup.
//         See loop-activation.ts.
import { access } from 'node:fs/promises';
import { silentLogger, type Logger } from '../log.js';
import { StorageCommandError } from './errors.js';
import { run as defaultRunner, type Runner } from './exec.js';
import type { Lvm } from './lvm.js';

export type ActivationKind = 'lvm' | 'loop';

export interface ActivationDriver {
  readonly kind: ActivationKind;
  /** The path a volume is used through once active; the same for every LV of a VG's folder, so relative qcow2 backing names resolve. */
  path(vg: string, lv: string): string;
  /** Right after lvcreate (SPM): make the new LV's data exist, sized to the LV. */
  created(lvm: Lvm, vg: string, lv: string, sizeBytes: number): Promise<void>;
  /** Right after lvremove (SPM): drop what the driver kept for these LVs. */
  removed(lvm: Lvm, vg: string, lvs: readonly string[]): Promise<void>;
  /** Activates LVs on this host; returns lv → path. Activating an active LV is a no-op. */
  activate(lvm: Lvm, vg: string, lvs: readonly string[]): Promise<Map<string, string>>;
  /** Deactivates LVs on this host. An LV still in use stays active (logged, not an error). */
  deactivate(lvm: Lvm, vg: string, lvs: readonly string[]): Promise<void>;
  /** Makes this host see the LV's current size (after an lvextend elsewhere). Returns the size in bytes this host now sees. */
  refresh(lvm: Lvm, vg: string, lv: string): Promise<number>;
  isActive(vg: string, lv: string): Promise<boolean>;
  /** Domain removal: drop everything the driver keeps for the VG. */
  removeVg(lvm: Lvm, vg: string): Promise<void>;
}

export interface LvmDriverOptions {
  timeoutMs: number;
  runner?: Runner;
  log?: Logger;
  /** Where LVM puts device nodes (default /dev). */
  devDir?: string;
}

/** The real driver: device-mapper through lvchange. */
export class LvmActivationDriver implements ActivationDriver {
  readonly kind = 'lvm' as const;
  private readonly runner: Runner;
  private readonly log: Logger;

  constructor(private readonly o: LvmDriverOptions) {
    this.runner = o.runner ?? defaultRunner;
    this.log = o.log ?? silentLogger;
  }

  path(vg: string, lv: string): string {
    return `${this.o.devDir ?? '/dev'}/${vg}/${lv}`;
  }

  async created(): Promise<void> { /* an LV's data is the LV */ }
  async removed(): Promise<void> { /* lvremove removed it */ }
  async removeVg(): Promise<void> { /* nothing kept outside LVM */ }

  async activate(lvm: Lvm, vg: string, lvs: readonly string[]): Promise<Map<string, string>> {
    if (lvs.length) await lvm.lvchange(vg, lvs, ['--activate', 'y', '--ignoreactivationskip']);
    return new Map(lvs.map((lv) => [lv, this.path(vg, lv)]));
  }

  async deactivate(lvm: Lvm, vg: string, lvs: readonly string[]): Promise<void> {
    if (!lvs.length) return;
    try {
      await lvm.lvchange(vg, lvs, ['--activate', 'n']);
    } catch (e) {
      // VDSM does the same: an LV another user still holds open (a shared template base) stays active.
      if (e instanceof StorageCommandError && /in use|is open/i.test(e.stderr)) {
        this.log.warn('LV still in use; left active', { vg, lvs, stderr: e.stderr.trim().slice(-500) });
        return;
      }
      throw e;
    }
  }

  async refresh(lvm: Lvm, vg: string, lv: string): Promise<number> {
    await lvm.lvchange(vg, [lv], ['--refresh']);
    const r = await this.runner(['blockdev', '--getsize64', this.path(vg, lv)], { timeoutMs: this.o.timeoutMs, log: this.log });
    return Number(r.stdout.trim());
  }

  async isActive(vg: string, lv: string): Promise<boolean> {
    return access(this.path(vg, lv)).then(() => true, () => false);
  }
}
