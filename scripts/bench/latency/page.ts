// Browser side of the latency bench (served by page-server.ts): plays an HLS URL with hls.js and,
// for every displayed frame (requestVideoFrameCallback), reads the wall-clock strip through a
// canvas and records Date.now() - stamp, plus stalls and time to first frame.
import Hls from 'hls.js';
import type { HlsConfig } from 'hls.js';
import { emptyState, readFrames } from './strip-reader.ts';
import { attachCatchUp, joinNow } from '../../../player/src/latency-control.ts';

/** What the page has measured so far; read by measure.ts through page.evaluate. */
export interface LatencyPageState {
  /**
   * [Date.now() at display, latency ms, decoded frame height, hls.latency ms (-1 without hls.js), Date.now() -
   * hls.playingDate ms (-1 without EXT-X-PROGRAM-DATE-TIME)] per frame whose strip decoded.
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
  /** Displayed frames per playback mode (`hls`, or the watch page's `whep` / `hls`). */
  modes: Record<string, number>;
  /**
   * LL-HLS join: how far the first part hls.js loads starts before the position it aims at (PART-HOLD-BACK from the
   * live edge), ms. It decodes from there (an independent part), so up to a GOP when the aim falls mid-GOP.
   */
  joinBehindAimMs?: number;
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

const state: LatencyPageState = emptyState();

function start(url: string, config: Partial<HlsConfig>, catchUp = false): void {
  const video = document.getElementById('video') as HTMLVideoElement;
  // onair's own player asks its first playlist load to be answered at once (the catch-up closes the gap).
  const player = new Hls(catchUp ? { ...config, xhrSetup: joinNow } : config);
  if (catchUp) attachCatchUp(video, player);
  readFrames(video, state, performance.now(), () => {
    const target = player.targetLatency;
    state.targetLatencyMs = target === null ? null : Math.round(target * 1000);
    const pdt = player.playingDate;
    return { playerLatencyMs: Math.round(player.latency * 1000), ingestToDisplayMs: pdt ? Date.now() - pdt.getTime() : -1, mode: 'hls' };
  });

  player.on(Hls.Events.FRAG_LOADING, (_e, data) => {
    if (state.joinBehindAimMs !== undefined || !data.part) return;
    const aim = data.targetBufferTime ?? player.startPosition;
    state.joinBehindAimMs = Math.round((aim - data.part.start) * 1000);
  });
  player.on(Hls.Events.ERROR, (_e, data) => {
    state.errors.push(`${data.fatal ? 'fatal ' : ''}${data.type}/${data.details}`);
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) player.startLoad();
    else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) player.recoverMediaError();
  });
  player.loadSource(url);
  player.attachMedia(video);
  video.play().catch((err: unknown) => state.errors.push(`play: ${String(err)}`));
}

window.__latencyBench = { start, state };
