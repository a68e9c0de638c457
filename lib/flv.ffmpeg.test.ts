import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FlvError, FlvReader, TagType, isSequenceHeader, isVideoKeyframe, readMetaData, type FlvTag } from './flv.ts';
import { makeTempDir } from '../test/support/temp-dir.ts';

const tmp = makeTempDir('flv');
let flv: Buffer;

before(async () => {
  const file = join(tmp.path, 'a.flv');
  await promisify(execFile)('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=320x180:rate=30',
    '-f',
    'lavfi',
    '-i',
    'sine',
    '-t',
    '3',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-g',
    '30',
    '-c:a',
    'aac',
    '-f',
    'flv',
    file,
  ]);
  flv = readFileSync(file);
});
after(() => tmp.remove());

function readAll(chunkSize: number): FlvTag[] {
  const r = new FlvReader();
  const tags: FlvTag[] = [];
  for (let i = 0; i < flv.length; i += chunkSize) tags.push(...r.push(flv.subarray(i, i + chunkSize)));
  assert.equal(r.bufferedBytes, 0);
  return tags;
}

test('splits ffmpeg FLV into tags, whatever the chunking', () => {
  const whole = readAll(flv.length);
  assert.ok(whole.length > 100);
  for (const size of [1, 7, 4096]) {
    const tags = readAll(size);
    assert.equal(tags.length, whole.length);
    assert.ok(tags.every((t, i) => t.raw.equals(whole[i]!.raw)));
  }
  // The tags plus the header re-create the stream byte for byte.
  assert.ok(Buffer.concat([flv.subarray(0, 13), ...whole.map((t) => t.raw)]).equals(flv));
});

test('finds metadata, sequence headers and keyframes', () => {
  const tags = readAll(flv.length);
  const meta = readMetaData(tags[0]!);
  assert.equal(meta?.width, 320);
  assert.equal(meta?.height, 180);
  assert.equal(tags.filter((t) => isSequenceHeader(t)).length, 2);
  const keyframes = tags.filter(isVideoKeyframe);
  assert.ok(keyframes.length >= 3 && keyframes.every((t) => t.type === TagType.video));
  assert.deepEqual(
    keyframes.slice(0, 3).map((t) => Math.round(t.timestamp / 1000)),
    [0, 1, 2],
    'one keyframe a second (-g 30)',
  );
});

test('refuses what is not FLV and oversized tags, without buffering them', () => {
  assert.throws(() => new FlvReader().push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), FlvError);
  const huge = Buffer.alloc(13 + 11);
  flv.copy(huge, 0, 0, 13);
  huge[13] = 9;
  huge.writeUIntBE(0xffffff, 14, 3);
  assert.throws(() => new FlvReader().push(huge), /exceeds the limit/);
});

test('metadata reader survives truncated AMF data', () => {
  const tags = readAll(flv.length);
  const meta = tags[0]!;
  const cut = { ...meta, body: meta.body.subarray(0, 40) };
  assert.doesNotThrow(() => readMetaData(cut));
  assert.equal(readMetaData(tags[5]!), undefined);
});
