// The per-event DVR window tests again with PostgreSQL as the store (cluster mode): migration 0009_dvr.
process.env.TEST_STORE = 'postgres';
await import('./events-dvr.test.ts');
