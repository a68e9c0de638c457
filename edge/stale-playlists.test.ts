// Tests of the stale-if-error store: its bound on an injected clock, its keys, and the blocking-reload coverage rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBehind } from './failover-fetch.ts';
import { StalePlaylists, staleKey } from './stale-playlists.ts';

const PATH = '/live/evt123abc/720p/index.m3u8';
const HEADERS = { 'content-type': 'application/vnd.apple.mpegurl', 'cache-control': 'max-age=1' };
/** A playlist listing complete segments 10 and 11 and parts 12.0 and 12.1. */
const PLAYLIST = Buffer.from(
  '#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:10\n#EXTINF:2.0,\nseg-10.m4s\n#EXTINF:2.0,\nseg-11.m4s\n' +
    '#EXT-X-PART:DURATION=0.5,URI="part-12.0.m4s"\n#EXT-X-PART:DURATION=0.5,URI="part-12.1.m4s"\n',
);

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const plain = { cacheKey: PATH, upstreamPath: PATH, blocking: false };
const blocking = (query: string) => ({ cacheKey: PATH + query, upstreamPath: PATH + query, blocking: true });

test('a copy is found within the bound, on the injected clock, and not after it', () => {
  const c = clock();
  const store = new StalePlaylists({ boundMs: 5_000, now: c.now });
  assert.equal(store.find(plain), undefined);
  store.remember(PATH, PLAYLIST, HEADERS);
  const s = store.find(plain);
  assert.ok(s);
  assert.equal(s.body, PLAYLIST);
  assert.deepEqual(s.headers, HEADERS);
  assert.equal(s.storedAt, 1_000_000);
  c.advance(5_000);
  assert.ok(store.find(plain), 'at the bound it is still served');
  c.advance(1);
  assert.equal(store.find(plain), undefined, 'past the bound it is not');
});

test('every blocking reload of a rendition folds into one copy; delta updates (_HLS_skip) keep their own', () => {
  assert.equal(staleKey(PATH), PATH);
  assert.equal(staleKey(PATH + '?_HLS_msn=12&_HLS_part=1'), PATH);
  assert.equal(staleKey(PATH + '?_HLS_msn=12&_HLS_skip=YES'), PATH + '#skip');
  const store = new StalePlaylists({ boundMs: 5_000, now: clock().now });
  store.remember(PATH + '?_HLS_msn=12&_HLS_part=1', PLAYLIST, HEADERS);
  assert.ok(store.find(plain), 'a blocking reload answer serves a plain request');
  assert.equal(store.find({ ...plain, cacheKey: PATH + '?_HLS_skip=YES' }), undefined, 'a full playlist never answers a delta request');
  const delta = Buffer.from('#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n');
  store.remember(PATH + '?_HLS_skip=YES', delta, HEADERS);
  assert.equal(store.find({ ...plain, cacheKey: PATH + '?_HLS_skip=YES' })?.body, delta);
  assert.equal(store.find(plain)?.body, PLAYLIST);
});

test('a blocking reload is answered only by a copy that already holds what it waits for', () => {
  const store = new StalePlaylists({ boundMs: 5_000, now: clock().now });
  store.remember(PATH, PLAYLIST, HEADERS);
  assert.ok(store.find(blocking('?_HLS_msn=11')), 'segment 11 is listed');
  assert.ok(store.find(blocking('?_HLS_msn=12&_HLS_part=1')), 'part 12.1 is listed');
  assert.equal(store.find(blocking('?_HLS_msn=12&_HLS_part=2')), undefined, 'part 12.2 is not');
  assert.equal(store.find(blocking('?_HLS_msn=13')), undefined, 'segment 13 is not');
});

test('the newest copy replaces the older one, and clear() forgets all', () => {
  const c = clock();
  const store = new StalePlaylists({ boundMs: 5_000, now: c.now });
  store.remember(PATH, Buffer.from('#EXTM3U\n'), HEADERS);
  c.advance(4_000);
  store.remember(PATH, PLAYLIST, HEADERS);
  c.advance(4_000);
  assert.equal(store.find(plain)?.body, PLAYLIST, 'the bound counts from the newest copy');
  store.clear();
  assert.equal(store.find(plain), undefined);
});

test('the store keeps at most maxEntries copies, dropping the least recently used', () => {
  const store = new StalePlaylists({ boundMs: 5_000, maxEntries: 2, now: clock().now });
  const key = (r: string) => `/live/evt123abc/${r}/index.m3u8`;
  store.remember(key('a'), PLAYLIST, HEADERS);
  store.remember(key('b'), PLAYLIST, HEADERS);
  assert.ok(store.find({ ...plain, cacheKey: key('a') }));
  store.remember(key('c'), PLAYLIST, HEADERS);
  assert.ok(store.find({ ...plain, cacheKey: key('a') }));
  assert.equal(store.find({ ...plain, cacheKey: key('b') }), undefined);
  assert.ok(store.find({ ...plain, cacheKey: key('c') }));
});

test('coverage: what the latest copy of a rendition lists, within the bound only; isBehind orders versions', () => {
  const c = clock();
  const store = new StalePlaylists({ boundMs: 5_000, now: c.now });
  assert.equal(store.coverage(PATH), undefined);
  store.remember(PATH + '?_HLS_msn=12&_HLS_part=1', PLAYLIST, HEADERS);
  const cov = store.coverage(PATH);
  assert.deepEqual(cov, { lastSegment: 11, lastPartMsn: 12, lastPart: 1 });
  assert.equal(isBehind({ lastSegment: 11, lastPartMsn: 12, lastPart: 0 }, cov), true, 'one part less');
  assert.equal(isBehind({ lastSegment: 10, lastPartMsn: 13, lastPart: 0 }, cov), true, 'one segment less');
  assert.equal(isBehind(cov, cov), false, 'the same version');
  assert.equal(isBehind({ lastSegment: 12, lastPartMsn: 13, lastPart: 0 }, cov), false, 'newer');
  c.advance(5_001);
  assert.equal(store.coverage(PATH), undefined);
});
