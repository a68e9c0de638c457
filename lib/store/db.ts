// The store: Kysely over SQLite (embedded default) or PostgreSQL (cluster mode, `DATABASE_URL`). Opens the
// database and runs migrations.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import type { Database } from './schema.ts';
import { migrations, type StoreDialect } from './migrations.ts';
import { createKeySealer } from '../key-seal.ts';
import { loadServerSecret } from '../server-secret.ts';
import type { Service } from '../lifecycle.ts';

export type Db = Kysely<Database>;

/** Where the store lives: SQLite under `dataDir`, or the PostgreSQL database at `databaseUrl`. */
export interface StoreLocation {
  dataDir: string;
  databaseUrl?: string | undefined;
  /** The configured server secret (else the one generated into `dataDir`): seals stream keys a migration finds in plain text. */
  viewerTokenSecret?: string | undefined;
}

/** PostgreSQL `bigint` (int8, OID 20) as a JS number: every bigint here is a count, a seq or a ms timestamp (< 2^53). */
const INT8_OID = 20;

/** Opens (creating if needed) the store and brings its schema up to date (tests: only up to `options.migrateTo`). */
export async function openStore(where: StoreLocation, options: { migrateTo?: string } = {}): Promise<Db> {
  let dialect: StoreDialect;
  let db: Db;
  if (where.databaseUrl) {
    dialect = 'postgres';
    const pool = new pg.Pool({
      connectionString: where.databaseUrl,
      max: 10,
      connectionTimeoutMillis: 5_000,
      types: { getTypeParser: (oid, format) => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as never },
    });
    // An idle client whose server went away emits 'error' on the pool; the next query reports it instead.
    pool.on('error', () => {});
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  } else {
    dialect = 'sqlite';
    mkdirSync(where.dataDir, { recursive: true });
    const sqlite = new SQLite(join(where.dataDir, 'onair.sqlite'));
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  }
  const sealer = () => createKeySealer(loadServerSecret(where.dataDir, where.viewerTokenSecret));
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations(dialect, { sealer }) } });
  const { error } = options.migrateTo ? await migrator.migrateTo(options.migrateTo) : await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    throw new Error(`store migration failed (${dialect}): ${(error as Error).message}`);
  }
  return db;
}

/** The store as a Service: start() opens it (openStore), stop() closes it; `db` is there between the two. */
export interface Store extends Service {
  /** The open database; throws before start(). */
  readonly db: Db;
}

/** Builds the store of `where`; opens nothing until start(). */
export function createStore(where: StoreLocation): Store {
  let db: Db | undefined;
  return {
    get db() {
      if (!db) throw new Error('the store is not open');
      return db;
    },
    async start() {
      db = await openStore(where);
    },
    async stop() {
      const open = db;
      db = undefined;
      await open?.destroy();
    },
  };
}
