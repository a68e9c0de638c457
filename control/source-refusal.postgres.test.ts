// The source-refusal store tests again with PostgreSQL as the store (cluster mode).
process.env.TEST_STORE = 'postgres';
await import('./source-refusal.test.ts');
