// Hibernated VMs: which VM is being suspended or is suspended, and where its state volume is.
import type { Kysely, Selectable } from 'kysely';
import type { HibernationState, StateVolumeRef, VmHibernation } from '../../model/hibernation.js';
import { found } from '../codec.js';
import type { Database, VmHibernationRow } from '../tables.js';

function toHibernation(r: Selectable<VmHibernationRow>): VmHibernation {
  return {
    vmId: r.vm_id, state: r.state as HibernationState, hostId: r.host_id, jobId: r.job_id, snapshotId: r.snapshot_id ?? null, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
    stateVolume: { domainId: r.domain_id, imageId: r.image_id, volumeId: r.volume_id, sizeBytes: Number(r.size_bytes) },
  };
}

export class VmHibernationsRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  async find(vmId: string): Promise<VmHibernation | undefined> {
    const r = await this.db.selectFrom('vm_hibernations').selectAll().where('vm_id', '=', vmId).executeTakeFirst();
    return r && toHibernation(r);
  }

  async listInState(state: HibernationState): Promise<VmHibernation[]> {
    return (await this.db.selectFrom('vm_hibernations').selectAll().where('state', '=', state).execute()).map(toHibernation);
  }

  async get(vmId: string): Promise<VmHibernation> {
    return found(await this.find(vmId), 'hibernated VM', vmId);
  }

  /** A suspend begins (or a resumed one goes on): the volume it writes to, chosen before it is made. */
  async begin(vmId: string, jobId: string, v: StateVolumeRef, hostId: string | null, o: { state?: HibernationState; snapshotId?: string } = {}): Promise<VmHibernation> {
    const t = this.now();
    const existing = await this.find(vmId);
    if (existing) return existing;
    await this.db.insertInto('vm_hibernations').values({
      vm_id: vmId, state: o.state ?? 'saving', ...(o.snapshotId !== undefined && { snapshot_id: o.snapshotId }), domain_id: v.domainId, image_id: v.imageId, volume_id: v.volumeId, size_bytes: v.sizeBytes,
      host_id: hostId, job_id: jobId, created_at: t, updated_at: t,
    }).execute();
    return (await this.find(vmId))!;
  }

  async setState(vmId: string, state: HibernationState, hostId: string | null): Promise<void> {
    await this.db.updateTable('vm_hibernations').set({ state, host_id: hostId, updated_at: this.now() }).where('vm_id', '=', vmId).execute();
  }

  async delete(vmId: string): Promise<void> {
    await this.db.deleteFrom('vm_hibernations').where('vm_id', '=', vmId).execute();
  }
}
