// A VM's snapshots and, per disk, their volumes.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { StateVolumeRef } from '../../model/hibernation.js';
import type { SnapshotDisk, SnapshotStatus, VmSnapshot } from '../../model/snapshots.js';
import { flag, found, json, parseJson } from '../codec.js';
import type { Database, VmSnapshotRow, VmSnapshotVolumeRow } from '../tables.js';

function toSnapshot(r: Selectable<VmSnapshotRow>, vols: Selectable<VmSnapshotVolumeRow>[]): VmSnapshot {
  return {
    id: r.id, vmId: r.vm_id, description: r.description, status: r.status as SnapshotStatus, memory: r.memory !== 0,
    memoryVolume: parseJson<StateVolumeRef | null>(r.memory_volume, null),
    vmRunning: r.vm_running === null ? null : r.vm_running !== 0, frozen: r.frozen === null ? null : r.frozen !== 0,
    warnings: parseJson<string[]>(r.warnings, []), jobId: r.job_id, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
    disks: vols.map((v) => ({ diskId: v.disk_id, domainId: v.domain_id, imageId: v.image_id, volumeId: v.volume_id, childId: v.child_id })),
  };
}

export class VmSnapshotsRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  async create(s: { vmId: string; description: string; memory: boolean }): Promise<VmSnapshot> {
    const t = this.now();
    const id = randomUUID();
    await this.db.insertInto('vm_snapshots').values({
      id, vm_id: s.vmId, description: s.description, status: 'creating', memory: flag(s.memory), memory_volume: null, vm_running: null, frozen: null,
      warnings: '[]', job_id: null, created_at: t, updated_at: t,
    }).execute();
    return this.get(id);
  }

  async find(id: string): Promise<VmSnapshot | undefined> {
    const r = await this.db.selectFrom('vm_snapshots').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    return toSnapshot(r, await this.db.selectFrom('vm_snapshot_volumes').selectAll().where('snapshot_id', '=', id).orderBy('disk_id').execute());
  }

  async get(id: string, field?: string): Promise<VmSnapshot> {
    return found(await this.find(id), 'snapshot', id, field);
  }

  /** The VM's snapshots, oldest first. */
  async list(vmId: string): Promise<VmSnapshot[]> {
    const rows = await this.db.selectFrom('vm_snapshots').selectAll().where('vm_id', '=', vmId).orderBy('created_at').orderBy('id').execute();
    if (rows.length === 0) return [];
    const vols = await this.db.selectFrom('vm_snapshot_volumes').selectAll().where('snapshot_id', 'in', rows.map((r) => r.id)).orderBy('disk_id').execute();
    return rows.map((r) => toSnapshot(r, vols.filter((v) => v.snapshot_id === r.id)));
  }

  /** The volumes it makes, chosen before they are made (a resumed job makes the same ones). */
  async setVolumes(id: string, disks: readonly SnapshotDisk[], memoryVolume: StateVolumeRef | null): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('vm_snapshot_volumes').where('snapshot_id', '=', id).execute();
      for (const d of disks) {
        await trx.insertInto('vm_snapshot_volumes').values({
          snapshot_id: id, disk_id: d.diskId, domain_id: d.domainId, image_id: d.imageId, volume_id: d.volumeId, child_id: d.childId,
        }).execute();
      }
      await trx.updateTable('vm_snapshots').set({ memory_volume: memoryVolume ? json(memoryVolume) : null, updated_at: this.now() }).where('id', '=', id).execute();
    });
  }

  /** The job that takes it (made right after the record, which it names). */
  async setJob(id: string, jobId: string): Promise<void> {
    await this.db.updateTable('vm_snapshots').set({ job_id: jobId, updated_at: this.now() }).where('id', '=', id).execute();
  }

  async update(id: string, patch: { status?: SnapshotStatus; vmRunning?: boolean; frozen?: boolean | null; warnings?: string[] }): Promise<void> {
    await this.db.updateTable('vm_snapshots').set({
      updated_at: this.now(),
      ...(patch.status !== undefined && { status: patch.status }),
      ...(patch.vmRunning !== undefined && { vm_running: flag(patch.vmRunning) }),
      ...(patch.frozen !== undefined && { frozen: patch.frozen === null ? null : flag(patch.frozen) }),
      ...(patch.warnings !== undefined && { warnings: json(patch.warnings) }),
    }).where('id', '=', id).execute();
  }

  /** One disk's volumes of a snapshot moved (a merge renamed them, a restore put a new volume on top). */
  async setDiskVolumes(id: string, diskId: string, v: { volumeId?: string; childId?: string }): Promise<void> {
    await this.db.updateTable('vm_snapshot_volumes').set({ ...(v.volumeId && { volume_id: v.volumeId }), ...(v.childId && { child_id: v.childId }) })
      .where('snapshot_id', '=', id).where('disk_id', '=', diskId).execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('vm_snapshot_volumes').where('snapshot_id', '=', id).execute();
      await trx.deleteFrom('vm_snapshots').where('id', '=', id).execute();
    });
  }
}
