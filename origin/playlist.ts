// Pure HLS playlist renderers: the media playlist of one rendition (plain or Low-Latency,
// RFC 8216bis §4.4.3/§6.2.5 and Apple's LL-HLS authoring rules) and the multivariant playlist.
import { value, type Rung } from './ladder.ts';
import { initUri, partUri, segmentUri } from '../lib/hls-path.ts';
import { PART_HOLD_BACK_PARTS } from '../config/timing.ts';

/** The part fields a media playlist needs. */
export interface PlaylistPart {
  durationSec: number;
  independent: boolean;
}

/** The segment fields a media playlist needs. */
export interface PlaylistSegment {
  msn: number;
  run: number;
  parts: readonly PlaylistPart[];
  durationSec: number;
  programDateTimeMs: number;
  discontinuity: boolean;
  complete: boolean;
}

/** What renderMediaPlaylist reads from a rendition (a RenditionPackager satisfies it). */
export interface MediaPlaylistSource {
  readonly segmentTargetSec: number;
  readonly partTargetSec: number;
  /** Longest complete segment so far; never decreases. */
  readonly longestSegmentSec: number;
  /** Longest part so far; never decreases. */
  readonly longestPartSec: number;
  /** EXT-X-DISCONTINUITY-SEQUENCE of the first listed segment. */
  readonly discontinuitySequence: number;
  /** Listed segments, oldest first; the last may be open (incomplete). */
  readonly playlistSegments: readonly PlaylistSegment[];
  /** The part expected next, for EXT-X-PRELOAD-HINT. */
  readonly nextPart: { msn: number; index: number };
  /** EXT-X-DATERANGE tags to list (ad breaks), the same in every rendition. */
  readonly dateRanges?: readonly DateRange[];
}

/** An EXT-X-DATERANGE (RFC 8216bis §4.4.5.1): an interval of the playlist's timeline, e.g. an ad break. */
export interface DateRange {
  id: string;
  class?: string;
  startDateMs: number;
  durationSec?: number;
  plannedDurationSec?: number;
  /** SCTE-35 splice_info_section of the cue-out / cue-in (§4.4.5.1.4). */
  scte35Out?: Uint8Array;
  scte35In?: Uint8Array;
}

/** Renders one EXT-X-DATERANGE tag. */
export function renderDateRange(d: DateRange): string {
  const hex = (b: Uint8Array) => '0x' + Buffer.from(b).toString('hex').toUpperCase();
  const attrs = [`ID="${d.id}"`];
  if (d.class) attrs.push(`CLASS="${d.class}"`);
  attrs.push(`START-DATE="${new Date(d.startDateMs).toISOString()}"`);
  if (d.durationSec !== undefined) attrs.push(`DURATION=${f3(d.durationSec)}`);
  if (d.plannedDurationSec !== undefined) attrs.push(`PLANNED-DURATION=${f3(d.plannedDurationSec)}`);
  if (d.scte35Out) attrs.push(`SCTE35-OUT=${hex(d.scte35Out)}`);
  if (d.scte35In) attrs.push(`SCTE35-IN=${hex(d.scte35In)}`);
  return `#EXT-X-DATERANGE:${attrs.join(',')}`;
}

/** A sibling rendition's position, for EXT-X-RENDITION-REPORT. */
export interface RenditionReport {
  /** Playlist URI relative to this playlist (e.g. "../480p/index.m3u8"). */
  uri: string;
  lastMsn: number;
  lastPart: number;
}

/** Options of renderMediaPlaylist. */
export interface MediaPlaylistOptions {
  lowLatency: boolean;
  /** Delta update (_HLS_skip=YES): only honoured with lowLatency. */
  skip?: boolean;
  renditionReports?: RenditionReport[];
  /**
   * PART-HOLD-BACK in parts (default PART_HOLD_BACK_PARTS.default, 2.5). RFC 8216bis §4.4.3.8: it MUST be at least
   * twice the part target (a smaller value is raised to 2) and SHOULD be at least three times.
   */
  partHoldBackParts?: number;
}

/** One variant of the multivariant playlist. */
export interface Variant {
  uri: string;
  bandwidth: number;
  averageBandwidth: number;
  codecs: string;
  /** Absent for an audio-only variant (no RESOLUTION/FRAME-RATE: RFC 8216bis §4.4.6.2 lists them for video only). */
  width?: number;
  height?: number;
  frameRate?: number;
}

/** What a rendition's packager has measured so far (undefined until its first init and segments). */
export interface VariantMeasure {
  bandwidth?: number;
  averageBandwidth?: number;
  codecs?: string;
  width?: number;
  height?: number;
  /** Video frames per second measured from the fragments (used for a source rendition whose rate was not stated). */
  frameRate?: number;
}

/**
 * A rung's multivariant entry: measured bandwidth, codecs and size where known, else the plan's. FRAME-RATE is the
 * rung's planned rate, which the fps filter enforces exactly (59.940, 29.970), not a per-fragment estimate.
 */
export function variantFor(rung: Rung, measured: VariantMeasure, audioKbps: number): Variant {
  if (rung.audioOnly) {
    const estimate = audioKbps * 1000 * 1.1;
    return {
      uri: `${rung.name}/index.m3u8`,
      bandwidth: Math.round(measured.bandwidth ?? estimate),
      averageBandwidth: Math.round(measured.averageBandwidth ?? estimate / 1.1),
      codecs: measured.codecs ?? 'mp4a.40.2',
    };
  }
  const estimate = (rung.videoKbps + audioKbps) * 1000 * 1.1;
  return {
    uri: `${rung.name}/index.m3u8`,
    bandwidth: Math.round(measured.bandwidth ?? estimate),
    averageBandwidth: Math.round(measured.averageBandwidth ?? estimate / 1.1),
    codecs: measured.codecs ?? 'avc1.640028,mp4a.40.2',
    width: measured.width ?? rung.width,
    height: measured.height ?? rung.height,
    // The source rendition keeps the publisher's stated rate (its copied timestamps are whole milliseconds, so a
    // fragment's rate is only an estimate); without one, the measured rate.
    frameRate: rung.fps.num > 0 ? value(rung.fps) : measured.frameRate,
  };
}

const f3 = (n: number): string => n.toFixed(3);
/** Rounds up to whole milliseconds, ignoring float noise. */
const ceilMs = (n: number): number => Math.ceil(Math.round(n * 1e6) / 1e3) / 1e3;

/** EXT-X-TARGETDURATION: every EXTINF rounded to the nearest integer must not exceed it (RFC 8216bis §4.4.3.1). */
export function targetDuration(p: Pick<MediaPlaylistSource, 'segmentTargetSec' | 'longestSegmentSec'>): number {
  return Math.max(Math.ceil(p.segmentTargetSec), Math.round(p.longestSegmentSec));
}

/** PART-TARGET: no part may be longer. */
export function partTarget(p: Pick<MediaPlaylistSource, 'partTargetSec' | 'longestPartSec'>): number {
  return Math.max(p.partTargetSec, ceilMs(p.longestPartSec));
}

/** PART-HOLD-BACK in seconds: `parts` part targets, at least two (RFC 8216bis §4.4.3.8 MUST). */
export function partHoldBack(
  p: Pick<MediaPlaylistSource, 'partTargetSec' | 'longestPartSec'>,
  parts: number = PART_HOLD_BACK_PARTS.default,
): number {
  return Math.max(2, parts) * partTarget(p);
}

/**
 * The listed parts from the last one back, each with the seconds from its start to the end of the playlist; a
 * segment without parts counts as one independent part (a segment starts on a keyframe).
 */
function* partsFromEnd(p: MediaPlaylistSource): Generator<{ independent: boolean; behind: number }> {
  let behind = 0;
  const segments = p.playlistSegments;
  for (let i = segments.length - 1; i >= 0; i--) {
    const s = segments[i]!;
    const parts = s.parts.length > 0 ? s.parts : [{ durationSec: s.durationSec, independent: true }];
    for (let j = parts.length - 1; j >= 0; j--) {
      behind += parts[j]!.durationSec;
      yield { independent: parts[j]!.independent, behind };
    }
  }
}

/**
 * Where a player joining this playlist lands, as seconds past the start of the independent part it has to decode
 * from; undefined when no listed part is independent before that point. RFC 8216bis §6.3.3: a client SHOULD start
 * playback no closer than PART-HOLD-BACK to the end of the playlist; hls.js (lowLatencyMode) aims exactly there, loads
 * from the last INDEPENDENT=YES part at or before it, and only starts playing (at its aim) once it has loaded every
 * part from there to the end: the larger this figure, the more parts a joiner fetches while its aim goes stale.
 */
export function joinLag(p: MediaPlaylistSource, partHoldBackParts?: number): number | undefined {
  const hold = partHoldBack(p, partHoldBackParts);
  for (const part of partsFromEnd(p)) {
    if (part.behind >= hold - 1e-6 && part.independent) return Math.max(0, part.behind - hold);
  }
  return undefined;
}

/**
 * The keyframe interval the listed parts show: seconds between the starts of the last two independent parts (the
 * ladder's GOP, or the publisher's for a copied rendition); undefined while fewer than two are listed.
 */
export function keyframeInterval(p: MediaPlaylistSource): number | undefined {
  let last: number | undefined;
  for (const part of partsFromEnd(p)) {
    if (!part.independent) continue;
    if (last !== undefined) return part.behind - last;
    last = part.behind;
  }
  return undefined;
}

/**
 * How long until a joiner's aim lands on an independent part (joinLag within half a part target), in seconds,
 * assuming keyframes keep coming every keyframeInterval; 0 when it does now, undefined while fewer than two keyframes
 * are listed.
 */
export function joinWait(p: MediaPlaylistSource, partHoldBackParts?: number): number | undefined {
  const gop = keyframeInterval(p);
  if (gop === undefined) return undefined;
  const hold = partHoldBack(p, partHoldBackParts);
  let latest = 0; // seconds from the latest keyframe's start to the end of the playlist
  for (const part of partsFromEnd(p)) {
    if (part.independent) {
      latest = part.behind;
      break;
    }
  }
  if (latest < hold - 1e-6) return hold - latest;
  if (latest - hold <= partTarget(p) / 2 + 1e-6) return 0;
  return gop - (latest - hold);
}

/** Renders a rendition's media playlist (URIs relative to /live/<event>/<rendition>/index.m3u8). */
export function renderMediaPlaylist(p: MediaPlaylistSource, opts: MediaPlaylistOptions): string {
  const ll = opts.lowLatency;
  const td = targetDuration(p);
  const pt = partTarget(p);
  const canSkipUntil = 6 * td;
  const all = p.playlistSegments;
  const segments = ll ? all : all.filter((s) => s.complete);
  const first = segments[0];

  // Where each segment starts, in seconds before the playlist's end (a GAP counts one target duration per msn).
  const gapBefore = segments.map((s, i) => (i === 0 ? 0 : (s.msn - segments[i - 1]!.msn - 1) * p.segmentTargetSec));
  const total = segments.reduce((n, s, i) => n + s.durationSec + gapBefore[i]!, 0);
  const startsAgo: number[] = [];
  let t = total;
  segments.forEach((s, i) => {
    t -= gapBefore[i]!;
    startsAgo.push(t);
    t -= s.durationSec;
  });
  // Parts are listed for the open segment and for complete ones starting within 3 target durations of the end, at
  // most the two msns before the hinted one: with it, three listed segments carry parts, GAP entries counted
  // (a player counts every listed segment).
  let skipped = 0;
  if (ll && opts.skip) {
    while (
      skipped < segments.length &&
      segments[skipped]!.complete &&
      startsAgo[skipped]! - segments[skipped]!.durationSec >= canSkipUntil - 1e-6
    )
      skipped++;
  }
  // Media sequence numbers come from the timeline: segments a replica lost (an ffmpeg restart) are listed as
  // EXT-X-GAP of one target duration each, so that every listed msn keeps its number.
  const skippedSegments = skipped === 0 ? 0 : segments[skipped] ? segments[skipped]!.msn - first!.msn : segments.length;

  const lines = ['#EXTM3U', `#EXT-X-VERSION:${ll || opts.skip ? 9 : 7}`, `#EXT-X-TARGETDURATION:${td}`];
  if (ll) {
    lines.push(
      `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=${f3(partHoldBack(p, opts.partHoldBackParts))},CAN-SKIP-UNTIL=${f3(canSkipUntil)}`,
    );
    lines.push(`#EXT-X-PART-INF:PART-TARGET=${f3(pt)}`);
  }
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${first?.msn ?? p.nextPart.msn}`);
  lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${p.discontinuitySequence}`);
  lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  if (skipped > 0) lines.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skippedSegments}`);
  for (const d of p.dateRanges ?? []) lines.push(renderDateRange(d));

  for (let i = skipped; i < segments.length; i++) {
    const s = segments[i]!;
    const prev = segments[i - 1];
    if (i > skipped && prev) {
      for (let msn = prev.msn + 1; msn < s.msn; msn++) lines.push(`#EXTINF:${f3(p.segmentTargetSec)},`, '#EXT-X-GAP', segmentUri(msn));
    }
    if (s.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (i === skipped || segments[i - 1]!.run !== s.run) lines.push(`#EXT-X-MAP:URI="${initUri(s.run)}"`);
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.programDateTimeMs).toISOString()}`);
    if (ll && (!s.complete || (startsAgo[i]! <= 3 * td + 1e-6 && p.nextPart.msn - s.msn <= 2))) {
      s.parts.forEach((part, index) => {
        lines.push(
          `#EXT-X-PART:DURATION=${f3(part.durationSec)},URI="${partUri(s.msn, index)}"${part.independent ? ',INDEPENDENT=YES' : ''}`,
        );
      });
    }
    if (s.complete) lines.push(`#EXTINF:${f3(s.durationSec)},`, segmentUri(s.msn));
  }
  if (ll) {
    lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${partUri(p.nextPart.msn, p.nextPart.index)}"`);
    for (const r of opts.renditionReports ?? []) {
      lines.push(`#EXT-X-RENDITION-REPORT:URI="${r.uri}",LAST-MSN=${r.lastMsn},LAST-PART=${r.lastPart}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Renders the multivariant playlist, highest bandwidth first. */
export function renderMasterPlaylist(variants: readonly Variant[]): string {
  const lines = ['#EXTM3U', '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const v of [...variants].sort((a, b) => b.bandwidth - a.bandwidth)) {
    const picture =
      v.width !== undefined && v.height !== undefined
        ? `,RESOLUTION=${v.width}x${v.height}` + (v.frameRate ? `,FRAME-RATE=${f3(v.frameRate)}` : '')
        : '';
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${Math.round(v.bandwidth)},AVERAGE-BANDWIDTH=${Math.round(v.averageBandwidth)},` +
        `CODECS="${v.codecs}"${picture}`,
      v.uri,
    );
  }
  return lines.join('\n') + '\n';
}
