// DVR playlist bytes per reload, with and without delta updates (_HLS_skip=YES, RFC 8216bis §6.2.5.1):
// - synthetic: a 2 h DVR window (3600 stored 2 s segments, as a recording manifest lists them) in front of the
//   default 12-segment LL live window, rendered by the origin's real playlist functions (dvrSource,
//   renderMediaPlaylist);
// - real: one all-in-one onair (6-segment memory window, one 360p rung) publishing for ~70 s, then an LL client
//   following the live edge through the edge with blocking reloads (_HLS_msn/_HLS_part, as hls.js does) for
//   `reloadSec` seconds without _HLS_skip, then as long with it.
// measureDvrPlaylistBytes() returns a plain object (scripts/bench/recording.ts includes it); run alone it prints one
// JSON line:  npx tsx scripts/bench/recording-dvr.ts [--no-real]
import { parseArgs } from 'node:util';
import { parseMediaName } from '../../lib/hls-path.ts';
import { dvrSource, type DvrStoredSegment } from '../../origin/dvr-playlist.ts';
import { renderMediaPlaylist, type MediaPlaylistSource, type PlaylistSegment } from '../../origin/playlist.ts';
import { publishLive, startOnair, waitFor } from './edge-fixtures.ts';

/** What the measurement returns. */
export interface DvrPlaylistBytes {
  synthetic: {
    windowSec: number;
    listedSegments: number;
    /** A full playlist (first load, or a client without delta updates, every reload). */
    fullBytes: number;
    /** A delta update (_HLS_skip=YES). */
    deltaBytes: number;
    skippedSegments: number;
    /** The live window alone (DVR off), for comparison. */
    liveOnlyBytes: number;
    /** An LL client reloads once per part (0.5 s): bytes per minute of watching, full vs delta. */
    fullBytesPerMin: number;
    deltaBytesPerMin: number;
  };
  real?: {
    broadcastSec: number;
    listedSegments: number;
    reloadSec: number;
    full: { reloads: number; bytesPerReload: number };
    delta: { reloads: number; bytesPerReload: number; skippedSegments: number };
  };
}

const T0 = Date.UTC(2026, 0, 1);

/** The synthetic case: 2 h of stored segments before a 12-segment LL window with 4 parts each. */
function synthetic(windowSec = 7200): DvrPlaylistBytes['synthetic'] {
  const liveFrom = 3600;
  const liveTo = liveFrom + 12;
  const stored: DvrStoredSegment[] = [];
  for (let msn = 0; msn < liveFrom; msn++) {
    stored.push({ msn, run: 0, durationSec: 2, programDateTimeMs: T0 + msn * 2000, discontinuitySequence: 0 });
  }
  const parts = Array.from({ length: 4 }, (_, i) => ({ durationSec: 0.5, independent: i === 0 }));
  const segs: PlaylistSegment[] = [];
  for (let msn = liveFrom; msn <= liveTo; msn++) {
    const open = msn === liveTo;
    segs.push({
      msn,
      run: 0,
      parts: open ? parts.slice(0, 2) : parts,
      durationSec: open ? 0 : 2,
      programDateTimeMs: T0 + msn * 2000,
      discontinuity: false,
      complete: !open,
    });
  }
  const live: MediaPlaylistSource = {
    segmentTargetSec: 2,
    partTargetSec: 0.5,
    longestSegmentSec: 2,
    longestPartSec: 0.5,
    discontinuitySequence: 0,
    playlistSegments: segs,
    nextPart: { msn: liveTo, index: 2 },
  };
  const reports = [{ uri: '../240p/index.m3u8', lastMsn: liveTo, lastPart: 1 }];
  const src = dvrSource(live, stored, windowSec);
  const full = renderMediaPlaylist(src, { lowLatency: true, renditionReports: reports });
  const delta = renderMediaPlaylist(src, { lowLatency: true, skip: true, renditionReports: reports });
  const liveOnly = renderMediaPlaylist(live, { lowLatency: true, renditionReports: reports });
  const fullBytes = Buffer.byteLength(full);
  const deltaBytes = Buffer.byteLength(delta);
  return {
    windowSec,
    listedSegments: src.playlistSegments.length,
    fullBytes,
    deltaBytes,
    skippedSegments: Number(/SKIPPED-SEGMENTS=(\d+)/.exec(delta)?.[1] ?? 0),
    liveOnlyBytes: Buffer.byteLength(liveOnly),
    fullBytesPerMin: fullBytes * 120,
    deltaBytesPerMin: deltaBytes * 120,
  };
}

/** Follows the live edge with blocking reloads for `sec` seconds; bytes per reload. */
async function follow(url: string, sec: number, skip: boolean): Promise<{ reloads: number; bytesPerReload: number; skipped: number }> {
  let text = await (await fetch(url)).text();
  let bytes = 0;
  let reloads = 0;
  let skipped = 0;
  const end = Date.now() + sec * 1000;
  while (Date.now() < end) {
    const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(text)?.[1];
    const next = hint === undefined ? undefined : parseMediaName(hint);
    if (next?.kind !== 'part') throw new Error('no preload hint in the playlist');
    const r = await fetch(`${url}?_HLS_msn=${next.msn}&_HLS_part=${next.index}${skip ? '&_HLS_skip=YES' : ''}`);
    const body = Buffer.from(await r.arrayBuffer());
    if (!r.ok) throw new Error(`blocking reload: ${r.status} ${body.toString()}`);
    text = body.toString();
    bytes += body.length;
    reloads++;
    skipped = Math.max(skipped, Number(/SKIPPED-SEGMENTS=(\d+)/.exec(text)?.[1] ?? 0));
  }
  return { reloads, bytesPerReload: reloads === 0 ? 0 : Math.round(bytes / reloads), skipped };
}

/** The real run: onair with DVR on, a broadcast of `broadcastSec`, then an LL client for 2 × `reloadSec`. */
async function real(broadcastSec: number, reloadSec: number): Promise<NonNullable<DvrPlaylistBytes['real']>> {
  const server = await startOnair({
    ONAIR_WINDOW_SEGMENTS: '6',
    ONAIR_DVR_WINDOW_SEC: '7200',
    ONAIR_LADDER: '[{"name":"360p","height":360,"videoKbps":600}]',
  });
  try {
    const ev = await publishLive(server, server.base, { width: 640, height: 360, fps: 30, videoKbps: 800, rendition: '360p' });
    try {
      const url = `${server.base}/live/${ev.id}/360p/index.m3u8`;
      const wanted = Math.floor(broadcastSec / 2);
      const listed = await waitFor(
        `${wanted} segments listed`,
        async () => {
          const t = await (await fetch(url)).text();
          const n = (t.match(/^seg-\d+\.m4s$/gm) ?? []).length;
          return n >= wanted ? n : undefined;
        },
        broadcastSec * 1000 + 90_000,
        1000,
      );
      const full = await follow(url, reloadSec, false);
      const delta = await follow(url, reloadSec, true);
      return {
        broadcastSec,
        listedSegments: listed,
        reloadSec,
        full: { reloads: full.reloads, bytesPerReload: full.bytesPerReload },
        delta: { reloads: delta.reloads, bytesPerReload: delta.bytesPerReload, skippedSegments: delta.skipped },
      };
    } finally {
      ev.stop();
    }
  } finally {
    await server.stop();
  }
}

/** Measures DVR playlist bytes per reload (synthetic 2 h window, and a real short run unless `real` is false). */
export async function measureDvrPlaylistBytes(
  opts: { real?: boolean; broadcastSec?: number; reloadSec?: number } = {},
): Promise<DvrPlaylistBytes> {
  const out: DvrPlaylistBytes = { synthetic: synthetic() };
  if (opts.real !== false) out.real = await real(opts.broadcastSec ?? 70, opts.reloadSec ?? 10);
  return out;
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { 'no-real': { type: 'boolean' } }, strict: true });
  const result = await measureDvrPlaylistBytes({ real: values['no-real'] !== true });
  console.log(JSON.stringify({ bench: 'recording-dvr', ...result }));
}
