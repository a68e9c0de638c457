// The watch page's catch-up: brings playback to the target latency (PART-HOLD-BACK) within a few seconds of a join
// or a stall, and keeps it there. hls.js's own catch-up (maxLiveSyncPlaybackRate) is off for this player: it only
// speeds up while more than 1 s is buffered ahead (latency-controller forwardBufferLength > 1), so with a 0.5 s
// target it stops about half a second short and never arrives; and a stock player stays wherever its start-up left
// it.

import { JOIN_NOW } from '../../lib/hls-path.ts';

/** What the controller sees, sampled every {@link CATCH_UP_INTERVAL_MS}. */
export interface PlaybackSample {
  /** Seconds behind the playlist's live edge (hls.js `latency`). */
  latency: number;
  /** Target latency in seconds (hls.js `targetLatency`: PART-HOLD-BACK, plus its own increase after stalls). */
  target: number;
  /** The playhead (video currentTime). */
  currentTime: number;
  /** End of the buffered range holding the playhead, or the playhead when nothing is buffered there. */
  bufferedEnd: number;
}

/** What to do: keep the playback rate at `rate`, after seeking to `seekTo` when given. */
export interface CatchUp {
  rate: number;
  seekTo?: number;
}

/** How often the player samples and applies {@link catchUp}. */
export const CATCH_UP_INTERVAL_MS = 250;
/** Within this many seconds of the target playback runs at 1×. */
export const DEADBAND_SEC = 0.05;
/** Fastest catch-up rate: pitch-preserved, barely noticeable in speech. */
export const MAX_RATE = 1.25;
/** Further behind than this (a GOP-late join, a long stall), skip ahead inside the buffer instead of speeding up. */
export const SEEK_BEHIND_SEC = 1;
/** Buffer kept ahead of the playhead: no speed-up or skip eats into it (it is what absorbs a late part). */
export const MIN_AHEAD_SEC = 0.3;

/**
 * The catch-up for one sample (pure). Far behind: seek forward to the target, but not past `MIN_AHEAD_SEC` before
 * the buffered end. Behind: play faster, proportionally (1 + distance / 2, at least 1.05, at most `MAX_RATE`) while
 * more than `MIN_AHEAD_SEC` is buffered. Otherwise 1×. From 1 s behind this reaches the target in about 5 s.
 */
export function catchUp(s: PlaybackSample): CatchUp {
  const behind = s.latency - s.target;
  const ahead = s.bufferedEnd - s.currentTime;
  if (!Number.isFinite(behind) || behind <= DEADBAND_SEC || ahead <= MIN_AHEAD_SEC) return { rate: 1 };
  if (behind > SEEK_BEHIND_SEC) {
    const to = Math.min(s.currentTime + behind, s.bufferedEnd - MIN_AHEAD_SEC);
    if (to - s.currentTime > DEADBAND_SEC) return { rate: 1, seekTo: to };
  }
  return { rate: Math.min(MAX_RATE, Math.max(1.05, 1 + behind / 2)) };
}

/**
 * The latency a viewer sees, in seconds: wall clock minus the capture time of the frame on screen (its
 * EXT-X-PROGRAM-DATE-TIME, the ingest's clock), which counts transcoding and packaging too; hls.js's `latency`
 * counts only from the playlist's last part. Falls back to `playlistLatency` when the PDT is unknown or the clocks
 * disagree (the result would be negative or over a minute).
 */
export function trueLatency(nowMs: number, playingDateMs: number | undefined, playlistLatency: number | null): number | null {
  if (playingDateMs !== undefined && Number.isFinite(playingDateMs)) {
    const sec = (nowMs - playingDateMs) / 1000;
    if (sec >= 0 && sec < 60) return sec;
  }
  return playlistLatency;
}

/** What {@link attachCatchUp} reads of an hls.js instance. */
export interface LatencySource {
  readonly latency: number;
  readonly targetLatency: number | null;
}

/**
 * Runs {@link catchUp} on `video` every {@link CATCH_UP_INTERVAL_MS} against `hls`'s latency and target; returns
 * the function that stops it (the rate is left as it is). Nothing happens while paused, seeking or starved, nor
 * while `held()` (a DVR viewer who seeked back stays where they are).
 */
export function attachCatchUp(video: HTMLVideoElement, hls: LatencySource, held: () => boolean = () => false): () => void {
  const timer = setInterval(() => {
    if (video.paused || video.seeking || video.readyState < 3 || held()) return;
    const target = hls.targetLatency;
    if (target === null || !Number.isFinite(hls.latency)) return;
    const t = video.currentTime;
    let bufferedEnd = t;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= t + 0.05 && video.buffered.end(i) > t) bufferedEnd = video.buffered.end(i);
    }
    const a = catchUp({ latency: hls.latency, target, currentTime: t, bufferedEnd });
    if (a.seekTo !== undefined) video.currentTime = a.seekTo;
    if (video.playbackRate !== a.rate) video.playbackRate = a.rate;
  }, CATCH_UP_INTERVAL_MS);
  return () => clearInterval(timer);
}

/**
 * hls.js `xhrSetup` for a player that catches up by itself: its first load of a media playlist (no delivery
 * directives) asks `join=now` (lib/hls-path.ts JOIN_NOW), answered at once. Without it an onair origin holds that
 * load, up to one GOP, until PART-HOLD-BACK from the live edge lands on an independent part, which a player without
 * catch-up needs to join on target but which would only cost this one time to first frame.
 */
export function joinNow(xhr: XMLHttpRequest, url: string, context: { type?: string; deliveryDirectives?: unknown }): void {
  if (context.type !== 'level' || context.deliveryDirectives) return;
  xhr.open('GET', url + (url.includes('?') ? '&' : '?') + JOIN_NOW, true);
}
