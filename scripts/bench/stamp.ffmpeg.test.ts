// The wall-clock strip: encode/decode round trip, mis-reads dropped, and a real ffmpeg publish
// whose strip survives downscaling to 360p and low-bitrate x264 and reads back as the wall clock.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encodeStamp, decodeStamp, stampAge, stampedSourceGraph, stripCellLuma, stripRows, STRIP_CELLS, STAMP_MODULUS } from './stamp.ts';
import { makeTempDir } from '../../test/support/temp-dir.ts';

const run = promisify(execFile);
const luma = (cells: number[]) => cells.map((b) => (b ? 235 : 16));

describe('stamp encoding', () => {
  it('round-trips any 32-bit value, and wall-clock ms modulo 2^32', () => {
    for (const v of [0, 1, 2 ** 31, STAMP_MODULUS - 1, 123456789, 1795320861903 % STAMP_MODULUS]) {
      const cells = encodeStamp(v);
      assert.equal(cells.length, STRIP_CELLS);
      assert.equal(decodeStamp(luma(cells)), v);
    }
    assert.equal(decodeStamp(luma(encodeStamp(1795320861903))), 1795320861903 % STAMP_MODULUS);
  });

  it('drops a strip with a flipped bit, and all-black or all-white strips', () => {
    const cells = encodeStamp(987654321);
    for (let i = 0; i < STRIP_CELLS; i++) {
      const bad = [...cells];
      bad[i] = 1 - bad[i]!;
      assert.equal(decodeStamp(luma(bad)), undefined, `bit ${i}`);
    }
    assert.equal(decodeStamp(new Array<number>(STRIP_CELLS).fill(0)), undefined);
    assert.equal(decodeStamp(new Array<number>(STRIP_CELLS).fill(255)), undefined);
    assert.equal(decodeStamp([1, 2, 3]), undefined);
  });

  it('measures age across the 2^32 wrap', () => {
    assert.equal(stampAge(STAMP_MODULUS + 500, STAMP_MODULUS - 1000), 1500);
    assert.equal(stampAge(10_000, 12_000), -2000);
    assert.equal(stampAge(1795320861903, 1795320860000 % STAMP_MODULUS), 1903);
  });

  it('samples cell centres of a strip image', () => {
    const cells = encodeStamp(42424242);
    const w = 640;
    const h = 32;
    const img = (x: number, y: number) => {
      const c = Math.floor((x * STRIP_CELLS) / w);
      const border = x % (w / STRIP_CELLS) === 0 || y === 0;
      return border ? 128 : cells[c]! ? 255 : 0; // borders blurred: must not matter
    };
    assert.equal(decodeStamp(stripCellLuma(w, h, img)), 42424242);
    assert.deepEqual(stripRows(720), { top: 656, height: 64 });
    assert.deepEqual(stripRows(360), { top: 328, height: 32 });
  });
});

describe('stamped ffmpeg source', () => {
  const tmp = makeTempDir('stamp');
  after(() => tmp.remove());

  it('burns the wall clock at frame generation, readable after 360p + 400 kb/s x264', async () => {
    const file = join(tmp.path, 'stamped.mp4');
    const started = Date.now();
    // The publisher's settings, then a 360p low-bitrate re-encode like the ladder's bottom rung.
    await run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostdin',
      '-re',
      '-t',
      '2',
      '-f',
      'lavfi',
      '-i',
      stampedSourceGraph(1280, 720, 30),
      '-vf',
      'scale=640:360',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-tune',
      'zerolatency',
      '-b:v',
      '400k',
      '-g',
      '60',
      '-pix_fmt',
      'yuv420p',
      '-y',
      file,
    ]);
    const finished = Date.now();
    const { top, height } = stripRows(360);
    const { stdout } = await run(
      'ffmpeg',
      ['-v', 'error', '-i', file, '-vf', `crop=640:${height}:0:${top}`, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'],
      {
        encoding: 'buffer',
        maxBuffer: 64 << 20,
      },
    );
    const frameBytes = 640 * height;
    const frames = stdout.length / frameBytes;
    assert.equal(frames, 60);
    const stamps: number[] = [];
    for (let f = 0; f < frames; f++) {
      const base = f * frameBytes;
      const v = decodeStamp(stripCellLuma(640, height, (x, y) => stdout[base + y * 640 + x]!));
      assert.notEqual(v, undefined, `frame ${f} decodes`);
      stamps.push(v!);
    }
    // Generated during the run, on the wall clock.
    assert.ok(stampAge(stamps[0]!, started % STAMP_MODULUS) >= 0, 'first stamp not before spawn');
    assert.ok(stampAge(finished, stamps.at(-1)!) >= 0, 'last stamp not after exit');
    // Paced by -re: ~33 ms apart on average, always increasing.
    const steps = stamps.slice(1).map((s, i) => stampAge(s, stamps[i]!));
    assert.ok(
      steps.every((d) => d > 0),
      `increasing: ${steps.join(',')}`,
    );
    const span = stampAge(stamps.at(-1)!, stamps[0]!);
    assert.ok(span > 59 * 25 && span < 59 * 60, `59 frame intervals span ${span} ms`);
  });
});
