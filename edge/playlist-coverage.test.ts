// Tests of playlistCoverage/coversRequest: when a stale playlist may answer a blocking reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coversRequest, playlistCoverage } from './playlist-coverage.ts';

const PLAYLIST = Buffer.from(`#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:10
#EXTINF:2.000,
seg-10.m4s
#EXT-X-PART:DURATION=0.500,URI="part-11.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part-11.1.m4s"
#EXTINF:2.000,
seg-11.m4s
#EXT-X-PART:DURATION=0.500,URI="part-12.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part-12.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-12.2.m4s"
`);

test('reads the last complete segment and the last listed part (not the hint)', () => {
  assert.deepEqual(playlistCoverage(PLAYLIST), { lastSegment: 11, lastPartMsn: 12, lastPart: 1 });
});

test('a blocking reload is covered only by what the playlist already lists', () => {
  const cov = playlistCoverage(PLAYLIST);
  const p = '/live/evt123abc/720p/index.m3u8';
  assert.equal(coversRequest(cov, p), true, 'not blocking');
  assert.equal(coversRequest(cov, `${p}?_HLS_msn=11`), true);
  assert.equal(coversRequest(cov, `${p}?_HLS_msn=12`), false, 'segment 12 is still open');
  assert.equal(coversRequest(cov, `${p}?_HLS_msn=12&_HLS_part=1`), true);
  assert.equal(coversRequest(cov, `${p}?_HLS_msn=12&_HLS_part=2`), false, 'the hinted part does not exist yet');
  assert.equal(coversRequest(cov, `${p}?_HLS_msn=13&_HLS_part=0`), false);
  assert.equal(coversRequest(cov, `${p}?_HLS_msn=11&_HLS_part=3`), true);
});
