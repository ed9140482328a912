// Slot I/O on a block domain's `metadata` LV (layout in volume-metadata.ts):
// O_DIRECT reads and writes of whole 8 KiB slots through this host's
// activation of the LV, which is made on first use and dropped by close().
import type { Logger } from '../log.js';
import type { ActivationDriver } from './activation.js';
import { directRead, directWrite } from './direct-io.js';
import type { Runner } from './exec.js';
import type { Lvm } from './lvm.js';
import { decodeVolumeMetadata, encodeSlot, SLOT_SIZE, slotOffset, type VolumeMetadata } from './volume-metadata.js';

export class MetadataSlots {
  private path: Promise<string> | undefined;

  constructor(private readonly o: { vg: string; lvm: Lvm; driver: ActivationDriver; timeoutMs: number; runner?: Runner; log: Logger }) {}

  async read(slot: number): Promise<VolumeMetadata> {
    const buf = await this.withLv((path) => directRead(path, slotOffset(slot), SLOT_SIZE, this.io()));
    return decodeVolumeMetadata(buf, { sdUUID: this.o.vg, slot });
  }

  /** undefined clears the slot (all NUL: free). */
  async write(slot: number, md: VolumeMetadata | undefined): Promise<void> {
    const buf = md ? encodeSlot(md) : Buffer.alloc(SLOT_SIZE);
    await this.withLv((path) => directWrite(path, slotOffset(slot), buf, this.io()));
  }

  async close(): Promise<void> {
    if (!this.path) return;
    this.path = undefined;
    await this.o.driver.deactivate(this.o.lvm, this.o.vg, ['metadata']);
  }

  private lv(): Promise<string> {
    this.path ??= this.o.driver.activate(this.o.lvm, this.o.vg, ['metadata']).then((m) => m.get('metadata')!)
      .catch((e: unknown) => { this.path = undefined; throw e; });
    return this.path;
  }

  /** Runs fn on the LV's path; if the activation went away meanwhile, re-activates once and retries. */
  private async withLv<T>(fn: (path: string) => Promise<T>): Promise<T> {
    const path = await this.lv();
    try {
      return await fn(path);
    } catch (e) {
      if (await this.o.driver.isActive(this.o.vg, 'metadata')) throw e;
      this.path = undefined;
      return fn(await this.lv());
    }
  }

  private io() {
    return { timeoutMs: this.o.timeoutMs, log: this.o.log, ...(this.o.runner ? { runner: this.o.runner } : {}) };
  }
}
