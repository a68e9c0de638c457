// Test helper: the store a test runs against. SQLite in a temp dir by default; with TEST_STORE=postgres, a
// database on a private PostgreSQL server (cluster mode's store), so one test file covers both.
import { openStore, type Db, type StoreLocation } from '../../lib/store/db.ts';
import { startPostgresTestServer, type PostgresTestServer } from './postgres-test-server.ts';
import { makeTempDir } from './temp-dir.ts';

/** One store shared by the handles a test opens (as several nodes would share it). */
export interface TestStore {
  /** A temp dir for the test's other files (and the SQLite database). */
  readonly dir: string;
  /** Where the store is (for tests that open it themselves). */
  readonly location: StoreLocation;
  /** A new handle on the store; the first one creates the schema. */
  open(): Promise<Db>;
  /** Closes every handle, stops PostgreSQL and removes the temp dir. */
  cleanup(): Promise<void>;
}

/** Creates the store named by TEST_STORE (`sqlite`, the default, or `postgres`). */
export async function createTestStore(prefix: string): Promise<TestStore> {
  const tmp = makeTempDir(prefix);
  const dir = tmp.path;
  let server: PostgresTestServer | undefined;
  let databaseUrl: string | undefined;
  if (process.env.TEST_STORE === 'postgres') {
    server = await startPostgresTestServer();
    databaseUrl = await server.createDatabase(prefix.replace(/[^a-z0-9_]/g, '_'));
  }
  const handles: Db[] = [];
  return {
    dir,
    location: { dataDir: dir, databaseUrl },
    async open() {
      const db = await openStore({ dataDir: dir, databaseUrl });
      handles.push(db);
      return db;
    },
    async cleanup() {
      for (const db of handles) await db.destroy().catch(() => undefined);
      await server?.stop();
      tmp.remove();
    },
  };
}
