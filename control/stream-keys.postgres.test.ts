// The stream-key sealing tests again with PostgreSQL as the store (cluster mode).
process.env.TEST_STORE = 'postgres';
await import('./stream-keys.test.ts');
