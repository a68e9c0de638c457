// The control-plane tests again with PostgreSQL as the store (cluster mode).
process.env.TEST_STORE = 'postgres';
await import('./control-plane.test.ts');
