import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLUSTER_AUTH_HEADER,
  FeedHeader,
  ReplayGuard,
  feedPath,
  feedRequestHeaders,
  readFeedRequest,
  signClusterRequest,
  verifyClusterRequest,
  type FeedRequestMeta,
} from './cluster-auth.ts';

const SECRET = 'a-cluster-secret-of-at-least-32-characters';
const T = 1_800_000_000_000;
const claims = { method: 'PUT', path: '/internal/v1/feeds/ev1', epoch: 7 };

describe('cluster request signatures', () => {
  it('verifies what was signed, within the skew', () => {
    const h = signClusterRequest(SECRET, claims, T);
    assert.match(h, /^OnAir-HMAC-SHA256 t=\d+,n=[\w-]+,mac=[\w-]{43}$/);
    assert.equal(verifyClusterRequest(SECRET, h, claims, { nowMs: T }).ok, true);
    assert.equal(verifyClusterRequest(SECRET, h, claims, { nowMs: T + 59_000 }).ok, true);
    assert.equal(verifyClusterRequest(SECRET, h, claims, { nowMs: T - 59_000 }).ok, true);
  });

  it('refuses another method, path, epoch, bound value, secret, or a stale or future timestamp', () => {
    const h = signClusterRequest(SECRET, { ...claims, bound: ['origin-a'] }, T);
    const check = (c: typeof claims & { bound?: string[] }, secret = SECRET, nowMs = T) => verifyClusterRequest(secret, h, c, { nowMs });
    assert.deepEqual(check({ ...claims, bound: ['origin-a'] }).ok, true);
    assert.deepEqual(check({ ...claims, bound: ['origin-b'] }), { ok: false, reason: 'bad_mac' });
    assert.deepEqual(check({ ...claims, bound: [] }), { ok: false, reason: 'bad_mac' });
    assert.deepEqual(check({ ...claims, method: 'POST', bound: ['origin-a'] }), { ok: false, reason: 'bad_mac' });
    assert.deepEqual(check({ ...claims, path: '/internal/v1/feeds/ev2', bound: ['origin-a'] }), { ok: false, reason: 'bad_mac' });
    assert.deepEqual(check({ ...claims, epoch: 8, bound: ['origin-a'] }), { ok: false, reason: 'bad_mac' });
    assert.deepEqual(check({ ...claims, bound: ['origin-a'] }, SECRET + 'x'), { ok: false, reason: 'bad_mac' });
    assert.deepEqual(check({ ...claims, bound: ['origin-a'] }, SECRET, T + 61_000), { ok: false, reason: 'skew' });
    assert.deepEqual(check({ ...claims, bound: ['origin-a'] }, SECRET, T - 61_000), { ok: false, reason: 'skew' });
  });

  it('refuses missing, malformed and tampered headers', () => {
    const h = signClusterRequest(SECRET, claims, T);
    assert.deepEqual(verifyClusterRequest(SECRET, undefined, claims, { nowMs: T }), { ok: false, reason: 'missing' });
    assert.deepEqual(verifyClusterRequest(SECRET, 'Bearer x', claims, { nowMs: T }), { ok: false, reason: 'malformed' });
    assert.deepEqual(verifyClusterRequest(SECRET, h.replace(/mac=.*/, 'mac=short'), claims, { nowMs: T }), {
      ok: false,
      reason: 'malformed',
    });
    // Another timestamp or nonce with the same MAC.
    const later = h.replace(`t=${T}`, `t=${T + 1}`);
    assert.deepEqual(verifyClusterRequest(SECRET, later, claims, { nowMs: T }), { ok: false, reason: 'bad_mac' });
    const nonce = /n=([\w-]+)/.exec(h)![1]!;
    const other = h.replace(`n=${nonce}`, `n=${nonce.slice(1)}A`);
    assert.deepEqual(verifyClusterRequest(SECRET, other, claims, { nowMs: T }), { ok: false, reason: 'bad_mac' });
    // One flipped MAC character.
    const mac = /mac=([\w-]+)/.exec(h)![1]!;
    const flipped = h.replace(mac, (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1));
    assert.deepEqual(verifyClusterRequest(SECRET, flipped, claims, { nowMs: T }), { ok: false, reason: 'bad_mac' });
  });

  it('accepts a signed header once with a replay guard', () => {
    const replay = new ReplayGuard(120_000);
    const h = signClusterRequest(SECRET, claims, T);
    assert.equal(verifyClusterRequest(SECRET, h, claims, { nowMs: T, replay }).ok, true);
    assert.deepEqual(verifyClusterRequest(SECRET, h, claims, { nowMs: T + 1000, replay }), { ok: false, reason: 'replayed' });
    // A fresh signature of the same request is a new nonce.
    assert.equal(verifyClusterRequest(SECRET, signClusterRequest(SECRET, claims, T), claims, { nowMs: T, replay }).ok, true);
  });

  it('keeps the replay guard bounded by age and by count', () => {
    const g = new ReplayGuard(1000, 3);
    assert.equal(g.accept('aaaaaaaa', 0), true);
    assert.equal(g.accept('bbbbbbbb', 500), true);
    assert.equal(g.accept('aaaaaaaa', 900), false);
    assert.equal(g.accept('cccccccc', 1600), true); // aaaaaaaa and bbbbbbbb aged out
    assert.equal(g.size, 1);
    for (const n of ['d', 'e', 'f', 'g']) g.accept(n.repeat(8), 1700);
    assert.ok(g.size <= 3);
  });
});

describe('feed request headers', () => {
  const meta: FeedRequestMeta = {
    eventId: 'ev1',
    epoch: 12,
    session: 3,
    timelineZeroMs: T - 5000,
    ingest: 'ingest-1',
    origin: 'origin-a',
    protocol: 'rtmp',
    publish: 'lq2x0abc',
  };

  it('round-trip, and carry no secret', () => {
    const headers = feedRequestHeaders(SECRET, meta, T);
    assert.equal(headers[FeedHeader.epoch], '12');
    assert.equal(headers[FeedHeader.session], '3');
    assert.equal(headers[FeedHeader.timelineZero], String(T - 5000));
    assert.ok(!JSON.stringify(headers).includes(SECRET));
    assert.deepEqual(readFeedRequest(SECRET, 'ev1', headers, { nowMs: T }), { ok: true, meta });
    assert.equal(feedPath('ev1'), '/internal/v1/feeds/ev1');
  });

  it('bind every steering header and the event: none can be changed', () => {
    const headers = feedRequestHeaders(SECRET, meta, T);
    assert.equal(readFeedRequest(SECRET, 'ev2', headers, { nowMs: T }).ok, false);
    for (const [name, value] of [
      [FeedHeader.epoch, '13'],
      [FeedHeader.session, '4'],
      [FeedHeader.timelineZero, String(T)],
      [FeedHeader.ingest, 'ingest-2'],
      [FeedHeader.origin, 'origin-b'],
      [FeedHeader.protocol, 'whip'],
      [FeedHeader.publish, 'other'],
    ] as const) {
      const r = readFeedRequest(SECRET, 'ev1', { ...headers, [name]: value }, { nowMs: T });
      assert.deepEqual(r.ok ? 'accepted' : r.reason, 'bad_mac', name);
    }
  });

  it('name what is wrong without echoing values', () => {
    const headers = feedRequestHeaders(SECRET, meta, T);
    const r = readFeedRequest(SECRET, 'ev1', { ...headers, [FeedHeader.epoch]: 'x' }, { nowMs: T });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'bad_headers');
    const missing = readFeedRequest(SECRET, 'ev1', { ...headers, [CLUSTER_AUTH_HEADER]: undefined }, { nowMs: T });
    assert.equal(!missing.ok && missing.reason, 'missing');
    const bad = readFeedRequest('another-secret-of-at-least-32-characters!', 'ev1', headers, { nowMs: T });
    assert.equal(!bad.ok && bad.reason, 'bad_mac');
    assert.ok(!bad.ok && !bad.message.includes(headers[CLUSTER_AUTH_HEADER]!.slice(-20)));
  });
});
