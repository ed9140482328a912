// Clusters: created by the admin (and `default` at first start); the SPM and pool fields are
// written by the controller's storage logic.
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { DEFAULT_POLICY, POLICY_DEFAULTS, type Cluster, type Policy, type Thresholds } from '../../model/clusters.js';
import { UUID_RE } from '../../model/common.js';
import { found, insertUnique, json, parseJson } from '../codec.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { ClusterRow, Database } from '../tables.js';

function toCluster(r: Selectable<ClusterRow>): Cluster {
  return {
    id: r.id, name: r.name, policy: r.policy as Policy, thresholds: parseJson<Thresholds>(r.thresholds, {}),
    poolId: r.pool_id, spmHostId: r.spm_host_id, spmLver: r.spm_lver, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class ClustersRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  async create(input: { name: string; policy?: Policy; thresholds?: Thresholds }): Promise<Cluster> {
    const policy = input.policy ?? DEFAULT_POLICY;
    const t = this.now();
    const row: ClusterRow = {
      id: randomUUID(), name: input.name, policy, thresholds: json({ ...POLICY_DEFAULTS[policy], ...input.thresholds }),
      pool_id: null, spm_host_id: null, spm_lver: null, created_at: t, updated_at: t,
    };
    await insertUnique(() => this.db.insertInto('clusters').values(row).execute(), () => new ConflictError(`a cluster named ${input.name} exists`, { field: 'name' }));
    return toCluster(row);
  }

  async find(idOrName: string): Promise<Cluster | undefined> {
    const column = UUID_RE.test(idOrName) ? 'id' : 'name';
    const r = await this.db.selectFrom('clusters').selectAll().where(column, '=', idOrName).executeTakeFirst();
    return r && toCluster(r);
  }

  /** By id or by name; NotFound otherwise. */
  async get(idOrName: string, field?: string): Promise<Cluster> {
    return found(await this.find(idOrName), 'cluster', idOrName, field);
  }

  async list(): Promise<Cluster[]> {
    return (await this.db.selectFrom('clusters').selectAll().orderBy('name').execute()).map(toCluster);
  }

  /** Changing the policy without thresholds takes the new policy's defaults. */
  async update(idOrName: string, patch: { policy?: Policy; thresholds?: Thresholds }): Promise<Cluster> {
    const c = await this.get(idOrName);
    const policy = patch.policy ?? c.policy;
    const base = patch.policy && patch.policy !== c.policy ? POLICY_DEFAULTS[policy] : c.thresholds;
    const thresholds = { ...base, ...patch.thresholds };
    await this.db.updateTable('clusters').set({ policy, thresholds: json(thresholds), updated_at: this.now() }).where('id', '=', c.id).execute();
    return this.get(c.id);
  }

  async setSpm(id: string, spm: { hostId: string | null; lver: number | null }): Promise<void> {
    const r = await this.db.updateTable('clusters').set({ spm_host_id: spm.hostId, spm_lver: spm.lver, updated_at: this.now() })
      .where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('cluster', id);
  }

  async setPool(id: string, poolId: string): Promise<void> {
    const r = await this.db.updateTable('clusters').set({ pool_id: poolId, updated_at: this.now() }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('cluster', id);
  }
}
