// The two-edge chat tests again with PostgreSQL as the shared store (cluster mode): each edge its own pool.
process.env.TEST_STORE = 'postgres';
await import('./gateway.redis.test.ts');
