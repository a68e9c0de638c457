// Health samples and their warnings: keyframe interval, bitrate collapse, ffmpeg below realtime, late frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { createHealthMonitor, HEALTH_RETENTION_MS, type TranscodeReport } from './health.ts';

const report = {
  protocol: 'rtmp',
  bitrateKbps: 2500,
  fps: 30,
  keyframeIntervalSec: 2,
  width: 1280,
  height: 720,
  videoCodec: 'h264',
  audioCodec: 'aac',
  lateFrames: 0,
};

function monitor() {
  let now = 1_000_000;
  let transcode: TranscodeReport | undefined;
  const m = createHealthMonitor({
    config: { segmentTargetSec: 2, healthIntervalSec: 2 },
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    transcodeStats: () => transcode,
    now: () => now,
  });
  return {
    m,
    tick(ms = 2000) {
      now += ms;
    },
    setTranscode(t: Omit<TranscodeReport, 'at'> | undefined) {
      transcode = t && { ...t, at: now };
    },
  };
}

test('a healthy stream has no warnings; dropped frames are reported as deltas', () => {
  const h = monitor();
  h.setTranscode({ speed: 1.0, fps: 30, dropFrames: 10, dupFrames: 0, outTimeSec: 20 });
  assert.deepEqual(h.m.ingest('e', report).warnings, []);
  h.tick();
  h.setTranscode({ speed: 1.0, fps: 30, dropFrames: 14, dupFrames: 1, outTimeSec: 22 });
  const s = h.m.ingest('e', report);
  assert.equal(s.droppedFrames, 4);
  assert.equal(s.duplicatedFrames, 1);
  assert.equal(s.transcodeSpeed, 1);
});

test('warnings: keyframe interval ≠ segment target, bitrate collapse, sustained slow ffmpeg, late frames', () => {
  const h = monitor();
  assert.deepEqual(
    h.m.ingest('e', { ...report, keyframeIntervalSec: 5 }).warnings.map((w) => w.code),
    ['keyframe_interval'],
  );
  for (let i = 0; i < 3; i++) {
    h.tick();
    h.m.ingest('e', report);
  }
  h.tick();
  assert.deepEqual(
    h.m.ingest('e', { ...report, bitrateKbps: 300 }).warnings.map((w) => w.code),
    ['bitrate_collapse'],
  );
  h.setTranscode({ speed: 0.7, fps: 20, dropFrames: 0, dupFrames: 0, outTimeSec: 30 });
  h.tick();
  assert.deepEqual(h.m.ingest('e', report).warnings, [], 'one slow report is not enough');
  h.tick();
  h.setTranscode({ speed: 0.7, fps: 20, dropFrames: 0, dupFrames: 0, outTimeSec: 32 });
  assert.deepEqual(
    h.m.ingest('e', report).warnings.map((w) => w.code),
    ['transcode_slow'],
  );
  h.tick();
  h.setTranscode({ speed: 1, fps: 30, dropFrames: 0, dupFrames: 0, outTimeSec: 34 });
  assert.deepEqual(
    h.m.ingest('e', { ...report, lateFrames: 3 }).warnings.map((w) => w.code),
    ['late_frames'],
  );
});

test('history keeps the last hour; subscribers get each new sample', () => {
  const h = monitor();
  const seen: number[] = [];
  const off = h.m.subscribe('e', (s) => seen.push(s.bitrateKbps));
  h.m.ingest('e', { ...report, bitrateKbps: 1 });
  h.tick(HEALTH_RETENTION_MS);
  h.m.ingest('e', { ...report, bitrateKbps: 2 });
  off();
  h.m.ingest('e', { ...report, bitrateKbps: 3 });
  assert.deepEqual(seen, [1, 2]);
  assert.deepEqual(
    h.m.history('e').map((s) => s.bitrateKbps),
    [2, 3],
  );
  assert.equal(h.m.latest('e')?.bitrateKbps, 3);
});

test('a republish starts a new bitrate baseline: its slow first seconds are no collapse', () => {
  const h = monitor();
  for (let i = 0; i < 5; i++) {
    h.tick();
    h.m.ingest('e', { ...report, publishStartedAt: 1 });
  }
  // The publisher reconnects: its first report covers the handshake and x264's start-up.
  h.tick();
  assert.deepEqual(h.m.ingest('e', { ...report, bitrateKbps: 150, publishStartedAt: 2 }).warnings, []);
  for (let i = 0; i < 3; i++) {
    h.tick();
    assert.deepEqual(h.m.ingest('e', { ...report, publishStartedAt: 2 }).warnings, []);
  }
  h.tick();
  const collapse = h.m.ingest('e', { ...report, bitrateKbps: 300, publishStartedAt: 2 });
  assert.deepEqual(
    collapse.warnings.map((w) => w.code),
    ['bitrate_collapse'],
    'a real collapse within the new session still warns',
  );
});
