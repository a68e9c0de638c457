// The Thumbnailer with real ffmpeg: fMP4 segments of a 640x360 test pattern in, live thumbnails, tiles, sprite
// sheets and the preview VTT out; a segment ffmpeg cannot decode is logged and skipped, the next one works.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { createLogger } from '../../lib/logger.ts';
import { Thumbnailer } from './thumbnailer.ts';
import { parsePreviewVtt } from '../../player/src/seek-preview.ts';

const run = promisify(execFile);
let clip: Buffer;

async function size(jpeg: Buffer): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'onair-thumb-'));
  try {
    writeFileSync(join(dir, 'p.jpg'), jpeg);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', join(dir, 'p.jpg')]);
    return stdout.trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

before(async () => {
  // A 2 s fragmented MP4 starting on a keyframe, as a packager's init + segment are.
  const dir = mkdtempSync(join(tmpdir(), 'onair-thumb-'));
  try {
    const file = join(dir, 'clip.mp4');
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '2'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-pix_fmt', 'yuv420p'],
      ...['-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', file],
    ]);
    clip = readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one thumbnail and tile per interval of media, sheets reported, VTT over the segments seen', async () => {
  const source = new EventEmitter() as EventEmitter & { init(run: number): Buffer | undefined };
  // The whole clip stands for the init and each segment's bytes (init + segment = the clip, a whole fMP4).
  source.init = () => Buffer.alloc(0);
  const thumbnails: number[] = [];
  const sheets: { n: number; msns: readonly number[]; jpeg: Buffer }[] = [];
  let cpu = 0;
  const t = new Thumbnailer({
    ffmpegPath: 'ffmpeg',
    intervalSec: 4,
    logger: createLogger('silent'),
    checkpointTiles: 2,
    cpu: (s) => (cpu += s),
    hooks: { thumbnail: (_jpeg, mediaSec) => thumbnails.push(mediaSec), sheet: (n, jpeg, msns) => sheets.push({ n, msns, jpeg }) },
  });
  t.attach(source, { width: 640, height: 360 });
  assert.deepEqual(t.tileSize, { width: 160, height: 90 });
  for (let msn = 0; msn < 10; msn++) {
    source.emit('segment', { msn, run: 0, durationSec: 2, programDateTimeMs: 1_000_000 + msn * 2000, bytes: () => clip });
    // Segments come every 2 s; a job takes far less. Wait for it so that none is skipped as busy.
    await new Promise((r) => setTimeout(r, 400));
  }
  await t.finish();
  // Every 4 s of media: segments 0, 2, 4, 6, 8.
  assert.deepEqual(thumbnails, [0, 4, 8, 12, 16]);
  assert.equal(t.tileCount, 5);
  assert.equal(await size(t.thumbnail!.jpeg), '320,180');
  // Reported every 2 tiles, then the rest at finish().
  assert.deepEqual(
    sheets.map((s) => s.msns.length),
    [2, 4, 5],
  );
  assert.equal(await size(sheets[2]!.jpeg), '800,90', 'five 160x90 tiles in one row');
  const cues = parsePreviewVtt(t.vtt(), 'http://o/live/ev/thumbnails.vtt');
  assert.deepEqual(
    cues.map((c) => [c.startSec, c.endSec, c.x]),
    [
      [0, 4, 0],
      [4, 8, 160],
      [8, 12, 320],
      [12, 16, 480],
      [16, 20, 640],
    ],
  );
  assert.equal(await size((await t.sheet(0))!), '800,90');
  assert.equal(t.sheet(1), undefined);
  assert.ok(cpu > 0, 'ffmpeg CPU counted');
});

test('a segment ffmpeg cannot decode is logged and skipped; the next one gives the thumbnail', async () => {
  const source = new EventEmitter() as EventEmitter & { init(run: number): Buffer | undefined };
  source.init = () => Buffer.alloc(0);
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const t = new Thumbnailer({ ffmpegPath: 'ffmpeg', intervalSec: 2, logger: createLogger('warn', sink) });
  t.attach(source, { width: 640, height: 360 });
  source.emit('segment', { msn: 0, run: 0, durationSec: 2, programDateTimeMs: 0, bytes: () => Buffer.from('not a video') });
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(t.thumbnail, undefined);
  assert.match(lines.join(''), /thumbnail not taken/);
  source.emit('segment', { msn: 1, run: 0, durationSec: 2, programDateTimeMs: 2000, bytes: () => clip });
  await t.finish();
  assert.equal(await size(t.thumbnail!.jpeg), '320,180');
  assert.equal(t.tileCount, 1);
});
