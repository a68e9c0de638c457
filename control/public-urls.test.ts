// Tests of the public URLs the CLI, the API and webhooks hand out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configuredSrtPort, eventUrls, publicBase, srtPublishUrl } from './public-urls.ts';

test('the public base is ONAIR_PUBLIC_URL without trailing slashes, else localhost on the HTTP port', () => {
  assert.equal(publicBase({ publicUrl: 'https://tv.example.org//' }, 8080), 'https://tv.example.org');
  assert.equal(publicBase({ publicUrl: undefined }, 8080), 'http://localhost:8080');
});

test("an event's URLs: RTMP on the public host name, WHIP/watch/HLS under the public base", () => {
  const urls = eventUrls({ publicUrl: 'https://tv.example.org:8443/onair', rtmpPort: 1935 }, { id: 'ev-123456', slug: 'my-show' });
  assert.deepEqual(urls, {
    rtmpUrl: 'rtmp://tv.example.org:1935/live',
    whipUrl: 'https://tv.example.org:8443/onair/whip/ev-123456',
    watchUrl: 'https://tv.example.org:8443/onair/watch/my-show',
    hlsUrl: 'https://tv.example.org:8443/onair/live/ev-123456/master.m3u8',
    thumbnailUrl: 'https://tv.example.org:8443/onair/live/ev-123456/thumbnail.jpg',
  });
});

test('the SRT publish URL carries the key in its stream id; none when SRT is off or its port is picked at start', () => {
  const server = { publicUrl: 'https://live.example.com', rtmpPort: 1935, srtPort: configuredSrtPort({ srtIngest: 'on', srtPort: 8890 }) };
  assert.equal(srtPublishUrl(server, 'sk_abc'), 'srt://live.example.com:8890?streamid=publish:sk_abc');
  assert.equal(configuredSrtPort({ srtIngest: 'off', srtPort: 8890 }), undefined);
  assert.equal(configuredSrtPort({ srtIngest: 'on', srtPort: 0 }), undefined);
  assert.equal(srtPublishUrl({ ...server, srtPort: undefined }, 'sk_abc'), undefined);
});
