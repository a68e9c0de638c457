// ffmpeg -progress parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { parseProgressBlock, readProgress, type TranscodeStats } from './ffmpeg-progress.ts';

const block =
  'frame=300\nfps=29.97\nstream_0_0_q=23.0\nbitrate=N/A\nout_time_us=10000000\ndup_frames=1\ndrop_frames=4\nspeed=0.998x\nprogress=continue\n';

test('parses speed, fps, dropped/duplicated frames and media time', () => {
  const s = parseProgressBlock(block, 5)!;
  assert.deepEqual(s, { speed: 0.998, fps: 29.97, dropFrames: 4, dupFrames: 1, outTimeSec: 10, at: 5 });
  assert.equal(parseProgressBlock('frame=1\n'), undefined);
  assert.equal(parseProgressBlock('speed=N/A\nprogress=continue\n')!.speed, null);
});

test('reads blocks split across chunks', () => {
  const stream = new PassThrough();
  const got: TranscodeStats[] = [];
  readProgress(stream, (s) => got.push(s));
  stream.write(block.slice(0, 40));
  stream.write(block.slice(40) + block.replace('speed=0.998x', 'speed=1.01x'));
  assert.deepEqual(
    got.map((s) => s.speed),
    [0.998, 1.01],
  );
});
