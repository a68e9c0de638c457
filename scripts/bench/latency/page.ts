// Browser side of the latency bench (served by page-server.ts): plays an HLS URL with hls.js and,
// for every displayed frame (requestVideoFrameCallback), reads the wall-clock strip through a
// canvas and records Date.now() - stamp, plus stalls and time to first frame.
import Hls from 'hls.js';
import type { HlsConfig } from 'hls.js';
import { decodeStamp, stampAge, stripCellLuma, stripRows, STRIP_CELLS } from '../stamp.ts';
import { attachCatchUp } from '../../../player/src/latency-control.ts';

/** What the page has measured so far; read by measure.ts through page.evaluate. */
export interface LatencyPageState {
  /**
   * [Date.now() at display, latency ms, decoded frame height, hls.latency ms, Date.now() - hls.playingDate ms
   * (-1 without EXT-X-PROGRAM-DATE-TIME)] per frame whose strip decoded.
   */
  samples: [number, number, number, number, number][];
  /** Frames displayed (decoded strip or not). */
  frames: number;
  /** Frames whose strip failed its check. */
  misreads: number;
  /** `waiting` events after the first frame. */
  stalls: number;
  /** Time spent waiting after the first frame, ms. */
  stalledMs: number;
  /** From hls.js attach (loadSource) to the first displayed frame, ms. */
  ttffMs: number | undefined;
  /** From navigation start to the first displayed frame, ms. */
  ttffFromPageMs: number | undefined;
  /** hls.js errors (fatal ones prefixed). */
  errors: string[];
  /** hls.js's targetLatency (PART-HOLD-BACK plus its increase after stalls) at the last displayed frame, ms. */
  targetLatencyMs: number | null;
}

/** The page's entry point, installed on window. */
export interface LatencyBenchApi {
  /** `catchUp`: run the watch page's catch-up (onair's own player), not only hls.js. */
  start(url: string, config: Partial<HlsConfig>, catchUp?: boolean): void;
  state: LatencyPageState;
}

declare global {
  interface Window {
    __latencyBench?: LatencyBenchApi;
  }
}

const CELL_PX = 8;
const state: LatencyPageState = {
  samples: [],
  frames: 0,
  misreads: 0,
  stalls: 0,
  stalledMs: 0,
  ttffMs: undefined,
  ttffFromPageMs: undefined,
  errors: [],
  targetLatencyMs: null,
};

function start(url: string, config: Partial<HlsConfig>, catchUp = false): void {
  const video = document.getElementById('video') as HTMLVideoElement;
  const canvas = document.createElement('canvas');
  canvas.width = STRIP_CELLS * CELL_PX;
  canvas.height = CELL_PX * 2;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  let attachedAt = 0;
  let waitingSince: number | undefined;
  const player = new Hls(config);
  if (catchUp) attachCatchUp(video, player);

  const onFrame = () => {
    const now = Date.now();
    if (state.ttffMs === undefined) {
      state.ttffMs = performance.now() - attachedAt;
      state.ttffFromPageMs = performance.now();
    }
    state.frames++;
    const target = player.targetLatency;
    state.targetLatencyMs = target === null ? null : Math.round(target * 1000);
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
      else {
        const pdt = player.playingDate;
        state.samples.push([now, stampAge(now, stamp), h, Math.round(player.latency * 1000), pdt ? now - pdt.getTime() : -1]);
      }
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

  player.on(Hls.Events.ERROR, (_e, data) => {
    state.errors.push(`${data.fatal ? 'fatal ' : ''}${data.type}/${data.details}`);
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) player.startLoad();
    else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) player.recoverMediaError();
  });
  attachedAt = performance.now();
  player.loadSource(url);
  player.attachMedia(video);
  video.play().catch((err: unknown) => state.errors.push(`play: ${String(err)}`));
}

window.__latencyBench = { start, state };
