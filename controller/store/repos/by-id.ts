// What every repository of a cluster's table keyed by `id` has: one row by id (or NotFound naming the
// field that referred to it), and the rows of one cluster.
import type { Kysely } from 'kysely';
import { found } from '../codec.js';
import type { Database } from '../tables.js';

type ClusterTable = 'hosts' | 'storage_domains' | 'networks' | 'vms';
type AnyDb = Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the table is a parameter here; callers keep their row types

export abstract class KeyedRepo<M> {
  protected constructor(protected readonly db: Kysely<Database>, protected readonly now: () => number, private readonly table: ClusterTable,
    private readonly kind: string, private readonly map: (row: never) => M, private readonly order: string[]) {}

  async find(id: string): Promise<M | undefined> {
    const r = await (this.db as AnyDb).selectFrom(this.table).selectAll().where('id', '=', id).executeTakeFirst();
    return r && this.map(r as never);
  }

  async get(id: string, field?: string): Promise<M> {
    return found(await this.find(id), this.kind, id, field);
  }

  async list(filter: { clusterId?: string; hostId?: string } = {}): Promise<M[]> {
    let q = (this.db as AnyDb).selectFrom(this.table).selectAll();
    for (const column of this.order) q = q.orderBy(column);
    if (filter.clusterId) q = q.where('cluster_id', '=', filter.clusterId);
    if (filter.hostId) q = q.where('host_id', '=', filter.hostId);
    return (await q.execute()).map((r) => this.map(r as never));
  }
}
