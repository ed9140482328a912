// Migrations of the VM image state the controller holds (issue 13): a hibernated VM's state
// volume; a VM's snapshots and their volumes. Listed in migrations.ts; a released migration is never edited.
import type { Kysely, Migration } from 'kysely';

type AnyDb = Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- migrations predate the row types

/** One row per VM that is being suspended or is suspended: where its RAM state is (or goes). */
export const vmHibernation: Migration = {
  async up(db: AnyDb) {
    await db.schema.createTable('vm_hibernations')
      .addColumn('vm_id', 'text', (c) => c.primaryKey().references('vms.id'))
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('domain_id', 'text', (c) => c.notNull())
      .addColumn('image_id', 'text', (c) => c.notNull())
      .addColumn('volume_id', 'text', (c) => c.notNull())
      .addColumn('size_bytes', 'bigint', (c) => c.notNull())
      .addColumn('host_id', 'text')
      .addColumn('job_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
  },
};

/**
 * A VM's snapshots: per disk the volume that holds the disk as it was (the leaf when it was
 * taken) and the volume on top of it; the RAM state volume of a memory snapshot. A hibernation
 * row may restore a snapshot's RAM state (snapshot_id): that volume is the snapshot's to keep.
 */
export const vmSnapshots: Migration = {
  async up(db: AnyDb) {
    await db.schema.createTable('vm_snapshots')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('vm_id', 'text', (c) => c.notNull().references('vms.id'))
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('memory', 'integer', (c) => c.notNull())
      .addColumn('memory_volume', 'text')
      .addColumn('vm_running', 'integer')
      .addColumn('frozen', 'integer')
      .addColumn('warnings', 'text', (c) => c.notNull())
      .addColumn('job_id', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createTable('vm_snapshot_volumes')
      .addColumn('snapshot_id', 'text', (c) => c.notNull().references('vm_snapshots.id').onDelete('cascade'))
      .addColumn('disk_id', 'text', (c) => c.notNull())
      .addColumn('domain_id', 'text', (c) => c.notNull())
      .addColumn('image_id', 'text', (c) => c.notNull())
      .addColumn('volume_id', 'text', (c) => c.notNull())
      .addColumn('child_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('vm_snapshot_volumes_pk', ['snapshot_id', 'disk_id'])
      .execute();
    await db.schema.createIndex('vm_snapshots_vm').on('vm_snapshots').column('vm_id').execute();
    await db.schema.alterTable('vm_hibernations').addColumn('snapshot_id', 'text').execute();
  },
};
