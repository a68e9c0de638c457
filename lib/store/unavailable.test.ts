import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isStoreUnavailable } from './unavailable.ts';
import { publicError } from '../express-errors.ts';

test('a store that cannot be reached is told apart from a bad query, and clients get 503 store_unavailable', () => {
  const down = [
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
    Object.assign(new Error('connection failure'), { code: '08006' }),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
  ];
  for (const err of down) {
    assert.equal(isStoreUnavailable(err), true, err.message);
    assert.deepEqual(publicError(err), {
      status: 503,
      code: 'store_unavailable',
      message: 'the database is unavailable; try again shortly',
    });
  }
  const bad = [
    Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }),
    Object.assign(new Error('syntax error'), { code: '42601' }),
    new TypeError('x is undefined'),
    undefined,
  ];
  for (const err of bad) {
    assert.equal(isStoreUnavailable(err), false, String(err));
    assert.equal(publicError(err).status, 500);
  }
});
