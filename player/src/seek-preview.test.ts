import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clock, cueAt, parsePreviewVtt } from './seek-preview.ts';
import { previewCues, renderPreviewVtt } from '../../origin/thumbnails/layout.ts';

const BASE = 'https://tv.example.org/live/ev-123456/thumbnails.vtt';

test('parsePreviewVtt reads what the origin writes, sprite URLs resolved against the VTT', () => {
  const segments = [0, 1, 2, 3, 4].map((msn) => ({ msn, durationSec: 2 }));
  const cues = parsePreviewVtt(renderPreviewVtt(previewCues(segments, [0, 2, 4], { width: 160, height: 90 })), BASE);
  assert.deepEqual(cues, [
    { startSec: 0, endSec: 4, url: 'https://tv.example.org/live/ev-123456/sprite-0.jpg', x: 0, y: 0, w: 160, h: 90 },
    { startSec: 4, endSec: 8, url: 'https://tv.example.org/live/ev-123456/sprite-0.jpg', x: 160, y: 0, w: 160, h: 90 },
    { startSec: 8, endSec: 10, url: 'https://tv.example.org/live/ev-123456/sprite-0.jpg', x: 320, y: 0, w: 160, h: 90 },
  ]);
});

test('parsePreviewVtt takes cue ids, CRLF, short timestamps and absolute URLs; skips cues without a region', () => {
  const text =
    'WEBVTT\r\n\r\n1\r\n00:01.000 --> 00:02.500\r\nhttps://cdn.example/s.jpg#xywh=10,20,30,40\r\n\r\n' +
    '00:00:02.500 --> 00:00:03.000\r\nno region here\r\n\r\n00:00:03.000 --> 00:00:04.000\r\nx.jpg#xywh=1,2,3\r\n';
  assert.deepEqual(parsePreviewVtt(text, BASE), [
    { startSec: 1, endSec: 2.5, url: 'https://cdn.example/s.jpg', x: 10, y: 20, w: 30, h: 40 },
  ]);
  assert.throws(() => parsePreviewVtt('<html>', BASE), /not a WebVTT file/);
});

test('cueAt finds the cue of a time; none before the first or after the last', () => {
  const cues = parsePreviewVtt(
    'WEBVTT\n\n00:00:01.000 --> 00:00:03.000\na.jpg#xywh=0,0,1,1\n\n00:00:03.000 --> 00:00:05.000\na.jpg#xywh=1,0,1,1\n',
    BASE,
  );
  assert.equal(cueAt(cues, 0.5), undefined);
  assert.equal(cueAt(cues, 1)?.x, 0);
  assert.equal(cueAt(cues, 2.99)?.x, 0);
  assert.equal(cueAt(cues, 3)?.x, 1);
  assert.equal(cueAt(cues, 5)?.x, 1);
  assert.equal(cueAt(cues, 5.5), undefined);
  assert.equal(cueAt([], 1), undefined);
  assert.equal(clock(65.9), '1:05');
  assert.equal(clock(3725), '1:02:05');
});
