// Versioned schema migrations. Each one is applied once, in name order, inside Kysely's migration
// lock, so two controllers starting on one PostgreSQL database cannot both apply it. A released
// migration is never edited: a change is a new migration.
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Engine } from './connect.js';
import { vmHibernation, vmSnapshots } from './vm-image-migrations.js';

type AnyDb = Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- migrations predate the row types

function initial(engine: Engine): Migration {
  // The audit log's sequence: SQLite's AUTOINCREMENT never reuses a number after a prune;
  // PostgreSQL's bigserial never does either.
  const seqType = engine === 'sqlite' ? sql`integer primary key autoincrement` : sql`bigserial primary key`;
  return {
    async up(db: AnyDb) {
      await db.schema.createTable('clusters')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('policy', 'text', (c) => c.notNull())
        .addColumn('thresholds', 'text', (c) => c.notNull())
        .addColumn('pool_id', 'text')
        .addColumn('spm_host_id', 'text')
        .addColumn('spm_lver', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema.createTable('hosts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id'))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('spm_priority', 'integer', (c) => c.notNull().defaultTo(5).check(sql`spm_priority between -1 and 10`))
        .addColumn('pool_host_id', 'integer', (c) => c.check(sql`pool_host_id between 1 and 250`))
        .addColumn('cert_fingerprint', 'text')
        .addColumn('last_contact', 'bigint')
        .addColumn('reasons', 'text', (c) => c.notNull())
        .addColumn('stats', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('hosts_pool_host_id_unique', ['cluster_id', 'pool_host_id'])
        .execute();

      await db.schema.createTable('enrollment_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('host_name', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id'))
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('host_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema.createTable('storage_domains')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('master', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('size_bytes', 'bigint')
        .addColumn('free_bytes', 'bigint')
        .addColumn('host_status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('storage_domains_name_unique', ['cluster_id', 'name'])
        .execute();

      await db.schema.createTable('networks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('vlan', 'integer')
        .addColumn('mtu', 'integer', (c) => c.notNull())
        .addColumn('bridged', 'integer', (c) => c.notNull())
        .addColumn('required', 'integer', (c) => c.notNull())
        .addColumn('host_nics', 'text', (c) => c.notNull())
        .addColumn('host_status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('networks_name_unique', ['cluster_id', 'name'])
        .execute();

      await db.schema.createTable('disks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('storage_domain_id', 'text', (c) => c.notNull().references('storage_domains.id'))
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('provisioning', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('image_id', 'text', (c) => c.notNull())
        .addColumn('volume_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema.createTable('vms')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id'))
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('desired_state', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('host_id', 'text')
        .addColumn('memory_reservation_mib', 'integer', (c) => c.notNull())
        .addColumn('cpu_reservation', 'integer', (c) => c.notNull())
        .addColumn('pinned_host_id', 'text')
        .addColumn('priority', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      // A disk belongs to at most one VM: the primary key on disk_id says so to both engines.
      await db.schema.createTable('vm_disks')
        .addColumn('disk_id', 'text', (c) => c.primaryKey().references('disks.id'))
        .addColumn('vm_id', 'text', (c) => c.notNull().references('vms.id').onDelete('cascade'))
        .execute();

      await db.schema.createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('target_kind', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('steps', 'text', (c) => c.notNull())
        .addColumn('progress', 'integer', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('correlation_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('ended_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema.createTable('events')
        .addColumn('seq', seqType)
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('subject_kind', 'text', (c) => c.notNull())
        .addColumn('subject_id', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('correlation_id', 'text')
        .execute();

      await db.schema.createIndex('hosts_cluster').on('hosts').column('cluster_id').execute();
      await db.schema.createIndex('vms_host').on('vms').column('host_id').execute();
      await db.schema.createIndex('vm_disks_vm').on('vm_disks').column('vm_id').execute();
      await db.schema.createIndex('jobs_state').on('jobs').column('state').execute();
      await db.schema.createIndex('jobs_target').on('jobs').columns(['target_kind', 'target_id']).execute();
      await db.schema.createIndex('events_time').on('events').column('time').execute();
    },
  };
}

// Templates (issue 13): one row per template, its volumes as JSON (they are read and written with
// it); a thin clone's disk names the template it depends on, so a delete can name the clones.
const templates: Migration = {
  async up(db: AnyDb) {
    await db.schema.createTable('templates')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id'))
      .addColumn('source_vm_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('volumes', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.alterTable('disks').addColumn('template_id', 'text').execute();
    await db.schema.createIndex('disks_template').on('disks').column('template_id').execute();
  },
};

export class StaticMigrations implements MigrationProvider {
  constructor(private readonly engine: Engine) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    return { '0001_initial': initial(this.engine), '0006_vm_hibernation': vmHibernation, '0007_vm_snapshots': vmSnapshots, '0008_templates': templates };
  }
}
