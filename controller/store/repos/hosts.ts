// Hosts: recorded at enrollment (Installing); status, contact and stats are written by the health
// monitor, spmPriority by the admin.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { DEFAULT_SPM_PRIORITY, MAX_POOL_HOST_ID, type Host, type HostStats, type HostStatus } from '../../model/hosts.js';
import { insertUnique, json, parseJson } from '../codec.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { KeyedRepo } from './by-id.js';
import type { Database, HostRow } from '../tables.js';

function toHost(r: Selectable<HostRow>): Host {
  return {
    id: r.id, name: r.name, address: r.address, port: r.port, clusterId: r.cluster_id, status: r.status as HostStatus,
    spmPriority: r.spm_priority, poolHostId: r.pool_host_id, certFingerprint: r.cert_fingerprint, lastContact: r.last_contact,
    reasons: parseJson<string[]>(r.reasons, []), stats: parseJson<HostStats | null>(r.stats, null),
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export interface NewHost {
  id?: string;
  name: string;
  address: string;
  port: number;
  clusterId: string;
  certFingerprint: string;
}

export class HostsRepo extends KeyedRepo<Host> {
  constructor(db: Kysely<Database>, now: () => number) {
    super(db, now, 'hosts', 'host', toHost, ['name']);
  }

  /**
   * Records an enrolled host (Installing) with the lowest pool host id free in its cluster.
   * Run it inside the enrollment transaction; a concurrent enrollment that took the same id
   * makes the unique constraint fail: a 409, and enrolling again (a new token) picks the next id.
   */
  async create(h: NewHost): Promise<Host> {
    const used = await this.db.selectFrom('hosts').select('pool_host_id').where('cluster_id', '=', h.clusterId)
      .where('pool_host_id', 'is not', null).execute();
    const taken = new Set(used.map((u) => u.pool_host_id));
    let poolHostId = 1;
    while (taken.has(poolHostId)) poolHostId++;
    if (poolHostId > MAX_POOL_HOST_ID) throw new ConflictError(`the cluster has ${MAX_POOL_HOST_ID} hosts, the most a storage pool takes`, { clusterId: h.clusterId });
    const t = this.now();
    const row: HostRow = {
      id: h.id ?? randomUUID(), name: h.name, address: h.address, port: h.port, cluster_id: h.clusterId, status: 'Installing',
      spm_priority: DEFAULT_SPM_PRIORITY, pool_host_id: poolHostId, cert_fingerprint: h.certFingerprint, last_contact: null,
      reasons: '[]', stats: null, created_at: t, updated_at: t,
    };
    await insertUnique(() => this.db.insertInto('hosts').values(row).execute(),
      () => new ConflictError(`a host named ${h.name} exists, or pool host id ${poolHostId} was just taken`, { field: 'name' }));
    return toHost(row);
  }


  async findByName(name: string): Promise<Host | undefined> {
    const r = await this.db.selectFrom('hosts').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toHost(r);
  }



  async setSpmPriority(id: string, spmPriority: number): Promise<Host> {
    const r = await this.db.updateTable('hosts').set({ spm_priority: spmPriority, updated_at: this.now() }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('host', id);
    return this.get(id);
  }

  async setStatus(id: string, status: HostStatus, reasons: string[] = []): Promise<void> {
    const r = await this.db.updateTable('hosts').set({ status, reasons: json(reasons), updated_at: this.now() }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('host', id);
  }

  async recordContact(id: string, at: number, stats: HostStats | null): Promise<void> {
    const r = await this.db.updateTable('hosts').set({ last_contact: at, stats: stats && json(stats), updated_at: this.now() })
      .where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('host', id);
  }

  /** Refuses (409) while a VM runs on the host or is pinned to it. */
  async delete(id: string): Promise<Host> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('hosts').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new NotFoundError('host', id);
      const vms = await trx.selectFrom('vms').select(['id', 'name']).where((eb) => eb.or([eb('host_id', '=', id), eb('pinned_host_id', '=', id)])).execute();
      if (vms.length) {
        throw new ConflictError(`host ${row.name} has ${vms.length} VM(s) running on it or pinned to it`, { vms: vms.map((v) => v.name) });
      }
      await trx.deleteFrom('hosts').where('id', '=', id).execute();
      return toHost(row);
    });
  }
}
