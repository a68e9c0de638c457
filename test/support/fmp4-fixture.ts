// Test fixture: a short fragmented MP4 made by ffmpeg the way the origin's ladder writes it (same GOP, fragment
// and movflags settings; a low bitrate so that it stays small). It is committed as origin/testdata/av-640x360.mp4,
// so that the packager, playlist and mp4 unit tests need no ffmpeg. Regenerate it (only if the recipe changes) with
//   npx tsx test/support/fmp4-fixture.ts
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Mp4BoxSplitter, parseInit } from '../../origin/mp4.ts';

/** Where the committed fixture is. */
export const FMP4_FIXTURE_PATH = join(import.meta.dirname, '..', '..', 'origin', 'testdata', 'av-640x360.mp4');

/** The committed fixture: 7 s of 640x360@30 H.264 + stereo AAC, 2 s keyframes, 0.5 s fragments. */
export function loadFmp4Fixture(): Buffer {
  return readFileSync(FMP4_FIXTURE_PATH);
}

/** The committed fixture cut the way the packager sees it: ftyp+moov, then one buffer per moof+mdat fragment (14). */
export function fmp4FixtureFragments(): { init: Buffer; fragments: Buffer[] } {
  const boxes = new Mp4BoxSplitter().push(loadFmp4Fixture());
  const init = Buffer.concat(boxes.filter((b) => b.type === 'ftyp' || b.type === 'moov').map((b) => b.bytes));
  const fragments: Buffer[] = [];
  boxes.forEach((b, i) => {
    const next = boxes[i + 1];
    if (b.type === 'moof' && next?.type === 'mdat') fragments.push(Buffer.concat([b.bytes, next.bytes]));
  });
  return { init, fragments };
}

/** Runs ffmpeg to write the fixture to `out` and returns its bytes. */
export async function makeFmp4Fixture(out: string): Promise<Buffer> {
  await promisify(execFile)(
    'ffmpeg',
    [
      '-nostdin',
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=30',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=48000',
      '-t',
      '7',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-g',
      '60',
      '-keyint_min',
      '60',
      '-sc_threshold',
      '0',
      '-force_key_frames',
      'expr:gte(t,n_forced*2)',
      '-b:v',
      '60k',
      '-maxrate',
      '80k',
      '-bufsize',
      '80k',
      '-c:a',
      'aac',
      '-b:a',
      '24k',
      '-ac',
      '2',
      '-f',
      'mp4',
      '-movflags',
      '+frag_keyframe+empty_moov+default_base_moof',
      '-frag_duration',
      '500000',
      out,
    ],
    { timeout: 60_000 },
  );
  return readFile(out);
}

if (process.argv[1] === import.meta.filename) {
  const bytes = await makeFmp4Fixture(FMP4_FIXTURE_PATH);
  console.log(`wrote ${FMP4_FIXTURE_PATH} (${bytes.length} bytes)`);
}

/** A copy of a moof+mdat fragment with each track's tfdt moved by `offsetSec` (on a later spot of the timeline). */
export function shiftFragment(fragment: Buffer, init: Buffer, offsetSec: number): Buffer {
  const timescales = new Map(parseInit(init).tracks.map((t) => [t.id, t.timescale]));
  const out = Buffer.from(fragment);
  const moofEnd = out.readUInt32BE(0);
  for (let traf = 8; traf < moofEnd; traf += out.readUInt32BE(traf)) {
    if (out.toString('latin1', traf + 4, traf + 8) !== 'traf') continue;
    let trackId = 0;
    for (let box = traf + 8; box < traf + out.readUInt32BE(traf); box += out.readUInt32BE(box)) {
      const type = out.toString('latin1', box + 4, box + 8);
      if (type === 'tfhd') trackId = out.readUInt32BE(box + 12);
      if (type !== 'tfdt') continue;
      const delta = BigInt(Math.round(offsetSec * timescales.get(trackId)!));
      if (out[box + 8] === 1) out.writeBigUInt64BE(out.readBigUInt64BE(box + 12) + delta, box + 12);
      else out.writeUInt32BE(Number(BigInt(out.readUInt32BE(box + 12)) + delta), box + 12);
    }
  }
  return out;
}
