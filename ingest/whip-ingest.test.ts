// WHIP ingest helpers: which offers are taken, and what ffmpeg is told. The whole path runs in test/e2e/whip.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { offerProblem, ffmpegSdp, ffmpegArgs, createWhipIngest } from './whip-ingest.ts';

const offer = (...media: string[]) => ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', ...media].join('\r\n') + '\r\n';
const h264 = 'm=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000';
const opus = 'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2';

test('an offer needs one H.264 video track and at most one Opus audio track', () => {
  assert.equal(offerProblem(offer(h264, opus)), undefined);
  assert.equal(offerProblem(offer(h264)), undefined, 'video only');
  assert.match(offerProblem('hello')!, /must start with v=0/);
  assert.match(offerProblem(offer(opus))!, /exactly one video track \(found 0\)/);
  assert.match(offerProblem(offer(h264, h264))!, /exactly one video track \(found 2\)/);
  assert.match(offerProblem(offer(h264, opus, opus))!, /at most one is taken/);
  assert.match(offerProblem(offer('m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000'))!, /H\.264/);
  assert.match(offerProblem(offer(h264, 'm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000'))!, /Opus/);
  assert.match(offerProblem(offer(h264, 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel'))!, /only audio and video/);
});

test('ffmpeg gets an SDP for the forwarded payload types on loopback, and copies H.264 into FLV with AAC audio', () => {
  const sdp = ffmpegSdp({ video: { pt: 102, port: 30000 }, audio: { pt: 111, channels: 2, port: 30002 } });
  assert.match(sdp, /^c=IN IP4 127\.0\.0\.1$/m);
  assert.match(sdp, /^m=video 30000 RTP\/AVP 102\na=rtpmap:102 H264\/90000\na=fmtp:102 packetization-mode=1$/m);
  assert.match(sdp, /^m=audio 30002 RTP\/AVP 111\na=rtpmap:111 opus\/48000\/2$/m);
  assert.doesNotMatch(ffmpegSdp({ video: { pt: 96, port: 30000 } }), /m=audio/);
  const args = ffmpegArgs(true, 128).join(' ');
  assert.match(args, /-protocol_whitelist pipe,udp,rtp .*-f sdp -i pipe:0/);
  assert.match(args, /-c:v copy .*-c:a aac -b:a 128k .*-f flv/);
  assert.doesNotMatch(ffmpegArgs(false, 128).join(' '), /0:a:0|aac/);
});

test('the WHIP endpoint: an empty offer is a bad SDP (400), a wrong content type is 415', async () => {
  const registry = createMetricsRegistry();
  const whip = createWhipIngest({
    config: loadConfig({}),
    logger: createLogger('silent'),
    registry,
    authorize: async (key) => (key === 'sk-good' ? 'event-1' : undefined),
    feeds: { open: () => assert.fail('no feed may open') },
  });
  const app = express();
  app.use('/whip', whip.router);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/whip/event-1`;
  const post = async (type: string | undefined, body?: string) => {
    const headers: Record<string, string> = { authorization: 'Bearer sk-good' };
    if (type) headers['content-type'] = type;
    const r = await fetch(url, { method: 'POST', headers, body });
    return { status: r.status, body: (await r.json()) as { error: { code: string; message: string } } };
  };
  try {
    for (const [what, r] of [
      ['empty body', await post('application/sdp')],
      ['empty string', await post('application/sdp', '')],
      ['with parameters', await post('application/sdp; charset=utf-8', '')],
    ] as const) {
      assert.equal(r.status, 400, what);
      assert.equal(r.body.error.code, 'bad_sdp', what);
      assert.match(r.body.error.message, /empty/, what);
    }
    const wrongType = await post('text/plain', 'v=0');
    assert.equal(wrongType.status, 415);
    assert.equal(wrongType.body.error.code, 'unsupported_media_type');
    const noType = await post(undefined);
    assert.equal(noType.status, 415);
    const rejected = await registry.getSingleMetric('onair_ingest_rejected_total')!.get();
    assert.equal(rejected.values.find((v) => v.labels.reason === 'bad_sdp')?.value, 3);
  } finally {
    server.close();
    await whip.stop();
  }
});
