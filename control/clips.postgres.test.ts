// The clip service tests again with PostgreSQL as the store (cluster mode): migration 0010 and the queries.
process.env.TEST_STORE = 'postgres';
await import('./clips.test.ts');
