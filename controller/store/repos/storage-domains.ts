// Storage domains of a cluster. The first one created in a cluster is its pool master.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { DomainSpec, DomainStatus, StorageDomain } from '../../model/storage.js';
import { flag, isSet, json, parseJson } from '../codec.js';
import { ConflictError, NotFoundError, isUniqueViolation } from '../errors.js';
import type { Database, StorageDomainRow } from '../tables.js';

function toDomain(r: Selectable<StorageDomainRow>): StorageDomain {
  return {
    id: r.id, clusterId: r.cluster_id, name: r.name, spec: parseJson<DomainSpec>(r.spec, { type: 'file', root: '' }), master: isSet(r.master),
    status: r.status as DomainStatus, sizeBytes: r.size_bytes, freeBytes: r.free_bytes,
    hosts: parseJson<Record<string, string>>(r.host_status, {}), createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class StorageDomainsRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  /** Inside a transaction: whether this is the cluster's first domain decides `master`. */
  async create(d: { clusterId: string; name: string; spec: DomainSpec }): Promise<StorageDomain> {
    const existing = await this.db.selectFrom('storage_domains').select('id').where('cluster_id', '=', d.clusterId).limit(1).execute();
    const t = this.now();
    const row: StorageDomainRow = {
      id: randomUUID(), cluster_id: d.clusterId, name: d.name, kind: d.spec.type, spec: json(d.spec), master: flag(existing.length === 0),
      status: 'pending', size_bytes: null, free_bytes: null, host_status: '{}', created_at: t, updated_at: t,
    };
    try {
      await this.db.insertInto('storage_domains').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new ConflictError(`the cluster has a storage domain named ${d.name}`, { field: 'name' }, { cause: e });
      throw e;
    }
    return toDomain(row);
  }

  async find(id: string): Promise<StorageDomain | undefined> {
    const r = await this.db.selectFrom('storage_domains').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toDomain(r);
  }

  async get(id: string, field?: string): Promise<StorageDomain> {
    const d = await this.find(id);
    if (!d) throw new NotFoundError('storage domain', id, field);
    return d;
  }

  async list(filter: { clusterId?: string } = {}): Promise<StorageDomain[]> {
    let q = this.db.selectFrom('storage_domains').selectAll().orderBy('created_at').orderBy('name');
    if (filter.clusterId) q = q.where('cluster_id', '=', filter.clusterId);
    return (await q.execute()).map(toDomain);
  }

  async update(id: string, patch: { status?: DomainStatus; sizeBytes?: number | null; freeBytes?: number | null; hosts?: Record<string, string> }): Promise<void> {
    const r = await this.db.updateTable('storage_domains').set({
      ...(patch.status !== undefined && { status: patch.status }),
      ...(patch.sizeBytes !== undefined && { size_bytes: patch.sizeBytes }),
      ...(patch.freeBytes !== undefined && { free_bytes: patch.freeBytes }),
      ...(patch.hosts !== undefined && { host_status: json(patch.hosts) }),
      updated_at: this.now(),
    }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('storage domain', id);
  }
}
