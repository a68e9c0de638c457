// WHIP's SDP rules: which offers are taken, which codecs are kept, and what ffmpeg is told. The whole path runs in test/e2e/whip.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerVideoParameters, chooseCodec, ffmpegArgs, ffmpegSdp, offerProblem } from './whip-sdp.ts';

const SECURITY = ['a=ice-ufrag:abcd', 'a=ice-pwd:0123456789abcdefghijkl', 'a=fingerprint:sha-256 AB:CD:EF'];
const offer = (...media: string[]) => ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', ...SECURITY, ...media].join('\r\n') + '\r\n';
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

test('an offer that can never connect (no ICE credentials or no DTLS fingerprint) is refused', () => {
  const without = (line: string) => offer(h264).replace(`${line}\r\n`, '');
  assert.match(offerProblem(without(SECURITY[0]!))!, /lacks ICE credentials/);
  assert.match(offerProblem(without(SECURITY[1]!))!, /lacks ICE credentials/);
  assert.match(offerProblem(without(SECURITY[2]!))!, /lacks a DTLS fingerprint/);
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

test('the codec kept per track: H.264 with packetization-mode=1 for video, Opus for audio', () => {
  const vp8 = { mimeType: 'video/VP8', payloadType: 96 };
  const h264Mode0 = { mimeType: 'video/H264', payloadType: 100, parameters: 'profile-level-id=42e01f;packetization-mode=0' };
  const h264 = { mimeType: 'video/H264', payloadType: 102, parameters: 'profile-level-id=42e01f;packetization-mode=1' };
  assert.equal(chooseCodec('video', [vp8, h264Mode0, h264]), h264);
  assert.match(chooseCodec('video', [vp8, h264Mode0]) as string, /packetization-mode=1/);
  const opus = { mimeType: 'audio/opus', payloadType: 111, channels: 2 };
  assert.equal(chooseCodec('audio', [{ mimeType: 'audio/PCMU', payloadType: 0 }, opus]), opus);
  assert.match(chooseCodec('audio', [{ mimeType: 'audio/PCMU', payloadType: 0 }]) as string, /Opus/);
  assert.equal(chooseCodec('application', [vp8]), undefined);
  assert.equal(
    answerVideoParameters(h264.parameters),
    'profile-level-id=42e01f;packetization-mode=1;x-google-start-bitrate=2500;x-google-max-bitrate=6000',
  );
});
