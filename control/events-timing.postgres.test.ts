// The per-event part target and GOP tests again with PostgreSQL as the store (cluster mode): migration 0011_event_timing.
process.env.TEST_STORE = 'postgres';
await import('./events-timing.test.ts');
