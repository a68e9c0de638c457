// Outbound guard: which addresses are refused, how the allow setting opens them, and that every resolved address counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockedDestinationError, OutboundGuard } from './outbound-guard.ts';

test('loopback, unspecified, link-local, private, CGNAT, multicast, reserved and mapped forms are refused; public ones pass', () => {
  const g = new OutboundGuard();
  const refused: [string, RegExp][] = [
    ['127.0.0.1', /loopback/],
    ['127.255.0.9', /loopback/],
    ['::1', /loopback/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['::', /unspecified/],
    ['169.254.169.254', /link-local/],
    ['fe80::1', /link-local/],
    ['10.0.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.1.1', /private/],
    ['fd12:3456::1', /private/],
    ['100.64.0.1', /CGNAT/],
    ['100.127.255.254', /CGNAT/],
    ['224.0.0.251', /multicast/],
    ['ff02::1', /multicast/],
    ['255.255.255.255', /reserved/],
    ['198.18.0.1', /reserved/],
    ['::ffff:127.0.0.1', /loopback/],
    ['::ffff:7f00:1', /loopback/],
    ['::ffff:a9fe:a9fe', /link-local/],
    ['::ffff:10.0.0.1', /private/],
    ['64:ff9b::a00:1', /reserved/],
    ['2002:7f00:1::1', /reserved/],
  ];
  for (const [address, why] of refused) assert.match(g.addressError(address) ?? 'passed', why, address);
  for (const address of [
    '93.184.215.14',
    '1.1.1.1',
    '100.63.255.255',
    '100.128.0.1',
    '172.32.0.1',
    '2606:4700::1111',
    '::ffff:93.184.215.14',
  ]) {
    assert.equal(g.addressError(address), undefined, address);
  }
});

test('the allow setting opens exactly its ranges', () => {
  const g = new OutboundGuard(['127.0.0.0/8', '10.1.0.0/16']);
  assert.equal(g.addressError('127.0.0.1'), undefined);
  assert.equal(g.addressError('::ffff:127.0.0.1'), undefined);
  assert.equal(g.addressError('10.1.2.3'), undefined);
  assert.match(g.addressError('10.2.0.1') ?? '', /private/);
  assert.match(g.addressError('::1') ?? '', /loopback/);
  assert.equal(g.urlError('http://localhost:8080/x'), undefined, 'localhost with loopback allowed');
  assert.match(new OutboundGuard().urlError('http://LOCALHOST./x') ?? '', /loopback name/);
});

test('a name is refused when any of its addresses is, and names are resolved by the given resolver only', async () => {
  const g = new OutboundGuard([], async (host) =>
    host === 'mixed.test'
      ? [
          { address: '93.184.215.14', family: 4 },
          { address: '127.0.0.1', family: 4 },
        ]
      : [{ address: '93.184.215.14', family: 4 }],
  );
  await assert.rejects(
    g.resolveChecked('mixed.test'),
    (err: Error) => err instanceof BlockedDestinationError && /mixed\.test resolves to 127\.0\.0\.1/.test(err.message),
  );
  assert.deepEqual(await g.resolveChecked('public.test'), [{ address: '93.184.215.14', family: 4 }]);
  await assert.rejects(g.resolveChecked('[::1]'), BlockedDestinationError);
});
