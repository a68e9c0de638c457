// Seek-preview thumbnails as players expect them: tiles packed into sprite sheets (JPEG grids) and a WebVTT file
// whose cues name a sheet region with a media fragment, `sprite-0.jpg#xywh=x,y,w,h` (W3C Media Fragments URI 1.0
// §4.2.2 "Spatial Dimension"; WebVTT cue timings per W3C WebVTT §4.1). Pure functions: what the origin writes, the
// replay serves and the tests check all come from here.

/** Width of a seek-preview tile, px. */
export const TILE_WIDTH = 160;
/** Width of the live thumbnail and of a recording's poster, px. */
export const THUMBNAIL_WIDTH = 320;
/** Tiles per sheet row, and rows per sheet: a sheet holds at most COLUMNS × ROWS tiles. */
export const COLUMNS = 10;
export const ROWS = 10;
export const TILES_PER_SHEET = COLUMNS * ROWS;

/** A picture size. */
export interface Size {
  width: number;
  height: number;
}

/** The size of a picture `width` px wide with the aspect of `source`, height rounded to an even number (≥ 2). */
export function scaledSize(source: Size, width: number): Size {
  if (!(source.width > 0 && source.height > 0)) throw new Error(`bad source size ${source.width}x${source.height}`);
  return { width, height: Math.max(2, 2 * Math.round((width * source.height) / source.width / 2)) };
}

/** Sprite sheet file name of sheet `n`, relative to the VTT (both live under /live/<event>/). */
export const spriteName = (n: number): string => `sprite-${n}.jpg`;

/** Where tile `i` (0-based, in time order) is: its sheet and its pixel offset in that sheet. */
export function tilePosition(i: number, tile: Size): { sheet: number; x: number; y: number } {
  if (!Number.isInteger(i) || i < 0) throw new Error(`bad tile index ${i}`);
  const inSheet = i % TILES_PER_SHEET;
  return { sheet: Math.floor(i / TILES_PER_SHEET), x: (inSheet % COLUMNS) * tile.width, y: Math.floor(inSheet / COLUMNS) * tile.height };
}

/** The grid of a sheet holding `count` tiles (1..TILES_PER_SHEET): full rows of COLUMNS, fewer columns when count < COLUMNS. */
export function sheetGrid(count: number): { columns: number; rows: number } {
  if (!Number.isInteger(count) || count < 1 || count > TILES_PER_SHEET) throw new Error(`bad tile count ${count}`);
  const columns = Math.min(COLUMNS, count);
  return { columns, rows: Math.ceil(count / columns) };
}

/** How many tiles sheet `n` holds when there are `total` tiles. */
export function tilesInSheet(n: number, total: number): number {
  return Math.max(0, Math.min(TILES_PER_SHEET, total - n * TILES_PER_SHEET));
}

/** `hh:mm:ss.ttt`, the WebVTT timestamp form (W3C WebVTT §4.1, hours always present). */
export function vttTimestamp(sec: number): string {
  const ms = Math.max(0, Math.round(sec * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
}

/** One cue of the thumbnails track. */
export interface PreviewCue {
  startSec: number;
  endSec: number;
  sheet: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The cues of a timeline: `segments` in playlist order (their EXTINF durations give each msn's start time, the
 * player's media time of a VOD or of a DVR playlist starting at the first segment), `tileMsns` the segment each tile
 * was taken from, in tile order. Each tile shows from its segment's start until the next tile's, the last one until
 * the end; the first one from 0, so that the cues cover the whole timeline. Tiles of segments not in `segments`
 * (not stored, not common to every rendition) move to the next listed segment, or are dropped; a tile starting where
 * the previous one does replaces it.
 */
export function previewCues(
  segments: readonly { msn: number; durationSec: number }[],
  tileMsns: readonly number[],
  tile: Size,
): PreviewCue[] {
  const starts: { msn: number; at: number }[] = [];
  let t = 0;
  for (const s of segments) {
    starts.push({ msn: s.msn, at: t });
    t += s.durationSec;
  }
  const total = t;
  const placed: { at: number; index: number }[] = [];
  let j = 0;
  tileMsns.forEach((msn, index) => {
    while (j < starts.length && starts[j]!.msn < msn) j++;
    if (j === starts.length) return;
    const at = placed.length === 0 ? 0 : starts[j]!.at;
    if (placed.length > 0 && placed[placed.length - 1]!.at >= at) placed[placed.length - 1] = { at: placed[placed.length - 1]!.at, index };
    else placed.push({ at, index });
  });
  return placed.flatMap((p, k) => {
    const end = k + 1 < placed.length ? placed[k + 1]!.at : total;
    if (end <= p.at) return [];
    const pos = tilePosition(p.index, tile);
    return [{ startSec: p.at, endSec: end, sheet: pos.sheet, x: pos.x, y: pos.y, width: tile.width, height: tile.height }];
  });
}

/** The WebVTT file of `cues`, each cue's text a sprite URL (relative to the VTT) with its `#xywh=` region. */
export function renderPreviewVtt(cues: readonly PreviewCue[]): string {
  let out = 'WEBVTT\n';
  for (const c of cues) {
    out += `\n${vttTimestamp(c.startSec)} --> ${vttTimestamp(c.endSec)}\n${spriteName(c.sheet)}#xywh=${c.x},${c.y},${c.width},${c.height}\n`;
  }
  return out;
}
