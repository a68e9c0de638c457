// The SRT stream ids the ingest takes (publish:<key>, #!::r=<key>,m=publish) and the ones it refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_STREAM_ID, parseStreamId } from './srt-streamid.ts';

const KEY = 'sk_AbC-d_123456789012345678';

test('publish:<key> and publish:live/<key> carry the key', () => {
  assert.deepEqual(parseStreamId(`publish:${KEY}`), { ok: true, key: KEY });
  assert.deepEqual(parseStreamId(`publish:live/${KEY}`), { ok: true, key: KEY });
});

test('the access-control form with m=publish carries r, with or without live/, in any field order', () => {
  assert.deepEqual(parseStreamId(`#!::r=${KEY},m=publish`), { ok: true, key: KEY });
  assert.deepEqual(parseStreamId(`#!::m=publish,r=live/${KEY}`), { ok: true, key: KEY });
  assert.deepEqual(parseStreamId(`#!::u=studio,r=${KEY},m=publish,t=stream,s=abc`), { ok: true, key: KEY });
  // ffmpeg < 6 leaves a URL-encoded streamid encoded.
  assert.deepEqual(parseStreamId(encodeURIComponent(`#!::r=${KEY},m=publish`)), { ok: true, key: KEY });
});

test('other modes are refused as bad_mode: access control defaults to request, bare and read ids are not publishes', () => {
  for (const id of [
    `#!::r=${KEY}`,
    `#!::r=${KEY},m=request`,
    `#!::r=${KEY},m=bidirectional`,
    `read:${KEY}`,
    `request:${KEY}`,
    KEY,
    `#!::r=${KEY},m=publish,t=file`,
  ]) {
    const r = parseStreamId(id);
    assert.equal(r.ok, false, id);
    assert.equal(!r.ok && r.reason, 'bad_mode', id);
  }
});

test('no key, or something that is not a key, is refused without echoing it', () => {
  assert.equal(parseStreamId(null).ok, false);
  assert.deepEqual(
    [undefined, '', 'publish:', 'publish:live/', '#!::m=publish', '#!::r=,m=publish'].map((id) => {
      const r = parseStreamId(id);
      return r.ok ? 'ok' : r.reason;
    }),
    ['no_key', 'no_key', 'no_key', 'no_key', 'no_key', 'no_key'],
  );
  for (const id of [
    `publish:a/${KEY}`,
    `publish:${KEY}:pass`,
    `#!::r=${KEY},m=publish,m=publish`,
    `#!::r=${KEY},m`,
    `publish:${KEY} x`,
    `publish:${'k'.repeat(MAX_STREAM_ID)}`,
  ]) {
    const r = parseStreamId(id);
    assert.equal(r.ok, false, id);
    assert.equal(!r.ok && r.reason, 'malformed', id);
    assert.ok(!r.ok && !r.message.includes(KEY), 'a refusal never echoes the key');
  }
});
