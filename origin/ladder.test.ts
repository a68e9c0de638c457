// The ladder a source gets: rungs by the short side, frame rates from the source (never duplicated), GOPs on one grid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/load.ts';
import {
  planForPreset,
  planLadder,
  rateUnder,
  toRational,
  value,
  type LadderPreset,
  type SourceCodecs,
  type SourceVideo,
} from './ladder.ts';

const { segmentTargetSec } = loadConfig({});
/** The default ladder with a 1080p rung on top, as an operator adds it through ONAIR_LADDER. */
const ladder = [{ name: '1080p', height: 1080, videoKbps: 5000 }, ...loadConfig({}).ladder];
const rungs = (source: SourceVideo, l = ladder) =>
  planLadder(l, source, segmentTargetSec).rungs.map((r) => `${r.name} ${r.width}x${r.height}@${value(r.fps).toFixed(3)} g${r.gop}`);

test('a 1080p60 source keeps 1080p60 on top; the lower rungs run at 30', () => {
  assert.deepEqual(rungs({ width: 1920, height: 1080, fps: 60 }), [
    '1080p 1920x1080@60.000 g120',
    '720p 1280x720@30.000 g60',
    '480p 854x480@30.000 g60',
    '360p 640x360@30.000 g60',
  ]);
});

test('PAL and NTSC rates are kept exactly: 25, 29.97, 50 → 50/25, 59.94 → 59.94/29.97', () => {
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 25 }), [
    '720p 1280x720@25.000 g50',
    '480p 854x480@25.000 g50',
    '360p 640x360@25.000 g50',
  ]);
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 29.97002997 }), [
    '720p 1280x720@29.970 g60',
    '480p 854x480@29.970 g60',
    '360p 640x360@29.970 g60',
  ]);
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 50 }), [
    '720p 1280x720@50.000 g100',
    '480p 854x480@25.000 g50',
    '360p 640x360@25.000 g50',
  ]);
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 59.94 }), [
    '720p 1280x720@59.940 g120',
    '480p 854x480@29.970 g60',
    '360p 640x360@29.970 g60',
  ]);
  const p = planLadder(ladder, { width: 1280, height: 720, fps: 59.94 }, segmentTargetSec);
  assert.deepEqual(
    p.rungs.map((r) => r.fps),
    [
      { num: 60000, den: 1001 },
      { num: 30000, den: 1001 },
      { num: 30000, den: 1001 },
    ],
  );
  assert.deepEqual(p.keyframeStep, { num: 1001, den: 30000 }, 'a step every rung has a frame on');
});

test('a portrait source is cut by its short side: 720x1280 gets 720x1280, 480x854, 360x640', () => {
  assert.deepEqual(rungs({ width: 720, height: 1280, fps: 30 }), [
    '720p 720x1280@30.000 g60',
    '480p 480x854@30.000 g60',
    '360p 360x640@30.000 g60',
  ]);
  const scales = planLadder(ladder, { width: 720, height: 1280, fps: 30 }, segmentTargetSec).rungs.map((r) => r.scale);
  assert.deepEqual(scales, ['720:1280', '480:854', '360:640']);
});

test('rungs above the short side are dropped, never upscaled; a tiny source gets the smallest rung', () => {
  assert.deepEqual(
    planLadder(ladder, { width: 960, height: 540, fps: 30 }, 2).rungs.map((r) => r.name),
    ['480p', '360p'],
  );
  assert.deepEqual(
    planLadder(ladder, { width: 320, height: 240, fps: 30 }, 2).rungs.map((r) => r.name),
    ['360p'],
  );
  assert.deepEqual(
    planLadder(ladder, { width: 1080, height: 1920, fps: 30 }, 2).rungs.map((r) => r.name),
    ['1080p', '720p', '480p', '360p'],
  );
  const kept = planLadder(ladder.slice(1), { width: 360, height: 640, fps: 25 }, 2, true).rungs;
  assert.deepEqual(
    kept.map((r) => r.scale),
    ['720:1280', '480:854', '360:640'],
    'keepAll: a returning publisher keeps its rungs',
  );
});

test('an unknown source: every rung, 16:9 estimate with ffmpeg keeping the aspect ratio, 30 fps', () => {
  const p = planLadder(ladder, {}, 2);
  assert.deepEqual(
    p.rungs.map((r) => `${r.scale} ${r.width}x${r.height} ${value(r.fps)}`),
    ['-2:1080 1920x1080 30', '-2:720 1280x720 30', '-2:480 854x480 30', '-2:360 640x360 30'],
  );
  assert.deepEqual(
    planLadder(ladder, { height: 720 }, 2).rungs.map((r) => r.name),
    ['720p', '480p', '360p'],
  );
  assert.deepEqual(rungs({ width: 640, height: 360, fps: 90000 }), ['360p 640x360@30.000 g60'], 'a clock rate is no frame rate');
});

test('a rung fps setting is a cap reached by dropping frames evenly, never above the source', () => {
  const l = [
    { name: 'a', height: 720, fps: 29.97, videoKbps: 2000 },
    { name: 'b', height: 360, fps: 30, videoKbps: 500 },
  ];
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 59.94 }, l), ['a 1280x720@29.970 g60', 'b 640x360@29.970 g60']);
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 25 }, l), ['a 1280x720@25.000 g50', 'b 640x360@25.000 g50']);
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 60 }, l), ['a 1280x720@30.000 g60', 'b 640x360@30.000 g60']);
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 120 }), [
    '720p 1280x720@60.000 g120',
    '480p 854x480@30.000 g60',
    '360p 640x360@30.000 g60',
  ]);
  assert.deepEqual(rungs({ width: 1280, height: 720, fps: 50 }, l), ['a 1280x720@25.000 g50', 'b 640x360@25.000 g50']);
  assert.deepEqual(rungs({}, l), ['a 1280x720@29.970 g60', 'b 640x360@30.000 g60'], 'unknown source: the caps, one frame of skew at most');
});

test('stated rates map to exact fractions', () => {
  assert.deepEqual(toRational(29.97), { num: 30000, den: 1001 });
  assert.deepEqual(toRational(29.97002997002997), { num: 30000, den: 1001 });
  assert.deepEqual(toRational(59.94), { num: 60000, den: 1001 });
  assert.deepEqual(toRational(23.976), { num: 24000, den: 1001 });
  assert.deepEqual(toRational(25), { num: 25, den: 1 });
  assert.deepEqual(toRational(12.5), { num: 25, den: 2 });
  assert.deepEqual(rateUnder({ num: 60000, den: 1001 }, 30), { num: 30000, den: 1001 });
  assert.deepEqual(rateUnder({ num: 24, den: 1 }, 30), { num: 24, den: 1 });
});

const H264_AAC: SourceCodecs = { h264: true, aacCopyable: true, videoKbps: 6000 };
const preset = (p: LadderPreset, source: SourceVideo, codecs = H264_AAC, names?: Set<string>) =>
  planForPreset(p, loadConfig({}).ladder, source, codecs, segmentTargetSec, names).rungs.map(
    (r) => `${r.copy ? `copy${r.copyAudio ? '+aac' : ''} ` : ''}${r.name} ${r.width}x${r.height}@${value(r.fps).toFixed(3)}`,
  );

test('standard: the source copied, then the rungs strictly below its short side at up to 30 fps', () => {
  assert.deepEqual(preset('standard', { width: 1920, height: 1080, fps: 60 }), [
    'copy+aac source 1920x1080@60.000',
    '720p 1280x720@30.000',
    '480p 854x480@30.000',
    '360p 640x360@30.000',
  ]);
  // A 720p source is the 720p rendition itself: no encoded 720p under it. 59.94 halves to 29.97 below.
  assert.deepEqual(preset('standard', { width: 1280, height: 720, fps: 59.94 }), [
    'copy+aac source 1280x720@59.940',
    '480p 854x480@29.970',
    '360p 640x360@29.970',
  ]);
  assert.deepEqual(preset('standard', { width: 720, height: 1280, fps: 30 }), [
    'copy+aac source 720x1280@30.000',
    '480p 480x854@30.000',
    '360p 360x640@30.000',
  ]);
  // Nothing below a 360p source: the source rendition alone. MP3 audio is encoded, not copied.
  assert.deepEqual(preset('standard', { width: 640, height: 360, fps: 25 }, { h264: true, aacCopyable: false }), [
    'copy source 640x360@25.000',
  ]);
});

test('passthrough, audio and custom; a source that is not H.264 is encoded', () => {
  assert.deepEqual(preset('passthrough', { width: 1920, height: 1080, fps: 50 }), ['copy+aac source 1920x1080@50.000']);
  assert.deepEqual(preset('audio', { width: 1920, height: 1080, fps: 50 }), ['audio 0x0@0.000']);
  assert.deepEqual(preset('custom', { width: 1280, height: 720, fps: 30 }), [
    '720p 1280x720@30.000',
    '480p 854x480@30.000',
    '360p 640x360@30.000',
  ]);
  const vp6 = { h264: false, aacCopyable: true };
  assert.deepEqual(preset('standard', { width: 1280, height: 720, fps: 30 }, vp6), preset('custom', { width: 1280, height: 720, fps: 30 }));
  assert.deepEqual(preset('passthrough', { width: 1280, height: 720, fps: 30 }, vp6), ['720p 1280x720@30.000']);
  // Unknown size and rate: the source rendition measures them; every rung is kept below it.
  assert.deepEqual(preset('standard', {}), [
    'copy+aac source 0x0@0.000',
    '720p 1280x720@30.000',
    '480p 854x480@30.000',
    '360p 640x360@30.000',
  ]);
});

test('a returning publisher keeps the rendition names of the stream', () => {
  assert.deepEqual(preset('standard', { width: 1920, height: 1080, fps: 30 }, H264_AAC, new Set(['source', '360p'])), [
    'copy+aac source 1920x1080@30.000',
    '360p 640x360@30.000',
  ]);
  assert.deepEqual(preset('standard', { width: 1280, height: 720, fps: 30 }, H264_AAC, new Set(['480p', '360p'])), [
    '480p 854x480@30.000',
    '360p 640x360@30.000',
  ]);
});
