// Schema migrations, applied in key order by Kysely's Migrator. Never edit one that has shipped.
import { sql, type Kysely, type Migration } from 'kysely';
import type { KeySealer } from '../key-seal.ts';

/** The SQL dialect a store speaks. */
export type StoreDialect = 'sqlite' | 'postgres';

/** What some migrations need besides the database. */
export interface MigrationOptions {
  /** The stream-key sealer (server secret), asked for only when there are plain keys to seal. */
  sealer?: () => KeySealer;
}

/**
 * The migrations for `dialect`. SQLite gets exactly the DDL that shipped; PostgreSQL gets `bigint` for every
 * integer column (they hold ms timestamps, seqs, counts and 0/1 flags, compared with JS numbers up to 2^53) and
 * `bigserial` for the auto-increment key.
 */
export function migrations(dialect: StoreDialect, opts: MigrationOptions = {}): Record<string, Migration> {
  const pg = dialect === 'postgres';
  const INT = pg ? 'bigint' : 'integer';
  return {
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
          .addColumn('id', pg ? 'bigserial' : INT, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
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
    '0002_event_latency_mode': {
      async up(db: Kysely<unknown>) {
        // `low` (LL-HLS) or `standard` (plain HLS); events that predate the column were LL.
        await db.schema
          .alterTable('events')
          .addColumn('latency_mode', 'text', (c) => c.notNull().defaultTo('low'))
          .execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable('events').dropColumn('latency_mode').execute();
      },
    },
    '0003_chat': {
      async up(db: Kysely<unknown>) {
        // Comments carry a per-event monotonic seq (clients resume from it); likes are one per viewer per event.
        await db.schema
          .createTable('comments')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('event_id', 'text', (c) => c.notNull().references('events.id').onDelete('cascade'))
          .addColumn('seq', INT, (c) => c.notNull())
          .addColumn('viewer_id', 'text', (c) => c.notNull())
          .addColumn('display_name', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull().defaultTo('viewer'))
          .addColumn('text', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('hidden', INT, (c) => c.notNull().defaultTo(0))
          .addColumn('deleted_at', 'bigint')
          .addUniqueConstraint('comments_event_seq', ['event_id', 'seq'])
          .execute();
        await db.schema
          .createTable('likes')
          .addColumn('event_id', 'text', (c) => c.notNull().references('events.id').onDelete('cascade'))
          .addColumn('viewer_id', 'text', (c) => c.notNull())
          .addColumn('value', INT, (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('likes_pk', ['event_id', 'viewer_id'])
          .execute();
        await db.schema
          .createTable('bans')
          .addColumn('event_id', 'text', (c) => c.notNull().references('events.id').onDelete('cascade'))
          .addColumn('viewer_id', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('banned_by', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('bans_pk', ['event_id', 'viewer_id'])
          .execute();
        await db.schema
          .createTable('chat_settings')
          .addColumn('event_id', 'text', (c) => c.primaryKey().references('events.id').onDelete('cascade'))
          .addColumn('chat_enabled', INT, (c) => c.notNull().defaultTo(1))
          .addColumn('slow_mode_sec', INT, (c) => c.notNull().defaultTo(0))
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<unknown>) {
        for (const t of ['chat_settings', 'bans', 'likes', 'comments']) await db.schema.dropTable(t).execute();
      },
    },
    '0004_control': {
      async up(db: Kysely<unknown>) {
        // Events: scheduling, visibility, end; stream keys: a fresh key waits here until revealed once.
        await db.schema.alterTable('events').addColumn('scheduled_start', 'bigint').execute();
        await db.schema
          .alterTable('events')
          .addColumn('visibility', 'text', (c) => c.notNull().defaultTo('public'))
          .execute();
        await db.schema.alterTable('events').addColumn('ended_at', 'bigint').execute();
        await db.schema.alterTable('stream_keys').addColumn('reveal_key', 'text').execute();
        await db.schema
          .createTable('operators')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('email', 'text', (c) => c.notNull().unique())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('disabled_at', 'bigint')
          .execute();
        await db.schema
          .createTable('operator_sessions')
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('operator_id', 'text', (c) => c.notNull().references('operators.id').onDelete('cascade'))
          .addColumn('csrf_token', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('api_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('operator_id', 'text', (c) => c.notNull().references('operators.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_used_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema
          .createTable('overlays')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('event_id', 'text', (c) => c.notNull().references('events.id').onDelete('cascade'))
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('text', 'text', (c) => c.notNull())
          .addColumn('severity', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('cleared_at', 'bigint')
          .addColumn('created_by', 'text')
          .execute();
        await db.schema.createIndex('overlays_event').on('overlays').columns(['event_id', 'created_at']).execute();
        await db.schema
          .createTable('ad_breaks')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('event_id', 'text', (c) => c.notNull().references('events.id').onDelete('cascade'))
          .addColumn('seq', INT, (c) => c.notNull())
          .addColumn('start_at', 'bigint', (c) => c.notNull())
          .addColumn('duration_ms', INT, (c) => c.notNull())
          .addColumn('ended_at', 'bigint')
          .addColumn('creative_url', 'text')
          .addColumn('viewers_at_start', 'integer')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .execute();
        await db.schema.createIndex('ad_breaks_event').on('ad_breaks').columns(['event_id', 'start_at']).execute();
        await db.schema
          .createTable('webhooks')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('secret', 'text', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('disabled_at', 'bigint')
          .execute();
        await db.schema
          .createTable('webhook_deliveries')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
          .addColumn('event_type', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', INT, (c) => c.notNull())
          .addColumn('last_status_code', 'integer')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('next_attempt_at', 'bigint')
          .addColumn('delivered_at', 'bigint')
          .execute();
        await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
        await db.schema.createIndex('webhook_deliveries_hook').on('webhook_deliveries').columns(['webhook_id', 'created_at']).execute();
      },
      async down(db: Kysely<unknown>) {
        for (const t of ['webhook_deliveries', 'webhooks', 'ad_breaks', 'overlays', 'api_tokens', 'operator_sessions', 'operators']) {
          await db.schema.dropTable(t).execute();
        }
        await db.schema.alterTable('stream_keys').dropColumn('reveal_key').execute();
        for (const c of ['ended_at', 'visibility', 'scheduled_start']) await db.schema.alterTable('events').dropColumn(c).execute();
      },
    },
    '0005_seal_reveal_keys': {
      async up(db: Kysely<unknown>) {
        // Keys waiting for their reveal were kept in plain text: from now on they are sealed (lib/key-seal.ts).
        await db.schema.alterTable('stream_keys').renameColumn('reveal_key', 'reveal_sealed').execute();
        const plain = await sql<{ id: number; key_hash: string; reveal_sealed: string }>`
          select id, key_hash, reveal_sealed from stream_keys where reveal_sealed is not null`.execute(db);
        if (plain.rows.length === 0) return;
        if (!opts.sealer) throw new Error('sealing stream keys needs the server secret');
        const sealer = opts.sealer();
        for (const r of plain.rows) {
          await sql`update stream_keys set reveal_sealed = ${sealer.seal(r.reveal_sealed, r.key_hash)} where id = ${r.id}`.execute(db);
        }
      },
      async down(db: Kysely<unknown>) {
        // Sealed keys are not unsealed: they lose their reveal (rotation issues a new key).
        await sql`update stream_keys set reveal_sealed = null`.execute(db);
        await db.schema.alterTable('stream_keys').renameColumn('reveal_sealed', 'reveal_key').execute();
      },
    },
    '0006_source_refusal': {
      async up(db: Kysely<unknown>) {
        // Why the last publisher was refused (a source the origin cannot use), for the console and `event list`.
        await db.schema.alterTable('events').addColumn('source_refusal', 'text').execute();
        await db.schema.alterTable('events').addColumn('source_refused_at', 'bigint').execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable('events').dropColumn('source_refused_at').execute();
        await db.schema.alterTable('events').dropColumn('source_refusal').execute();
      },
    },
    '0007_recordings': {
      async up(db: Kysely<unknown>) {
        // Per-event switch: null follows the server's default (ONAIR_RECORDING), 1 records, 0 does not.
        await db.schema.alterTable('events').addColumn('recording', INT).execute();
        await db.schema
          .createTable('recordings')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('storage_prefix', 'text', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('ended_at', 'bigint')
          .addColumn('duration_ms', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('bytes', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('failure', 'text')
          .execute();
        await db.schema.createIndex('recordings_event').on('recordings').columns(['event_id', 'started_at']).execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('recordings').execute();
        await db.schema.alterTable('events').dropColumn('recording').execute();
      },
    },
    '0008_ladder_preset': {
      async up(db: Kysely<unknown>) {
        // `standard`, `passthrough`, `audio` or `custom`; null (events that predate it) follows ONAIR_DEFAULT_LADDER_PRESET.
        await db.schema.alterTable('events').addColumn('ladder_preset', 'text').execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable('events').dropColumn('ladder_preset').execute();
      },
    },
    '0009_dvr': {
      async up(db: Kysely<unknown>) {
        // Per-event DVR window in seconds: null follows the server's default (ONAIR_DVR_WINDOW_SEC), 0 turns DVR off.
        await db.schema.alterTable('events').addColumn('dvr_window_sec', INT).execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable('events').dropColumn('dvr_window_sec').execute();
      },
    },
    '0010_clips': {
      async up(db: Kysely<unknown>) {
        // A clip is a range of one recording: its playlist (a manifest in storage) names that recording's objects,
        // so it is deleted with the recording (control/clips.ts).
        await db.schema
          .createTable('clips')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addColumn('recording_id', 'text', (c) => c.notNull())
          .addColumn('title', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('start_ms', 'bigint', (c) => c.notNull())
          .addColumn('end_ms', 'bigint', (c) => c.notNull())
          .addColumn('duration_ms', 'bigint', (c) => c.notNull())
          .addColumn('segments', INT, (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('clips_event').on('clips').columns(['event_id', 'created_at']).execute();
        await db.schema.createIndex('clips_recording').on('clips').column('recording_id').execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.dropTable('clips').execute();
      },
    },
    '0011_event_timing': {
      async up(db: Kysely<unknown>) {
        // Per-event LL-HLS part target and keyframe interval in seconds (fractions: 0.2, 0.5); null follows the
        // node's ONAIR_PART_TARGET_SEC / ONAIR_GOP_SEC.
        const REAL = pg ? 'double precision' : 'real';
        await db.schema.alterTable('events').addColumn('part_target_sec', REAL).execute();
        await db.schema.alterTable('events').addColumn('gop_sec', REAL).execute();
      },
      async down(db: Kysely<unknown>) {
        await db.schema.alterTable('events').dropColumn('gop_sec').execute();
        await db.schema.alterTable('events').dropColumn('part_target_sec').execute();
      },
    },
  };
}
