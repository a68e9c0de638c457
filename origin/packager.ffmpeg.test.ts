// The packager's output is decodable: ffprobe/ffmpeg read an init + segment concatenation without errors.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RenditionPackager, type Segment } from './packager.ts';
import { loadFmp4Fixture } from '../test/support/fmp4-fixture.ts';
import { makeTempDir } from '../test/support/temp-dir.ts';

const exec = promisify(execFile);
const tmp = makeTempDir('packager');
after(() => tmp.remove());

it('produces init+segment concatenations that ffprobe decodes', async () => {
  const p = new RenditionPackager('360p', { segmentTargetSec: 2, partTargetSec: 0.5, windowSegments: 6 });
  const segments: Segment[] = [];
  p.on('segment', (s) => segments.push(s));
  p.beginRun({ zeroMs: Date.UTC(2025, 0, 1, 12, 0, 0), session: 1 });
  p.push(loadFmp4Fixture());
  const path = join(tmp.path, 'seg1.mp4');
  await writeFile(path, Buffer.concat([p.init(p.latestRun!)!, segments[1]!.bytes()]));
  const { stdout } = await exec(
    'ffprobe',
    ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames', '-of', 'json', path],
    {
      timeout: 30_000,
    },
  );
  const streams = (JSON.parse(stdout) as { streams: { codec_type: string; nb_read_frames: string }[] }).streams;
  assert.equal(streams.find((s) => s.codec_type === 'video')?.nb_read_frames, '60');
  assert.ok(Number(streams.find((s) => s.codec_type === 'audio')?.nb_read_frames) >= 90);
  const { stderr } = await exec('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-f', 'null', '-'], {
    timeout: 30_000,
  });
  assert.equal(stderr.trim(), '', 'decodes without errors');
});
