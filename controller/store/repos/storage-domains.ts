// Storage domains of a cluster. The first one created in a cluster is its pool master.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { DomainSpec, DomainStatus, StorageDomain } from '../../model/storage.js';
import { flag, insertUnique, isSet, json, parseJson } from '../codec.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { KeyedRepo } from './by-id.js';
import type { Database, StorageDomainRow } from '../tables.js';

function toDomain(r: Selectable<StorageDomainRow>): StorageDomain {
  return {
    id: r.id, clusterId: r.cluster_id, name: r.name, spec: parseJson<DomainSpec>(r.spec, { type: 'file', root: '' }), master: isSet(r.master),
    status: r.status as DomainStatus, sizeBytes: r.size_bytes, freeBytes: r.free_bytes,
    hosts: parseJson<Record<string, string>>(r.host_status, {}), createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class StorageDomainsRepo extends KeyedRepo<StorageDomain> {
  constructor(db: Kysely<Database>, now: () => number) {
    super(db, now, 'storage_domains', 'storage domain', toDomain, ['created_at', 'name']);
  }

  /** Inside a transaction: whether this is the cluster's first domain decides `master`. */
  async create(d: { clusterId: string; name: string; spec: DomainSpec }): Promise<StorageDomain> {
    const existing = await this.db.selectFrom('storage_domains').select('id').where('cluster_id', '=', d.clusterId).limit(1).execute();
    const t = this.now();
    const row: StorageDomainRow = {
      id: randomUUID(), cluster_id: d.clusterId, name: d.name, kind: d.spec.type, spec: json(d.spec), master: flag(existing.length === 0),
      status: 'pending', size_bytes: null, free_bytes: null, host_status: '{}', created_at: t, updated_at: t,
    };
    await insertUnique(() => this.db.insertInto('storage_domains').values(row).execute(),
      () => new ConflictError(`the cluster has a storage domain named ${d.name}`, { field: 'name' }));
    return toDomain(row);
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
