// Schema migrations, applied in key order by Kysely's Migrator. Never edit one that has shipped.
import type { Kysely, Migration } from 'kysely';

export const migrations: Record<string, Migration> = {
  '0001_events_and_stream_keys': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('slug', 'text', (c) => c.notNull().unique())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('idle'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('live_since', 'bigint')
        .execute();
      await db.schema
        .createTable('stream_keys')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('event_id', 'text', (c) => c.notNull().references('events.id').onDelete('cascade'))
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('stream_keys_event').on('stream_keys').column('event_id').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('stream_keys').execute();
      await db.schema.dropTable('events').execute();
    },
  },
};
