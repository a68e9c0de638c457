// Unit tests of the MediaMTX peer's setup: where its binary comes from, and a config that keeps it on loopback with
// LL-HLS on and its other servers off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mediaMtxBinary, mediaMtxConf } from './mediamtx.ts';

test('the binary comes from --mediamtx, else MEDIAMTX_BIN; none given means skip; a wrong path is an error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onair-mediamtx-test-'));
  try {
    const bin = join(dir, 'mediamtx');
    writeFileSync(bin, '');
    assert.equal(mediaMtxBinary(bin, {}), bin);
    assert.equal(mediaMtxBinary(undefined, { MEDIAMTX_BIN: bin }), bin);
    assert.equal(mediaMtxBinary(bin, { MEDIAMTX_BIN: '/elsewhere' }), bin, 'the flag wins');
    assert.equal(mediaMtxBinary(undefined, {}), undefined);
    assert.throws(() => mediaMtxBinary(join(dir, 'missing'), {}), /MediaMTX binary not found at .*missing/);
    assert.throws(() => mediaMtxBinary(dir, {}), /not found/, 'a directory is not a binary');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the config: RTMP and LL-HLS on loopback ports, every other server off', () => {
  const conf = mediaMtxConf({ binary: 'x', rtmpPort: 41935, hlsPort: 48888 });
  assert.match(conf, /^rtmpAddress: 127\.0\.0\.1:41935$/m);
  assert.match(conf, /^hlsAddress: 127\.0\.0\.1:48888$/m);
  assert.match(conf, /^hlsVariant: lowLatency$/m);
  assert.match(conf, /^hlsAlwaysRemux: true$/m);
  assert.match(conf, /^hlsPartDuration: 200ms$/m);
  for (const off of ['api', 'metrics', 'pprof', 'playback', 'rtsp', 'webrtc', 'srt'])
    assert.match(conf, new RegExp(`^${off}: false$`, 'm'));
});

test('the config with WHEP: WebRTC on loopback only, its sole ICE candidate 127.0.0.1', () => {
  const conf = mediaMtxConf({ binary: 'x', rtmpPort: 41935, hlsPort: 48888, webrtcPort: 48889, webrtcUdpPort: 48189 });
  assert.match(conf, /^webrtc: true$/m);
  assert.match(conf, /^webrtcAddress: 127\.0\.0\.1:48889$/m);
  assert.match(conf, /^webrtcLocalUDPAddress: 127\.0\.0\.1:48189$/m);
  assert.match(conf, /^webrtcIPsFromInterfaces: false$/m);
  assert.match(conf, /^webrtcAdditionalHosts: \[127\.0\.0\.1\]$/m);
  assert.doesNotMatch(conf, /^webrtc: false$/m);
  for (const off of ['api', 'metrics', 'pprof', 'playback', 'rtsp', 'srt']) assert.match(conf, new RegExp(`^${off}: false$`, 'm'));
});
