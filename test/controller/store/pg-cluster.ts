// A throwaway PostgreSQL cluster for tests: initdb into a temp dir, pg_ctl start on a unix socket
// in that dir (no TCP listener at all), and stop + remove at the end. As root, the server runs as
// the `postgres` system user (PostgreSQL refuses to run as root), through runuser.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';

const run = promisify(execFile);
const PG_LIB = '/usr/lib/postgresql';
const STEP_TIMEOUT_MS = 60_000;

export interface PgServer {
  /** A new, empty database on the server, for one suite. */
  database(name: string): Promise<pg.PoolConfig>;
  stop(): Promise<void>;
}

/** The newest installed server's bin dir, or undefined when Debian's postgresql is not installed. */
function binDir(): string | undefined {
  if (!existsSync(PG_LIB)) return undefined;
  const versions = readdirSync(PG_LIB).filter((v) => existsSync(join(PG_LIB, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(PG_LIB, versions[0], 'bin');
}

function systemUser(name: string): { uid: number; gid: number } | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** Starts a server, or says why it cannot (the caller skips with that reason). */
export async function startPostgres(): Promise<PgServer | { skip: string }> {
  const bin = binDir();
  if (!bin) return { skip: `no PostgreSQL server under ${PG_LIB} (Debian package postgresql; test/lab/setup.sh installs it)` };
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? systemUser('postgres') : undefined;
  if (asRoot && !owner) return { skip: 'running as root and there is no postgres system user to run the server as' };
  const dir = mkdtempSync(join(tmpdir(), 'hv-pg-'));
  const data = join(dir, 'data');
  if (owner) { chownSync(dir, owner.uid, owner.gid); chmodSync(dir, 0o755); }
  const pgRun = (prog: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, prog), ...args], { timeout: STEP_TIMEOUT_MS })
      : run(join(bin, prog), args, { timeout: STEP_TIMEOUT_MS });
  try {
    await pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'hostvisor', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await pgRun('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', '-o',
      `-k ${dir} -c listen_addresses= -c fsync=off -c max_connections=50`, 'start']);
  } catch (e) {
    const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8').slice(-2000) : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${(e as Error).message}\n${log}`, { cause: e });
  }
  const base: pg.PoolConfig = { host: dir, user: 'hostvisor', database: 'postgres' };
  const { default: pgModule } = await import('pg');
  return {
    async database(name) {
      const client = new pgModule.Client(base);
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return { ...base, database: name };
    },
    async stop() {
      try {
        await pgRun('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
