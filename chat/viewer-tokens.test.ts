// Viewer tokens: display-name rules, signature, expiry, roles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ViewerTokens, validateDisplayName, DisplayNameError } from './viewer-tokens.ts';

test('display names are trimmed, cleaned and bounded', () => {
  assert.equal(validateDisplayName('  Ada   Lovelace\u0007 '), 'Ada Lovelace');
  assert.equal(validateDisplayName('Zoë_9'), 'Zoë_9');
  for (const bad of ['', 'a', 'x'.repeat(25), '<script>', '-lead', 42]) assert.throws(() => validateDisplayName(bad), DisplayNameError);
});

test('tokens verify, carry role and suffixed name, and fail when forged or expired', () => {
  let now = 1_000_000;
  const t = new ViewerTokens(Buffer.alloc(32, 1), 60, () => now);
  const { token, viewer } = t.issue({ displayName: 'Ada', role: 'moderator' });
  assert.match(viewer.name, /^Ada#\d{4}$/);
  assert.deepEqual(t.verify(token), viewer);
  const [payload, mac] = token.split('.') as [string, string];
  const forged = Buffer.from(JSON.stringify({ v: 1, sub: viewer.id, name: viewer.name, role: 'admin', exp: viewer.exp })).toString(
    'base64url',
  );
  assert.equal(t.verify(`${forged}.${mac}`), undefined, 'role change breaks the MAC');
  assert.equal(new ViewerTokens(Buffer.alloc(32, 2), 60).verify(token), undefined, 'other secret');
  assert.equal(t.verify(`${payload}`), undefined);
  // Other spellings of the same MAC bytes: the last character's two unused bits, and a character outside the alphabet.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(mac.at(-1)!);
  const respelled = `${mac.slice(0, -1)}${alphabet[last ^ 1]}`;
  assert.deepEqual(Buffer.from(respelled, 'base64url'), Buffer.from(mac, 'base64url'), 'the decoder ignores the unused bits');
  assert.equal(t.verify(`${payload}.${respelled}`), undefined, 'non-canonical MAC');
  assert.equal(t.verify(`${payload}.${mac}!`), undefined, 'junk after the MAC');
  assert.equal(t.verify(null), undefined);
  now += 61_000;
  assert.equal(t.verify(token), undefined, 'expired');
});

test('a secret given as a function is read once, at load() or the first token, and checked then', () => {
  let reads = 0;
  const t = new ViewerTokens(() => (reads++, Buffer.alloc(32, 4)), 60);
  assert.equal(reads, 0, 'building reads nothing');
  t.load();
  t.verify(t.issue({ displayName: 'Bob' }).token);
  assert.equal(reads, 1);
  const short = new ViewerTokens(() => Buffer.alloc(8), 60);
  assert.throws(() => short.load(), /at least 32 bytes/);
});
