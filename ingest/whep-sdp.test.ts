// WHEP's offer rules: WHIP's (one H.264 video, at most one Opus audio, ICE and DTLS) plus a direction that receives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { whepOfferProblem } from './whep-sdp.ts';

const SECURITY = ['a=ice-ufrag:abcd', 'a=ice-pwd:0123456789abcdefghijkl', 'a=fingerprint:sha-256 AB:CD:EF'];
const offer = (...media: string[]) => ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', ...SECURITY, ...media].join('\r\n') + '\r\n';
const video = (dir: string) => `m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=${dir}\r\na=rtpmap:102 H264/90000`;
const audio = (dir: string) => `m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=${dir}\r\na=rtpmap:111 opus/48000/2`;

test('a recvonly (or sendrecv) offer with H.264 and Opus is taken', () => {
  assert.equal(whepOfferProblem(offer(video('recvonly'), audio('recvonly'))), undefined);
  assert.equal(whepOfferProblem(offer(video('sendrecv'))), undefined, 'sendrecv, video only');
});

test('an offer that would only send, or has no H.264, is refused with the reason', () => {
  assert.match(whepOfferProblem(offer(video('sendonly')))!, /video is sendonly: a WHEP offer receives/);
  assert.match(whepOfferProblem(offer(video('recvonly'), audio('inactive')))!, /audio is inactive/);
  const undirected = 'm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000';
  assert.match(whepOfferProblem(offer(undirected).replace('t=0 0', 't=0 0\r\na=sendonly'))!, /sendonly/, 'session-level direction');
  assert.equal(whepOfferProblem(offer(undirected)), undefined, 'no direction: sendrecv');
  assert.match(whepOfferProblem(offer(video('recvonly').replace('H264', 'VP8')))!, /H\.264 \(browsers: add a recvonly video transceiver\)/);
  assert.match(whepOfferProblem('')!, /empty/);
});
