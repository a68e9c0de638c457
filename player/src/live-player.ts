// One live playback session on a <video>: hls.js (or native HLS), with error recovery and a stall watchdog.
import Hls from 'hls.js';
import type { ErrorData, HlsConfig, LevelSwitchedData, ManifestParsedData } from 'hls.js';
import { attachCatchUp, joinNow, trueLatency } from './latency-control.ts';
import type { DvrTarget } from './dvr-bar.ts';

/** A rendition as shown to the viewer and to tests. */
export interface LevelInfo {
  height: number;
  width: number;
  bitrate: number;
}

/** Why a session gave up: the page then re-checks the event and waits for it to be live again. */
export type FailureReason = 'manifest' | 'network' | 'media' | 'stall' | 'unsupported';

/** What a session reports to its owner. */
export interface LivePlayerListener {
  /** The video started (or resumed) playing. */
  onPlaying(): void;
  /** The renditions are known (empty with native HLS). */
  onLevels(levels: LevelInfo[]): void;
  /** The rendition being played changed. */
  onLevelSwitched(level: number): void;
  /** The stream reached its end (EXT-X-ENDLIST played out). */
  onEnded(): void;
  /** Recovery gave up; the session is stopped. */
  onFailed(reason: FailureReason): void;
  /** A non-fatal or recovered error, for diagnostics. */
  onError(message: string): void;
  /** The browser refused to start playback without a user gesture. */
  onAutoplayBlocked(): void;
}

/**
 * hls.js settings for live low-latency playback. The target latency comes from the playlist: PART-HOLD-BACK
 * (2.5 parts, 0.5 s) for LL-HLS events, hls.js's default of 3 target durations for plain-HLS events. Do not set
 * liveSyncDuration(Count) here: any user value overrides PART-HOLD-BACK (hls.js latency-controller); and
 * liveMaxLatencyDurationCount cannot be set without it, so the watchdog below jumps back when far behind.
 */
export const HLS_CONFIG: Partial<HlsConfig> = {
  // Parts, preload hints, blocking playlist reload and delta updates when the playlist offers them.
  lowLatencyMode: true,
  // The first playlist load is answered at once (the catch-up below closes any gap a join leaves).
  xhrSetup: joinNow,
  // The catch-up is ours (latency-control.ts): hls.js speeds up only while over 1 s is buffered ahead, which with
  // a 0.5 s target stops half a second short.
  maxLiveSyncPlaybackRate: 1,
  // After a stall hls.js raises its target by this much (default 1 s, up to a target duration): a part's worth
  // keeps a stall-prone connection from stalling again without giving up the low target for good.
  liveSyncOnStallIncrease: 0.2,
  backBufferLength: 10,
  maxBufferLength: 20,
  // Fail fast on a missing master: the page polls the event API instead.
  manifestLoadPolicy: {
    default: {
      maxTimeToFirstByteMs: 8000,
      maxLoadTimeMs: 10000,
      timeoutRetry: { maxNumRetry: 1, retryDelayMs: 0, maxRetryDelayMs: 0 },
      errorRetry: { maxNumRetry: 1, retryDelayMs: 500, maxRetryDelayMs: 1000 },
    },
  },
};

/** Fatal errors within this window count towards giving up. */
const ERROR_WINDOW_MS = 30_000;
/** Network fatals recovered with startLoad() before giving up. */
const MAX_NETWORK_RECOVERIES = 3;
/** Media fatals: recoverMediaError(), then swap audio codec + recover, then rebuild hls. */
const MAX_MEDIA_RECOVERIES = 2;
/** Rebuilds of the hls instance before giving up. */
const MAX_REBUILDS = 2;
/** No playback progress for this long while not paused counts as a stall. */
const STALL_MS = 10_000;
/** After this long without progress (once playing), recover in place once: jump to the live sync point. */
const STALL_NUDGE_MS = 4_000;
/** Playing this many seconds behind the target latency (e.g. after a long stall): jump to the live sync point. */
const MAX_BEHIND_SEC = 6;

/** True when this browser can play HLS through hls.js (MSE) or natively. */
export function canPlayHls(video: HTMLVideoElement): boolean {
  return Hls.isSupported() || video.canPlayType('application/vnd.apple.mpegurl') !== '';
}

/** Plays one HLS URL on a video element until stopped or until recovery gives up. */
export class LivePlayer implements DvrTarget {
  /** The hls.js instance, undefined with native HLS or once stopped. */
  hls: Hls | undefined;
  private readonly video: HTMLVideoElement;
  private readonly listener: LivePlayerListener;
  private url = '';
  private stopped = true;
  private fatalTimes: number[] = [];
  private rebuilds = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private stopCatchUp: (() => void) | undefined;
  private lastTime = -1;
  private lastProgressAt = 0;
  private nudged = false;
  /** The viewer seeked back (DVR): no catch-up, no jump to live, until goLive(). */
  private pinnedAt = false;
  private readonly mediaListeners: [string, () => void][];

  constructor(video: HTMLVideoElement, listener: LivePlayerListener) {
    this.video = video;
    this.listener = listener;
    this.mediaListeners = [
      ['playing', () => this.listener.onPlaying()],
      ['ended', () => this.listener.onEnded()],
      ['error', () => this.onNativeError()],
    ];
  }

  /** True while a session runs (started and not stopped or given up). */
  get active(): boolean {
    return !this.stopped;
  }

  /** Starts playing `url`; stops any previous session first. */
  start(url: string): void {
    this.stop();
    this.url = url;
    this.stopped = false;
    this.pinnedAt = false;
    this.fatalTimes = [];
    this.rebuilds = 0;
    for (const [name, fn] of this.mediaListeners) this.video.addEventListener(name, fn);
    this.lastTime = -1;
    this.lastProgressAt = performance.now();
    this.watchdog = setInterval(() => this.checkProgress(), 1000);
    if (Hls.isSupported()) this.createHls();
    else if (this.video.canPlayType('application/vnd.apple.mpegurl') !== '') this.startNative();
    else this.fail('unsupported');
  }

  /** Stops the session and releases the media element. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    for (const [name, fn] of this.mediaListeners) this.video.removeEventListener(name, fn);
    this.destroyHls();
    if (this.video.getAttribute('src') !== null) {
      this.video.removeAttribute('src');
      this.video.load();
    }
  }

  /** Selects a rendition by index, or automatic selection with -1 (hls.js only). */
  setLevel(level: number): void {
    if (this.hls !== undefined) this.hls.currentLevel = level;
  }

  /** True while the viewer holds a position behind live (DVR). */
  get pinned(): boolean {
    return this.pinnedAt;
  }

  /** The seekable range (the live playlist: DVR window and live window), or null before it is known. */
  dvrRange(): { start: number; end: number } | null {
    if (this.stopped) return null;
    const seekable = this.video.seekable;
    if (seekable.length === 0) return null;
    const start = seekable.start(0);
    const end = seekable.end(seekable.length - 1);
    return Number.isFinite(start) && Number.isFinite(end) && end > start ? { start, end } : null;
  }

  /** Where "Live" goes: hls.js's live sync position (the target latency behind the edge). */
  liveEdge(): number | null {
    const sync = this.hls?.liveSyncPosition;
    if (sync !== undefined && sync !== null && Number.isFinite(sync)) return sync;
    return this.dvrRange()?.end ?? null;
  }

  currentTime(): number {
    return this.video.currentTime;
  }

  /** PROGRAM-DATE-TIME of the current position (ms), when the playlist carries it. */
  playingDateMs(): number | null {
    const d = this.hls?.playingDate;
    return d ? d.getTime() : null;
  }

  /**
   * The viewer seeks back to `t`: playback stays there. The catch-up would otherwise speed up or skip towards the
   * target latency, and the watchdog would jump back to live when far behind.
   */
  seekTo(t: number): void {
    this.pinnedAt = true;
    this.video.playbackRate = 1;
    this.video.currentTime = t;
    if (this.video.paused) this.play();
  }

  /** Back to the low-latency live edge: catch-up on again, playback at hls.js's live sync position. */
  goLive(): void {
    this.pinnedAt = false;
    const edge = this.liveEdge();
    if (edge !== null && Math.abs(edge - this.video.currentTime) > 0.5) this.video.currentTime = edge;
    if (this.video.paused) this.play();
  }

  /**
   * Seconds from capture to the frame on screen (wall clock minus its program date time, see trueLatency), or
   * behind the playlist's live edge when that is unknown; null when neither is.
   */
  latency(): number | null {
    if (this.stopped) return null;
    if (this.hls !== undefined) {
      const latency = this.hls.latency;
      return trueLatency(Date.now(), this.hls.playingDate?.getTime(), Number.isFinite(latency) && latency > 0 ? latency : null);
    }
    const seekable = this.video.seekable;
    if (seekable.length === 0) return null;
    return Math.max(0, seekable.end(seekable.length - 1) - this.video.currentTime);
  }

  private createHls(): void {
    const hls = new Hls(HLS_CONFIG);
    this.hls = hls;
    this.stopCatchUp = attachCatchUp(this.video, hls, () => this.pinnedAt);
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data: ManifestParsedData) => {
      this.listener.onLevels(data.levels.map((l) => ({ height: l.height, width: l.width, bitrate: l.bitrate })));
      this.play();
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data: LevelSwitchedData) => this.listener.onLevelSwitched(data.level));
    hls.on(Hls.Events.ERROR, (_e, data: ErrorData) => this.onHlsError(hls, data));
    hls.attachMedia(this.video);
    hls.loadSource(this.url);
  }

  private destroyHls(): void {
    this.stopCatchUp?.();
    this.stopCatchUp = undefined;
    this.hls?.destroy();
    this.hls = undefined;
  }

  private rebuild(): void {
    this.rebuilds += 1;
    if (this.rebuilds > MAX_REBUILDS) {
      this.fail('media');
      return;
    }
    this.destroyHls();
    this.createHls();
  }

  private startNative(): void {
    this.listener.onLevels([]);
    this.video.src = this.url;
    this.play();
  }

  private play(): void {
    this.video.play().catch((err: unknown) => {
      const name = err instanceof Error ? err.name : String(err);
      // Autoplay refused: the page shows its play control; not a playback failure.
      if (name === 'NotAllowedError') this.listener.onAutoplayBlocked();
      else if (name !== 'AbortError') this.listener.onError(`play: ${name}`);
    });
  }

  private onHlsError(hls: Hls, data: ErrorData): void {
    if (hls !== this.hls || this.stopped) return;
    this.listener.onError(`${data.fatal ? 'fatal ' : ''}${data.type}:${data.details}`);
    if (!data.fatal) return;
    const now = performance.now();
    this.fatalTimes = this.fatalTimes.filter((t) => now - t < ERROR_WINDOW_MS);
    this.fatalTimes.push(now);
    const count = this.fatalTimes.length;
    switch (data.type) {
      case Hls.ErrorTypes.NETWORK_ERROR:
        if (hls.levels.length === 0 || count > MAX_NETWORK_RECOVERIES) {
          this.fail(hls.levels.length === 0 ? 'manifest' : 'network');
          return;
        }
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => {
          if (this.hls === hls) hls.startLoad();
        }, 1000 * count);
        return;
      case Hls.ErrorTypes.MEDIA_ERROR:
        if (count === 1) hls.recoverMediaError();
        else if (count <= MAX_MEDIA_RECOVERIES) {
          hls.swapAudioCodec();
          hls.recoverMediaError();
        } else this.rebuild();
        return;
      default:
        this.rebuild();
    }
  }

  private onNativeError(): void {
    if (this.stopped || this.hls !== undefined) return;
    const code = this.video.error?.code ?? 0;
    this.listener.onError(`native media error ${code}`);
    this.fail(code === MediaError.MEDIA_ERR_DECODE ? 'media' : 'network');
  }

  private checkProgress(): void {
    const now = performance.now();
    const t = this.video.currentTime;
    if (t !== this.lastTime || this.video.paused || this.video.ended) {
      this.lastTime = t;
      this.lastProgressAt = now;
      this.nudged = false;
      this.jumpIfFarBehind();
      return;
    }
    const hls = this.hls;
    if (!this.nudged && !this.pinnedAt && hls !== undefined && t > 0 && now - this.lastProgressAt >= STALL_NUDGE_MS) {
      // Stall recovery without a reload (hls.js nudges over small holes itself): go to the live sync point.
      this.nudged = true;
      const sync = hls.liveSyncPosition;
      if (sync !== null && Number.isFinite(sync) && sync > t) {
        this.listener.onError('stall: resyncing to live');
        this.video.currentTime = sync;
      }
      return;
    }
    if (now - this.lastProgressAt < STALL_MS) return;
    this.listener.onError('stall');
    this.fail('stall');
  }

  /** Too far behind live for the gentle catch-up: seek to hls.js's live sync position. */
  private jumpIfFarBehind(): void {
    const hls = this.hls;
    if (hls === undefined || this.video.paused || this.pinnedAt) return;
    const latency = hls.latency;
    const target = hls.targetLatency;
    const sync = hls.liveSyncPosition;
    if (target === null || sync === null || !Number.isFinite(latency) || latency <= target + MAX_BEHIND_SEC) return;
    if (sync > this.video.currentTime) this.video.currentTime = sync;
  }

  private fail(reason: FailureReason): void {
    this.stop();
    this.listener.onFailed(reason);
  }
}
