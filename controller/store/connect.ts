// Opens the store on one of its two engines and brings its schema up to date.
//   sqlite:   better-sqlite3, one file, WAL (readers never wait for the writer), foreign keys on.
//   postgres: pg, for more than one controller on one database.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import { StaticMigrations } from './migrations.js';
import { StoreUnavailableError } from './errors.js';
import type { Database } from './tables.js';

export type Engine = 'sqlite' | 'postgres';

export const DEFAULT_SQLITE_PATH = '/var/lib/hostvisor/controller.db';

export type StoreOptions =
  | { engine: 'sqlite'; path?: string; busyTimeoutMs?: number }
  | { engine: 'postgres'; connection: pg.PoolConfig; };

/** pg returns int8 as a string (it may exceed 2^53); our bigints are epoch ms and byte sizes, well inside. */
const PG_INT8_OID = 20;
function pgTypes(): pg.CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: string) =>
      oid === PG_INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
  };
}

export interface OpenedDb {
  db: Kysely<Database>;
  engine: Engine;
  /** Names of the migrations this open applied (empty when the schema was current). */
  applied: string[];
}

function sqliteDb(path: string, busyTimeoutMs: number): Kysely<Database> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const raw = new BetterSqlite3(path, { timeout: busyTimeoutMs });
  raw.pragma('journal_mode = WAL');
  // NORMAL in WAL mode loses at most the last transactions on power loss, never consistency.
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
}

function postgresDb(connection: pg.PoolConfig): Kysely<Database> {
  const pool = new pg.Pool({
    max: 10,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 30_000,
    ...connection,
    types: pgTypes(),
  });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export async function openDb(opts: StoreOptions): Promise<OpenedDb> {
  let db: Kysely<Database>;
  try {
    db = opts.engine === 'sqlite' ? sqliteDb(opts.path ?? DEFAULT_SQLITE_PATH, opts.busyTimeoutMs ?? 5_000) : postgresDb(opts.connection);
  } catch (e) {
    throw new StoreUnavailableError(`cannot open the ${opts.engine} store: ${(e as Error).message}`, { cause: e });
  }
  const migrator = new Migrator({ db, provider: new StaticMigrations(opts.engine) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy().catch(() => {});
    throw new StoreUnavailableError(`store migration failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  return { db, engine: opts.engine, applied };
}
