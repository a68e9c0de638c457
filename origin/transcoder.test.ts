import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/load.ts';
import { checkFfmpeg, ffmpegArgs, ladderFor } from './transcoder.ts';

const config = loadConfig({});

test('renditions above the source height are dropped, never upscaled', () => {
  assert.deepEqual(ladderFor(config.ladder, 1080).map((r) => r.name), ['720p', '480p', '360p']);
  assert.deepEqual(ladderFor(config.ladder, 720).map((r) => r.name), ['720p', '480p', '360p']);
  assert.deepEqual(ladderFor(config.ladder, 540).map((r) => r.name), ['480p', '360p']);
  assert.deepEqual(ladderFor(config.ladder, 240).map((r) => r.name), ['360p'], 'smallest rung for a tiny source');
  assert.deepEqual(ladderFor(config.ladder, undefined).map((r) => r.name), ['720p', '480p', '360p']);
});

test('ffmpeg arguments: one decode, fixed GOP on the segment target, one fMP4 pipe per rendition', () => {
  const args = ffmpegArgs(config, ladderFor(config.ladder, 720), true);
  const joined = args.join(' ');
  assert.equal(args.filter((a) => a === '-i').length, 1);
  assert.match(joined, /split=3/);
  assert.equal(args.filter((a) => a === 'expr:gte(t,n_forced*2)').length, 3);
  assert.equal(args.filter((a) => a === '-sc_threshold').length, 3);
  assert.deepEqual(args.filter((a) => a.startsWith('pipe:') && a !== 'pipe:0'), ['pipe:3', 'pipe:4', 'pipe:5']);
  assert.match(joined, /-frag_duration 500000/);
  assert.doesNotMatch(ffmpegArgs(config, ladderFor(config.ladder, 360), false).join(' '), /split|-c:a/);
});

test('a missing ffmpeg gives a clear message', async () => {
  await assert.rejects(checkFfmpeg('/nonexistent/ffmpeg'), /ffmpeg not found at "\/nonexistent\/ffmpeg".*ONAIR_FFMPEG_PATH/);
  assert.match(await checkFfmpeg('ffmpeg'), /^ffmpeg version/);
});
