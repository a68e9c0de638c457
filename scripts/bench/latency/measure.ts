// Node side of the strip-based latency measurement: opens the bench page in a Chromium tab,
// plays one HLS URL for a while and returns what the page recorded (shared by bench and e2e test); or opens onair's
// own watch page asking for real time (WHEP) with the strip reader injected, and does the same.
import type { Browser } from 'playwright-core';
import type { HlsConfig } from 'hls.js';
import type { LatencyPageState } from './page.ts';

/** Chromium flags the measurement needs on top of the harness's: the page and the HLS server are different origins. */
export const LATENCY_CHROMIUM_ARGS = ['--disable-web-security'];

/** One measurement run. */
export interface LatencyRunOptions {
  /** The bench page (LatencyPageServer.pageUrl, or whepPageUrl for a WHEP peer). */
  pageUrl: string;
  /** What the page plays: an HLS URL (the WHEP page: a WHEP endpoint). */
  hlsUrl: string;
  /** hls.js config passed to `new Hls()` (JSON-serializable). */
  hlsConfig: Partial<HlsConfig>;
  /** Also run the watch page's catch-up (player/src/latency-control.ts): onair's own player. */
  catchUp?: boolean;
  /** How long to measure after the first displayed frame. */
  durationMs: number;
  /** Bound on the wait for the first frame. */
  firstFrameTimeoutMs?: number;
}

/** Latency figures of one run. */
export interface LatencySummary {
  p50: number | null;
  p95: number | null;
  max: number | null;
  /** hls.js's own estimate (hls.latency: distance to the playlist's live edge), p50; the rest of p50 is upstream of the playlist. */
  hlsLatencyP50: number | null;
  /**
   * Display time minus the frame's EXT-X-PROGRAM-DATE-TIME (the origin stamps PDT with the wall clock at
   * ingest), p50: the server + player share of p50; p50 minus this is publisher → ingest. Null without PDT.
   */
  ingestToDisplayP50: number | null;
  /** p50 latency of each successive 10 s of the run (how it settles over time). */
  p50Per10s: (number | null)[];
  samples: number;
  misreads: number;
  frames: number;
  stalls: number;
  stalledMs: number;
  /** Frozen frames: gaps between displayed frames as WebRTC counts a freeze (see {@link freezes}), and their time. */
  freezes: number;
  frozenMs: number;
  ttffMs: number | null;
  /** hls.js's targetLatency at the end of the run, ms. */
  targetLatencyMs: number | null;
  /** Decoded frames per rendition height. */
  heights: Record<string, number>;
  /** Displayed frames per playback mode (`hls`; the watch page's `whep`, or `hls` after a fallback). */
  modes: Record<string, number>;
  /** LL-HLS: how far before its aim (PART-HOLD-BACK from the live edge) hls.js started loading, ms (see LatencyPageState). */
  joinBehindAimMs: number | null;
  errors: string[];
}

/** The `q` quantile (0–1) of `values` by nearest rank; null when empty. */
export function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Freezes in a run of display times (ms, ascending): a gap between two displayed frames longer than
 * max(3 × the median gap, the median gap + 150 ms), as WebRTC's freezeCount defines one (with the median for the
 * average frame duration, so one long freeze does not raise its own threshold). Returns their count and total time.
 */
export function freezes(displayTimes: number[]): { count: number; ms: number } {
  const gaps: number[] = [];
  for (let i = 1; i < displayTimes.length; i++) gaps.push(displayTimes[i]! - displayTimes[i - 1]!);
  const median = quantile(gaps, 0.5);
  if (median === null) return { count: 0, ms: 0 };
  const threshold = Math.max(3 * median, median + 150);
  const long = gaps.filter((g) => g > threshold);
  return { count: long.length, ms: Math.round(long.reduce((a, b) => a + b, 0)) };
}

/** Samples split into successive 10 s windows from the first one. */
function per10s<T extends [number, ...number[]]>(samples: T[]): T[][] {
  const t0 = samples[0]?.[0];
  const out: T[][] = [];
  for (const s of samples) (out[Math.floor((s[0] - t0!) / 10_000)] ??= []).push(s);
  return Array.from(out, (w) => w ?? []);
}

/** Reduces a page's raw state to the reported figures. */
export function summarize(state: LatencyPageState): LatencySummary {
  const latencies = state.samples.map((s) => s[1]);
  const heights: Record<string, number> = {};
  for (const s of state.samples) heights[s[2]] = (heights[s[2]] ?? 0) + 1;
  const frozen = freezes(state.samples.map((s) => s[0]));
  return {
    p50: quantile(latencies, 0.5),
    p95: quantile(latencies, 0.95),
    max: latencies.length ? Math.max(...latencies) : null,
    hlsLatencyP50: quantile(
      state.samples.filter((s) => s[3] >= 0).map((s) => s[3]),
      0.5,
    ),
    ingestToDisplayP50: quantile(
      state.samples.filter((s) => s[4] >= 0).map((s) => s[4]),
      0.5,
    ),
    p50Per10s: per10s(state.samples).map((w) =>
      quantile(
        w.map((s) => s[1]),
        0.5,
      ),
    ),
    samples: latencies.length,
    misreads: state.misreads,
    frames: state.frames,
    stalls: state.stalls,
    stalledMs: Math.round(state.stalledMs),
    freezes: frozen.count,
    frozenMs: frozen.ms,
    ttffMs: state.ttffMs === undefined ? null : Math.round(state.ttffMs),
    targetLatencyMs: state.targetLatencyMs ?? null,
    heights,
    modes: { ...state.modes },
    joinBehindAimMs: state.joinBehindAimMs ?? null,
    errors: [...new Set(state.errors)].slice(0, 10),
  };
}

/** Plays `hlsUrl` in a new tab for `durationMs` after its first frame; returns the page's raw state. */
export async function measureLatency(browser: Browser, o: LatencyRunOptions): Promise<LatencyPageState> {
  const page = await browser.newPage();
  try {
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(o.pageUrl);
    await page.waitForFunction(() => window.__latencyBench !== undefined, undefined, { timeout: 15_000 });
    await page.evaluate(({ url, config, catchUp }) => window.__latencyBench!.start(url, JSON.parse(config), catchUp), {
      url: o.hlsUrl,
      config: JSON.stringify(o.hlsConfig),
      catchUp: o.catchUp ?? false,
    });
    try {
      await page.waitForFunction(() => window.__latencyBench!.state.ttffMs !== undefined, undefined, {
        timeout: o.firstFrameTimeoutMs ?? 30_000,
      });
    } catch (err) {
      const st = await page.evaluate(() => window.__latencyBench!.state).catch(() => undefined);
      throw new Error(
        `no frame displayed from ${o.hlsUrl}; page errors: ${pageErrors.join('; ')}; hls errors: ${st?.errors.join('; ') ?? '?'}`,
        { cause: err },
      );
    }
    // The measurement window itself (not a readiness wait).
    await new Promise((r) => setTimeout(r, o.durationMs));
    const state = await page.evaluate(() => window.__latencyBench!.state);
    state.errors.push(...pageErrors.map((m) => `pageerror ${m}`));
    return state;
  } finally {
    await page.close().catch(() => {});
  }
}

/** One measurement of onair's watch page asking for real time. */
export interface WatchRunOptions {
  /** The event's watch page; `?realtime=1` is added. */
  watchUrl: string;
  /** The viewer (POST /api/v1/viewers's answer) the page finds in localStorage, as a signed-in viewer's page does. */
  viewer: unknown;
  /** The strip reader module (LatencyPageServer.watchReaderUrl). */
  readerUrl: string;
  durationMs: number;
  firstFrameTimeoutMs?: number;
}

/**
 * Opens the watch page with `?realtime=1` and a viewer token (it plays WHEP, or falls back to LL-HLS), the strip
 * reader imported by an init script before the page's own script; measures `durationMs` after the first frame.
 * The page's CSP (scripts from its own origin only) is bypassed for the reader.
 */
export async function measureWatchPage(browser: Browser, o: WatchRunOptions): Promise<LatencyPageState> {
  const page = await browser.newPage({ bypassCSP: true });
  try {
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.addInitScript(
      `localStorage.setItem('onair.viewer', ${JSON.stringify(JSON.stringify(o.viewer))});` +
        `import(${JSON.stringify(o.readerUrl)}).catch((e) => console.error('strip reader', e));`,
    );
    const url = new URL(o.watchUrl);
    url.searchParams.set('realtime', '1');
    await page.goto(url.href);
    await page.waitForFunction(() => window.__latencyBench !== undefined, undefined, { timeout: 15_000 });
    try {
      await page.waitForFunction(() => window.__latencyBench!.state.ttffMs !== undefined, undefined, {
        timeout: o.firstFrameTimeoutMs ?? 30_000,
      });
    } catch (err) {
      const errors = await page.evaluate(() => [...(window.__onair?.errors ?? []), ...window.__latencyBench!.state.errors]).catch(() => []);
      throw new Error(`no frame displayed on ${url.href}; page errors: ${pageErrors.join('; ')}; page: ${errors.join('; ')}`, {
        cause: err,
      });
    }
    // The measurement window itself (not a readiness wait).
    await new Promise((r) => setTimeout(r, o.durationMs));
    const { state, hookErrors } = await page.evaluate(() => ({
      state: window.__latencyBench!.state,
      hookErrors: window.__onair?.errors ?? [],
    }));
    state.errors.push(...hookErrors, ...pageErrors.map((m) => `pageerror ${m}`));
    return state;
  } finally {
    await page.close().catch(() => {});
  }
}
