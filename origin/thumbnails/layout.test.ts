import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  COLUMNS,
  previewCues,
  renderPreviewVtt,
  scaledSize,
  sheetGrid,
  TILES_PER_SHEET,
  tilePosition,
  tilesInSheet,
  vttTimestamp,
} from './layout.ts';

const tile = { width: 160, height: 90 };

test('scaledSize keeps the aspect with an even height', () => {
  assert.deepEqual(scaledSize({ width: 640, height: 360 }, 160), { width: 160, height: 90 });
  assert.deepEqual(scaledSize({ width: 480, height: 360 }, 320), { width: 320, height: 240 });
  assert.deepEqual(scaledSize({ width: 360, height: 640 }, 160), { width: 160, height: 284 });
  assert.deepEqual(scaledSize({ width: 1000, height: 1 }, 160), { width: 160, height: 2 });
  assert.throws(() => scaledSize({ width: 0, height: 360 }, 160), /bad source size/);
});

test('tilePosition fills rows of COLUMNS, then the next sheet', () => {
  assert.deepEqual(tilePosition(0, tile), { sheet: 0, x: 0, y: 0 });
  assert.deepEqual(tilePosition(COLUMNS - 1, tile), { sheet: 0, x: 160 * (COLUMNS - 1), y: 0 });
  assert.deepEqual(tilePosition(COLUMNS, tile), { sheet: 0, x: 0, y: 90 });
  assert.deepEqual(tilePosition(TILES_PER_SHEET + 3, tile), { sheet: 1, x: 480, y: 0 });
  assert.throws(() => tilePosition(-1, tile), /bad tile index/);
});

test('sheetGrid: a sheet grows by rows and every tile position lies inside it', () => {
  assert.deepEqual(sheetGrid(1), { columns: 1, rows: 1 });
  assert.deepEqual(sheetGrid(4), { columns: 4, rows: 1 });
  assert.deepEqual(sheetGrid(COLUMNS), { columns: COLUMNS, rows: 1 });
  assert.deepEqual(sheetGrid(COLUMNS + 1), { columns: COLUMNS, rows: 2 });
  assert.throws(() => sheetGrid(0), /bad tile count/);
  assert.throws(() => sheetGrid(TILES_PER_SHEET + 1), /bad tile count/);
  for (let n = 1; n <= TILES_PER_SHEET; n++) {
    const g = sheetGrid(n);
    for (let i = 0; i < n; i++) {
      const p = tilePosition(i, tile);
      assert.ok(p.x + tile.width <= g.columns * tile.width && p.y + tile.height <= g.rows * tile.height, `tile ${i} of ${n}`);
    }
  }
  assert.equal(tilesInSheet(0, 5), 5);
  assert.equal(tilesInSheet(0, 150), TILES_PER_SHEET);
  assert.equal(tilesInSheet(1, 150), 50);
  assert.equal(tilesInSheet(2, 150), 0);
});

test('vttTimestamp writes hh:mm:ss.ttt', () => {
  assert.equal(vttTimestamp(0), '00:00:00.000');
  assert.equal(vttTimestamp(61.5), '00:01:01.500');
  assert.equal(vttTimestamp(3600 + 2.0004), '01:00:02.000');
  assert.equal(vttTimestamp(-1), '00:00:00.000');
});

test('previewCues cover the timeline from 0 to the end, one tile per cue', () => {
  const segments = [0, 1, 2, 3, 4, 5, 6, 7].map((msn) => ({ msn, durationSec: 2 }));
  // Tiles taken at msn 1 (the first segment had none), 3 and 6.
  const cues = previewCues(segments, [1, 3, 6], tile);
  assert.deepEqual(
    cues.map((c) => [c.startSec, c.endSec, c.x, c.y]),
    [
      [0, 6, 0, 0],
      [6, 12, 160, 0],
      [12, 16, 320, 0],
    ],
  );
});

test('previewCues skip tiles of unlisted segments to the next one and drop the rest', () => {
  // msn 2 is not common to every rendition; the tile at 9 is past the end.
  const segments = [0, 1, 3, 4].map((msn) => ({ msn, durationSec: 2.5 }));
  const cues = previewCues(segments, [0, 2, 9], tile);
  assert.deepEqual(
    cues.map((c) => [c.startSec, c.endSec, c.x]),
    [
      [0, 5, 0],
      [5, 10, 160],
    ],
  );
  assert.deepEqual(previewCues([], [0], tile), []);
  assert.deepEqual(previewCues(segments, [], tile), []);
});

test('renderPreviewVtt names the sheet and region of each cue', () => {
  const segments = Array.from({ length: TILES_PER_SHEET + 2 }, (_, msn) => ({ msn, durationSec: 1 }));
  const tiles = segments.map((s) => s.msn);
  const vtt = renderPreviewVtt(previewCues(segments, tiles, tile));
  assert.ok(vtt.startsWith('WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nsprite-0.jpg#xywh=0,0,160,90\n'));
  assert.ok(vtt.includes('\n00:01:40.000 --> 00:01:41.000\nsprite-1.jpg#xywh=0,0,160,90\n'));
  assert.ok(vtt.endsWith('00:01:41.000 --> 00:01:42.000\nsprite-1.jpg#xywh=160,0,160,90\n'));
  assert.equal(renderPreviewVtt([]), 'WEBVTT\n');
});
