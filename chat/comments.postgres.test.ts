// The chat store tests again with PostgreSQL as the shared store (cluster mode).
process.env.TEST_STORE = 'postgres';
await import('./comments.test.ts');
