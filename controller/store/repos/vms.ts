// VMs: the definition and desired state are ours; status and host are the agent's, as reported.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { DesiredState, Vm, VmSpec } from '../../model/vms.js';
import { insertUnique, json, parseJson } from '../codec.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { KeyedRepo } from './by-id.js';
import type { Database, VmRow } from '../tables.js';

function toVm(r: Selectable<VmRow>): Vm {
  return {
    id: r.id, name: r.name, clusterId: r.cluster_id, spec: parseJson<VmSpec>(r.spec, { memoryMiB: 0 }), desiredState: r.desired_state as DesiredState,
    status: r.status, hostId: r.host_id, memoryReservationMiB: r.memory_reservation_mib, cpuReservation: r.cpu_reservation,
    pinnedHostId: r.pinned_host_id, priority: r.priority, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export type NewVm = Pick<Vm, 'name' | 'clusterId' | 'spec' | 'memoryReservationMiB' | 'cpuReservation' | 'pinnedHostId' | 'priority'>;

export class VmsRepo extends KeyedRepo<Vm> {
  constructor(db: Kysely<Database>, now: () => number) {
    super(db, now, 'vms', 'vm', toVm, ['name']);
  }

  /** Records the VM and claims its disks, all or nothing: a disk another VM has is a 409. */
  async create(v: NewVm): Promise<Vm> {
    const t = this.now();
    const row: VmRow = {
      id: randomUUID(), name: v.name, cluster_id: v.clusterId, spec: json(v.spec), desired_state: 'down', status: 'Down', host_id: null,
      memory_reservation_mib: v.memoryReservationMiB, cpu_reservation: v.cpuReservation, pinned_host_id: v.pinnedHostId,
      priority: v.priority, created_at: t, updated_at: t,
    };
    const diskIds = (v.spec.disks ?? []).map((d) => d.diskId);
    await this.db.transaction().execute(async (trx) => {
      await insertUnique(() => trx.insertInto('vms').values(row).execute(), () => new ConflictError(`a VM named ${v.name} exists`, { field: 'name' }));
      for (const [i, diskId] of diskIds.entries()) {
        const owner = await trx.selectFrom('vm_disks').innerJoin('vms', 'vms.id', 'vm_disks.vm_id').select('vms.name')
          .where('vm_disks.disk_id', '=', diskId).executeTakeFirst();
        if (owner) throw new ConflictError(`disk ${diskId} belongs to VM ${owner.name}`, { field: `spec.disks[${i}].diskId`, vm: owner.name });
        await trx.insertInto('vm_disks').values({ vm_id: row.id, disk_id: diskId }).execute();
      }
    });
    return toVm(row);
  }




  /** Sets the desired state only if it is `from`: two concurrent starts cannot both pass. */
  async transitionDesired(id: string, from: DesiredState, to: DesiredState): Promise<boolean> {
    const r = await this.db.updateTable('vms').set({ desired_state: to, updated_at: this.now() })
      .where('id', '=', id).where('desired_state', '=', from).executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** What the agent reported: status and the host it runs on. */
  async setRuntime(id: string, status: string, hostId: string | null): Promise<void> {
    const r = await this.db.updateTable('vms').set({ status, host_id: hostId, updated_at: this.now() }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('vm', id);
  }

  /** Removes the definition (its disks are released, not deleted); 409 unless it is Down and meant to be. */
  async delete(id: string): Promise<Vm> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.selectFrom('vms').selectAll().where('id', '=', id).executeTakeFirst();
      if (!r) throw new NotFoundError('vm', id);
      if (r.status !== 'Down' || r.desired_state !== 'down' || r.host_id !== null) {
        throw new ConflictError(`VM ${r.name} is ${r.status} (desired ${r.desired_state}); stop it first`, { status: r.status, desiredState: r.desired_state });
      }
      await trx.deleteFrom('vm_disks').where('vm_id', '=', id).execute();
      await trx.deleteFrom('vms').where('id', '=', id).execute();
      return toVm(r);
    });
  }
}
