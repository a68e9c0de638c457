// Table-driven tests of HLS path parsing: good paths, canonical LL-HLS queries, and hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initUri, parseHlsPath, parseHlsRequest, parseMediaName, partUri, segmentUri, type HlsKind } from './hls-path.ts';

const EV = 'evt_AB-123';
const base = `/live/${EV}`;

interface Good {
  path: string;
  search?: string;
  kind: HlsKind;
  rendition?: string;
  key: string;
  blocking?: boolean;
}

const good: Good[] = [
  { path: `${base}/master.m3u8`, kind: 'master', key: `${base}/master.m3u8` },
  { path: `${base}/master.m3u8`, search: '?_HLS_msn=3&x=1', kind: 'master', key: `${base}/master.m3u8` },
  { path: `${base}/720p/index.m3u8`, kind: 'playlist', rendition: '720p', key: `${base}/720p/index.m3u8` },
  { path: `${base}/720p/index.m3u8`, search: '?', kind: 'playlist', rendition: '720p', key: `${base}/720p/index.m3u8` },
  { path: `${base}/720p/index.m3u8`, search: '?foo=bar&baz', kind: 'playlist', rendition: '720p', key: `${base}/720p/index.m3u8` },
  {
    path: `${base}/720p/index.m3u8`,
    search: '?_HLS_skip=YES&cb=123&_HLS_part=2&_HLS_msn=41',
    kind: 'playlist',
    rendition: '720p',
    key: `${base}/720p/index.m3u8?_HLS_msn=41&_HLS_part=2&_HLS_skip=YES`,
    blocking: true,
  },
  {
    path: `${base}/a-b-1/index.m3u8`,
    search: '?_HLS_msn=0',
    kind: 'playlist',
    rendition: 'a-b-1',
    key: `${base}/a-b-1/index.m3u8?_HLS_msn=0`,
    blocking: true,
  },
  {
    path: `${base}/360p/index.m3u8`,
    search: '?_HLS_skip=v2',
    kind: 'playlist',
    rendition: '360p',
    key: `${base}/360p/index.m3u8?_HLS_skip=v2`,
  },
  { path: `${base}/360p/index.m3u8`, search: '?_HLS_other', kind: 'playlist', rendition: '360p', key: `${base}/360p/index.m3u8` },
  // A first load that asks to be answered at once keeps its own key (it must not share a held answer).
  {
    path: `${base}/360p/index.m3u8`,
    search: '?cb=1&join=now',
    kind: 'playlist',
    rendition: '360p',
    key: `${base}/360p/index.m3u8?join=now`,
  },
  // …and `join` means nothing to a blocking reload, which shares its key with every other player's.
  {
    path: `${base}/360p/index.m3u8`,
    search: '?join=now&_HLS_msn=7&_HLS_part=1',
    kind: 'playlist',
    rendition: '360p',
    key: `${base}/360p/index.m3u8?_HLS_msn=7&_HLS_part=1`,
    blocking: true,
  },
  { path: `${base}/360p/index.m3u8`, search: '?joined=1', kind: 'playlist', rendition: '360p', key: `${base}/360p/index.m3u8` },
  { path: `${base}/master.m3u8`, search: '?join=now', kind: 'master', key: `${base}/master.m3u8` },
  { path: `${base}/720p/init-0.mp4`, kind: 'init', rendition: '720p', key: `${base}/720p/init-0.mp4` },
  { path: `${base}/720p/init-12.mp4`, search: '?t=1', kind: 'init', rendition: '720p', key: `${base}/720p/init-12.mp4` },
  { path: `${base}/720p/seg-0.m4s`, kind: 'segment', rendition: '720p', key: `${base}/720p/seg-0.m4s` },
  { path: `${base}/720p/seg-999999999999999.m4s`, kind: 'segment', rendition: '720p', key: `${base}/720p/seg-999999999999999.m4s` },
  { path: `${base}/720p/part-17.3.m4s`, kind: 'part', rendition: '720p', key: `${base}/720p/part-17.3.m4s` },
  { path: `${base}/720p/part-0.0.m4s`, search: '?_HLS_msn=1', kind: 'part', rendition: '720p', key: `${base}/720p/part-0.0.m4s` },
  { path: `/live/${'x'.repeat(64)}/master.m3u8`, kind: 'master', key: `/live/${'x'.repeat(64)}/master.m3u8` },
  {
    path: `/live/abcdef/${'r'.repeat(32)}/seg-1.m4s`,
    kind: 'segment',
    rendition: 'r'.repeat(32),
    key: `/live/abcdef/${'r'.repeat(32)}/seg-1.m4s`,
  },
];

test('good paths parse to the right kind, rendition and canonical key', () => {
  for (const g of good) {
    const o = parseHlsPath(g.path, g.search ?? '');
    assert.ok(o, `${g.path}${g.search ?? ''} should parse`);
    assert.equal(o.kind, g.kind, g.path);
    assert.equal(o.rendition, g.rendition, g.path);
    assert.equal(o.cacheKey, g.key, g.path);
    assert.equal(o.upstreamPath, g.key, g.path);
    assert.equal(o.blocking, g.blocking ?? false, g.path);
    assert.equal(o.eventId, g.path.split('/')[2]);
  }
});

const evil: { path: string; search?: string; error: 'bad_request' | 'not_found' }[] = [
  // traversal and encodings
  { path: `${base}/../secret`, error: 'bad_request' },
  { path: `${base}/720p/../../etc/passwd`, error: 'bad_request' },
  { path: `/live/../${EV}/master.m3u8`, error: 'bad_request' },
  { path: `${base}/./master.m3u8`, error: 'bad_request' },
  { path: `${base}/%2e%2e/master.m3u8`, error: 'bad_request' },
  { path: `${base}/%2E%2E%2Fmaster.m3u8`, error: 'bad_request' },
  { path: `${base}/720p%2fseg-1.m4s`, error: 'bad_request' },
  { path: `${base}/720p%5Cseg-1.m4s`, error: 'bad_request' },
  { path: `${base}/720p/seg-1.m4s%00`, error: 'bad_request' },
  { path: `${base}//master.m3u8`, error: 'bad_request' },
  { path: `//live/${EV}/master.m3u8`, error: 'not_found' },
  { path: `/live//${EV}/master.m3u8`, error: 'bad_request' },
  { path: `${base}\\master.m3u8`, error: 'bad_request' },
  { path: `${base}/720p\\..\\seg-1.m4s`, error: 'bad_request' },
  // malformed ids
  { path: '/live/short/master.m3u8', error: 'bad_request' },
  { path: `/live/${'x'.repeat(65)}/master.m3u8`, error: 'bad_request' },
  { path: '/live/evt.123456/master.m3u8', error: 'bad_request' },
  { path: `${base}/720P/index.m3u8`, error: 'bad_request' },
  { path: `${base}/${'r'.repeat(33)}/index.m3u8`, error: 'bad_request' },
  { path: `${base}/7_20p/index.m3u8`, error: 'bad_request' },
  // malformed numbers
  { path: `${base}/720p/seg-01.m4s`, error: 'bad_request' },
  { path: `${base}/720p/seg-.m4s`, error: 'bad_request' },
  { path: `${base}/720p/seg--1.m4s`, error: 'bad_request' },
  { path: `${base}/720p/seg-1e3.m4s`, error: 'bad_request' },
  { path: `${base}/720p/seg-1000000000000000.m4s`, error: 'bad_request' },
  { path: `${base}/720p/seg-1..m4s`, error: 'bad_request' },
  { path: `${base}/720p/part-1.m4s`, error: 'bad_request' },
  { path: `${base}/720p/part-1.02.m4s`, error: 'bad_request' },
  { path: `${base}/720p/part-1.2.3.m4s`, error: 'bad_request' },
  { path: `${base}/720p/part-.1.m4s`, error: 'bad_request' },
  { path: `${base}/720p/init-00.mp4`, error: 'bad_request' },
  { path: `${base}/720p/init-a.mp4`, error: 'bad_request' },
  // bad LL-HLS queries
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_msn=01', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_msn=', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_msn', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_msn=-1', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_msn=1&_HLS_msn=2', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_part=1', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_msn=1&_HLS_part=x', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_skip=yes', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?_HLS_skip=YES&_HLS_skip=v2', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?join=later', error: 'bad_request' },
  { path: `${base}/720p/index.m3u8`, search: '?join', error: 'bad_request' },
  // unknown names
  { path: '/live/', error: 'not_found' },
  { path: `/live/${EV}`, error: 'not_found' },
  { path: `${base}/`, error: 'not_found' },
  { path: `${base}/index.m3u8`, error: 'not_found' },
  { path: `${base}/master.m3u8x`, error: 'not_found' },
  { path: `${base}/xmaster.m3u8`, error: 'not_found' },
  { path: `${base}/720p/master.m3u8`, error: 'not_found' },
  { path: `${base}/720p/seg-1.mp4`, error: 'not_found' },
  { path: `${base}/720p/seg-1.ts`, error: 'not_found' },
  { path: `${base}/720p/index.m3u`, error: 'not_found' },
  { path: `${base}/720p/sub/seg-1.m4s`, error: 'not_found' },
  { path: `${base}/720p/`, error: 'not_found' },
  { path: `${base}/720p/seg-1.m4s/`, error: 'not_found' },
  { path: '/api/v1/events', error: 'not_found' },
  { path: '/livex/abcdef/master.m3u8', error: 'not_found' },
];

test('hostile, malformed and unknown paths are refused with the right reason', () => {
  for (const e of evil) {
    const r = parseHlsRequest(e.path, e.search ?? '');
    assert.ok('error' in r, `${e.path}${e.search ?? ''} must be refused, got ${JSON.stringify(r)}`);
    assert.equal(r.error, e.error, `${e.path}${e.search ?? ''}: ${r.message}`);
    assert.equal(parseHlsPath(e.path, e.search ?? ''), undefined);
  }
});

test('query parameters never leak into the key of non-playlist objects', () => {
  const o = parseHlsPath(`${base}/720p/seg-5.m4s`, '?_HLS_msn=5&token=secret');
  assert.equal(o?.cacheKey, `${base}/720p/seg-5.m4s`);
  const p = parseHlsPath(`${base}/720p/index.m3u8`, '?token=secret&_HLS_msn=5');
  assert.equal(p?.upstreamPath, `${base}/720p/index.m3u8?_HLS_msn=5`);
});

test('the media naming scheme: what segmentUri/partUri/initUri write, parseMediaName and request paths read back', () => {
  assert.equal(segmentUri(12), 'seg-12.m4s');
  assert.equal(partUri(12, 3), 'part-12.3.m4s');
  assert.equal(initUri(0), 'init-0.mp4');
  assert.deepEqual(parseMediaName(segmentUri(12)), { kind: 'segment', msn: 12 });
  assert.deepEqual(parseMediaName(partUri(12, 3)), { kind: 'part', msn: 12, index: 3 });
  assert.deepEqual(parseMediaName(initUri(7)), { kind: 'init', run: 7 });
  for (const bad of ['seg-01.m4s', 'part-1.m4s', 'part-1.2.3.m4s', 'init-x.mp4', 'index.m3u8', '720p/seg-1.m4s', 'seg-1.m4s?x']) {
    assert.equal(parseMediaName(bad), undefined, bad);
  }
  assert.deepEqual(parseHlsPath(`/live/abcdef/720p/${partUri(4, 2)}`, '')?.media, { kind: 'part', msn: 4, index: 2 });
  assert.deepEqual(parseHlsPath(`/live/abcdef/720p/${segmentUri(4)}`, '')?.media, { kind: 'segment', msn: 4 });
  assert.deepEqual(parseHlsPath(`/live/abcdef/720p/${initUri(1)}`, '')?.media, { kind: 'init', run: 1 });
  assert.equal(parseHlsPath('/live/abcdef/720p/index.m3u8', '')?.media, undefined);
});

test('clips use the same names under /clips/<clipId>/, marked as clips', () => {
  const m = parseHlsPath('/clips/abcdefgh/master.m3u8', '');
  assert.equal(m?.clip, true);
  assert.equal(m?.eventId, 'abcdefgh');
  assert.equal(m?.kind, 'master');
  assert.deepEqual(parseHlsPath('/clips/abcdefgh/360p/seg-4.m4s', '')?.media, { kind: 'segment', msn: 4 });
  assert.equal(parseHlsPath('/clips/abcdefgh/360p/index.m3u8', '')?.clip, true);
  assert.equal(parseHlsPath('/live/abcdefgh/master.m3u8', '')?.clip, undefined);
  assert.deepEqual(parseHlsRequest('/clips/abc/master.m3u8', ''), { error: 'bad_request', message: 'malformed clip id' });
  assert.equal(parseHlsPath('/clips/abcdefgh/../x/master.m3u8', ''), undefined);
});

test('thumbnail paths: the live thumbnail, the seek-preview VTT and its sprite sheets, keyed without the query', () => {
  const t = parseHlsRequest('/live/abcdef/thumbnail.jpg', '?t=123');
  assert.ok(!('error' in t));
  assert.deepEqual(
    { kind: t.kind, key: t.cacheKey, upstream: t.upstreamPath, preview: t.preview, rendition: t.rendition },
    {
      kind: 'thumbnail',
      key: '/live/abcdef/thumbnail.jpg',
      upstream: '/live/abcdef/thumbnail.jpg',
      preview: { file: 'thumbnail' },
      rendition: undefined,
    },
  );
  assert.deepEqual(parseHlsPath('/live/abcdef/thumbnails.vtt', '')?.preview, { file: 'vtt' });
  assert.deepEqual(parseHlsPath('/live/abcdef/sprite-12.jpg', '')?.preview, { file: 'sprite', sheet: 12 });
  for (const bad of ['/live/abcdef/sprite-01.jpg', '/live/abcdef/sprite-.jpg', '/live/abcdef/sprite-x.jpg']) {
    assert.deepEqual(parseHlsRequest(bad, ''), { error: 'bad_request', message: 'malformed sprite number' }, bad);
  }
  for (const unknown of ['/live/abcdef/thumbnail.png', '/live/abcdef/poster.jpg', '/live/abcdef/720p/thumbnail.jpg']) {
    assert.equal(parseHlsPath(unknown, ''), undefined, unknown);
  }
});
