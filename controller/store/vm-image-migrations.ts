// Migrations of the VM image state the controller holds (issue 13): a hibernated VM's state
// volume. Listed in migrations.ts; a released migration is never edited.
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

