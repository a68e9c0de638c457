// The recordings tests again with PostgreSQL as the store (cluster mode): migration 0007 and the queries.
process.env.TEST_STORE = 'postgres';
await import('./recordings.test.ts');
