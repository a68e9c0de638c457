// scrypt password hashing and operator verification.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../lib/store/db.ts';
import { OperatorService, hashPassword, verifyPassword } from './operators.ts';
import { makeTempDir } from '../test/support/temp-dir.ts';

test('hashPassword: salted scrypt, verified in constant time, never the password itself', async () => {
  const a = await hashPassword('correct horse battery');
  const b = await hashPassword('correct horse battery');
  assert.match(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
  assert.notEqual(a, b, 'salted');
  assert.ok(!a.includes('horse'));
  assert.ok(await verifyPassword('correct horse battery', a));
  assert.ok(!(await verifyPassword('correct horse batterY', a)));
  assert.ok(!(await verifyPassword('x', 'not-a-hash')));
});

test('OperatorService: create, verify, reject bad input, disable', async () => {
  const tmp = makeTempDir('ops');
  const db = await openStore({ dataDir: tmp.path });
  try {
    const ops = new OperatorService(db);
    const op = await ops.create({ email: ' Ada@Example.com ', role: 'admin', password: 'long-enough-pw' });
    assert.equal(op.email, 'ada@example.com');
    assert.equal((await ops.verify('ADA@example.com', 'long-enough-pw'))?.id, op.id);
    assert.equal(await ops.verify('ada@example.com', 'wrong-password'), undefined);
    assert.equal(await ops.verify('nobody@example.com', 'long-enough-pw'), undefined);
    await assert.rejects(ops.create({ email: 'ada@example.com', role: 'admin', password: 'long-enough-pw' }), /exists/);
    await assert.rejects(ops.create({ email: 'b@example.com', role: 'admin', password: 'short' }), RangeError);
    await assert.rejects(ops.create({ email: 'nope', role: 'admin', password: 'long-enough-pw' }), RangeError);
    assert.ok(await ops.disable(op.id));
    assert.equal(await ops.verify('ada@example.com', 'long-enough-pw'), undefined, 'disabled operators cannot sign in');
  } finally {
    await db.destroy();
    tmp.remove();
  }
});
