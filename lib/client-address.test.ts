import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrustedProxies, normalizeAddress, trustedProxyEntryError } from './client-address.ts';

test('entries: names, addresses and CIDRs are accepted; anything else is named in the error', () => {
  for (const ok of ['loopback', 'linklocal', 'uniquelocal', '10.1.2.3', '10.0.0.0/8', '::1', 'fd00::/8']) {
    assert.equal(trustedProxyEntryError(ok), undefined, ok);
  }
  assert.match(trustedProxyEntryError('localhost') ?? '', /"localhost" is not loopback/);
  assert.match(trustedProxyEntryError('10.0.0.0/33') ?? '', /prefix length must be 0–32/);
  assert.match(trustedProxyEntryError('10.0.0.0/8/1') ?? '', /is not/);
  assert.throws(() => new TrustedProxies(['nope']), /trusted proxies: "nope"/);
});

test('an untrusted peer is the client, whatever it claims', () => {
  const t = new TrustedProxies(['loopback']);
  assert.equal(t.clientAddress('203.0.113.7', '198.51.100.1'), '203.0.113.7');
  assert.equal(t.clientAddress(undefined, '198.51.100.1'), 'unknown');
});

test('a trusted peer reports its client; chains of trusted proxies are walked from the nearest', () => {
  const t = new TrustedProxies(['loopback', '10.0.0.0/8']);
  assert.equal(t.clientAddress('127.0.0.1', '198.51.100.1'), '198.51.100.1');
  assert.equal(t.clientAddress('::ffff:127.0.0.1', '198.51.100.1'), '198.51.100.1');
  // The client forged the first hop; the proxies appended the real one and themselves.
  assert.equal(t.clientAddress('127.0.0.1', '1.1.1.1, 198.51.100.1, 10.0.0.5'), '198.51.100.1');
  assert.equal(t.clientAddress('127.0.0.1', ['1.1.1.1', '198.51.100.1, 10.0.0.5']), '198.51.100.1');
  // Only trusted hops all the way: the farthest one is the client.
  assert.equal(t.clientAddress('127.0.0.1', '10.0.0.9, 10.0.0.5'), '10.0.0.9');
  // Garbage stops the walk at the last trusted hop.
  assert.equal(t.clientAddress('127.0.0.1', 'evil, 10.0.0.5'), '10.0.0.5');
  assert.equal(t.clientAddress('127.0.0.1', undefined), '127.0.0.1');
});

test('no trusted proxies: the peer is always the client', () => {
  const t = new TrustedProxies([]);
  assert.equal(t.trusts('127.0.0.1'), false);
  assert.equal(t.clientAddress('127.0.0.1', '198.51.100.1'), '127.0.0.1');
  assert.equal(normalizeAddress(' ::FFFF:10.0.0.1 '), '10.0.0.1');
  assert.equal(normalizeAddress('::ffff:zz'), '::ffff:zz');
});
