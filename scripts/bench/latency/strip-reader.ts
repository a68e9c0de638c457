// Browser side, shared by the latency bench's pages: reads the wall-clock strip of the frame a <video> shows
// (through a small canvas) and records, per displayed frame (requestVideoFrameCallback), the latency
// Date.now() - stamp into a LatencyPageState, with the time to first frame and `waiting` stalls.
import { decodeStamp, stampAge, stripCellLuma, stripRows, STRIP_CELLS } from '../stamp.ts';
import type { LatencyPageState } from './page.ts';

const CELL_PX = 8;

/** A fresh, empty page state. */
export function emptyState(): LatencyPageState {
  return {
    samples: [],
    frames: 0,
    misreads: 0,
    stalls: 0,
    stalledMs: 0,
    ttffMs: undefined,
    ttffFromPageMs: undefined,
    errors: [],
    targetLatencyMs: null,
    modes: {},
  };
}

/** What the player adds to a sample: hls.js's own latency and the frame's PDT (-1 when it has none). */
export interface FrameExtras {
  /** hls.js's latency estimate, ms; -1 without hls.js. */
  playerLatencyMs: number;
  /** Date.now() - EXT-X-PROGRAM-DATE-TIME of the frame, ms; -1 without PDT. */
  ingestToDisplayMs: number;
  /** What plays (counted per frame in state.modes), e.g. `hls` or `whep`. */
  mode?: string;
}

/**
 * Reads the strip of every frame `video` displays into `state`. `startedAt` (performance.now()) is where the time to
 * first frame counts from; `extras` is asked per frame.
 */
export function readFrames(video: HTMLVideoElement, state: LatencyPageState, startedAt: number, extras: () => FrameExtras): void {
  const canvas = document.createElement('canvas');
  canvas.width = STRIP_CELLS * CELL_PX;
  canvas.height = CELL_PX * 2;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  let waitingSince: number | undefined;

  const onFrame = () => {
    const now = Date.now();
    if (state.ttffMs === undefined) {
      state.ttffMs = performance.now() - startedAt;
      state.ttffFromPageMs = performance.now();
    }
    state.frames++;
    const x = extras();
    if (x.mode !== undefined) state.modes[x.mode] = (state.modes[x.mode] ?? 0) + 1;
    const h = video.videoHeight;
    const w = video.videoWidth;
    if (w > 0 && h > 0) {
      const { top, height } = stripRows(h);
      ctx.drawImage(video, 0, top, w, height, 0, 0, canvas.width, canvas.height);
      const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      const cw = canvas.width;
      const cells = stripCellLuma(cw, canvas.height, (x, y) => {
        const i = (y * cw + x) * 4;
        return 0.299 * px[i]! + 0.587 * px[i + 1]! + 0.114 * px[i + 2]!;
      });
      const stamp = decodeStamp(cells);
      if (stamp === undefined) state.misreads++;
      else state.samples.push([now, stampAge(now, stamp), h, x.playerLatencyMs, x.ingestToDisplayMs]);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);

  video.addEventListener('waiting', () => {
    if (state.ttffMs === undefined || waitingSince !== undefined) return;
    state.stalls++;
    waitingSince = performance.now();
  });
  video.addEventListener('playing', () => {
    if (waitingSince === undefined) return;
    state.stalledMs += performance.now() - waitingSince;
    waitingSince = undefined;
  });
}
