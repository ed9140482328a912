// Enrollment tokens: only a hash of the secret is stored; a token is claimed once, atomically.
import type { Kysely, Selectable } from 'kysely';
import type { EnrollmentToken } from '../../model/enrollment.js';
import { found } from '../codec.js';
import type { Database, EnrollmentTokenRow } from '../tables.js';

function toToken(r: Selectable<EnrollmentTokenRow>): EnrollmentToken {
  return {
    id: r.id, hostName: r.host_name, address: r.address, port: r.port, clusterId: r.cluster_id, expiresAt: r.expires_at,
    usedAt: r.used_at, hostId: r.host_id, createdAt: r.created_at,
  };
}

export interface StoredToken extends EnrollmentToken {
  secretHash: string;
}

export class TokensRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  async create(t: { id: string; secretHash: string; hostName: string; address: string; port: number; clusterId: string; expiresAt: number }): Promise<EnrollmentToken> {
    const row: EnrollmentTokenRow = {
      id: t.id, secret_hash: t.secretHash, host_name: t.hostName, address: t.address, port: t.port, cluster_id: t.clusterId,
      expires_at: t.expiresAt, used_at: null, host_id: null, created_at: this.now(),
    };
    await this.db.insertInto('enrollment_tokens').values(row).execute();
    return toToken(row);
  }

  async find(id: string): Promise<StoredToken | undefined> {
    const r = await this.db.selectFrom('enrollment_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r && { ...toToken(r), secretHash: r.secret_hash };
  }

  async get(id: string): Promise<EnrollmentToken> {
    return found(await this.find(id), 'enrollment token', id);
  }

  /** Marks the token used by `hostId` if it is still unused and unexpired at `at`; false otherwise. */
  async claim(id: string, at: number, hostId: string): Promise<boolean> {
    const r = await this.db.updateTable('enrollment_tokens').set({ used_at: at, host_id: hostId })
      .where('id', '=', id).where('used_at', 'is', null).where('expires_at', '>', at).executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** Drops tokens that expired or were used more than `olderThanMs` ago. */
  async prune(olderThanMs: number): Promise<number> {
    const cutoff = this.now() - olderThanMs;
    const r = await this.db.deleteFrom('enrollment_tokens')
      .where((eb) => eb.or([eb('expires_at', '<', cutoff), eb('used_at', '<', cutoff)])).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
