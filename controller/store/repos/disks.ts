// Disks: one image with one volume on a storage domain; created and removed by SPM jobs.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Disk, DiskStatus, Provisioning } from '../../model/storage.js';
import { found } from '../codec.js';
import { ConflictError, NotFoundError, isForeignKeyViolation } from '../errors.js';
import type { Database, DiskRow } from '../tables.js';

function toDisk(r: Selectable<DiskRow>, vmId: string | null): Disk {
  return {
    id: r.id, name: r.name, storageDomainId: r.storage_domain_id, sizeBytes: r.size_bytes, provisioning: r.provisioning as Provisioning,
    status: r.status as DiskStatus, imageId: r.image_id, volumeId: r.volume_id, vmId, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class DisksRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  async create(d: { name: string; storageDomainId: string; sizeBytes: number; provisioning: Provisioning; templateId?: string }): Promise<Disk> {
    const t = this.now();
    const row: DiskRow = {
      id: randomUUID(), name: d.name, storage_domain_id: d.storageDomainId, size_bytes: d.sizeBytes, provisioning: d.provisioning,
      status: 'pending', image_id: randomUUID(), volume_id: randomUUID(), created_at: t, updated_at: t,
      template_id: d.templateId ?? null,
    };
    try {
      await this.db.insertInto('disks').values(row).execute();
    } catch (e) {
      if (isForeignKeyViolation(e)) throw new NotFoundError('storage domain', d.storageDomainId, 'storageDomainId');
      throw e;
    }
    return toDisk(row, null);
  }

  private async vmOf(id: string): Promise<string | null> {
    const r = await this.db.selectFrom('vm_disks').select('vm_id').where('disk_id', '=', id).executeTakeFirst();
    return r?.vm_id ?? null;
  }

  async find(id: string): Promise<Disk | undefined> {
    const r = await this.db.selectFrom('disks').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toDisk(r, await this.vmOf(id));
  }

  async get(id: string, field?: string): Promise<Disk> {
    return found(await this.find(id), 'disk', id, field);
  }

  async list(): Promise<Disk[]> {
    const rows = await this.db.selectFrom('disks').leftJoin('vm_disks', 'vm_disks.disk_id', 'disks.id')
      .selectAll('disks').select('vm_disks.vm_id').orderBy('disks.created_at').orderBy('disks.id').execute();
    return rows.map((r) => toDisk(r, r.vm_id ?? null));
  }

  async setStatus(id: string, status: DiskStatus): Promise<void> {
    const r = await this.db.updateTable('disks').set({ status, updated_at: this.now() }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('disk', id);
  }

  /**
   * Marks the disk for deletion (its SPM job removes the volume, then the row); 409 while a VM
   * names it or a deletion is already under way.
   */
  async markDeleting(id: string): Promise<Disk> {
    const d = await this.get(id);
    if (d.vmId) throw new ConflictError(`disk ${d.name} belongs to VM ${d.vmId}`, { vmId: d.vmId });
    const r = await this.db.updateTable('disks').set({ status: 'deleting', updated_at: this.now() })
      .where('id', '=', id).where('status', '!=', 'deleting').executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new ConflictError(`disk ${d.name} is being deleted already`, { status: 'deleting' });
    return { ...d, status: 'deleting' };
  }

  /** The disk's current leaf volume moved (a snapshot made a new one, a merge or a restore another). */
  async setVolume(id: string, volumeId: string): Promise<void> {
    const r = await this.db.updateTable('disks').set({ volume_id: volumeId, updated_at: this.now() }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('disk', id);
  }

  /**
   * The disk's image now lives on another domain (Image.move, its chain collapsed into one volume
   * with the same ids): it no longer depends on a template's volume.
   */
  async relocate(id: string, storageDomainId: string): Promise<void> {
    const r = await this.db.updateTable('disks').set({ storage_domain_id: storageDomainId, template_id: null, updated_at: this.now() }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('disk', id);
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('disks').where('id', '=', id).execute();
  }
}
