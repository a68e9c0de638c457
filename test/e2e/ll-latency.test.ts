// End to end: LL-HLS playback through the edge in Chromium (the viewer page's hls.js config and catch-up) stays
// within 3 s of live for 20 s, measured glass to glass with the wall-clock strip the publisher
// burns into the video (scripts/bench/stamp.ts, read per displayed frame by the bench page); a stock hls.js
// (lowLatencyMode only) joins within one part of its aim and converges under the same bound, and the watch page itself
// reaches its target latency.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { launchChromium } from '../support/chromium.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { createLatencyPageServer } from '../../scripts/bench/latency/page-server.ts';
import { measureLatency, summarize, LATENCY_CHROMIUM_ARGS } from '../../scripts/bench/latency/measure.ts';
import { HLS_CONFIG } from '../../player/src/live-player.ts';

type Created = { id: string; streamKey: string; hlsUrl: string; watchUrl: string };

const WINDOW_MS = 20_000;
const WARMUP_MS = 5_000;
const BOUND_MS = 3_000;

let server: ServerUnderTest;
let event: Created;
let publisher: ReturnType<typeof publishTestStream> | undefined;
const pageServer = createLatencyPageServer();

before(async () => {
  server = await startServer();
  event = JSON.parse(await server.cli(['event', 'create', '--title', 'E2E LL latency', '--json'])) as Created;
  await pageServer.start();
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await publisher?.done;
  await pageServer.stop();
  await server?.stop();
});

test('LL-HLS through the edge stays within 3 s of the publisher’s wall clock for 20 s', async (t) => {
  // This test judges the LL delivery path (packager, blocking reloads, hinted parts, edge, player), not how fast
  // two shared cores transcode: publisher, ladder and Chromium all run here, and a 720p source's full ladder
  // saturates a slow CI machine (its backlog, not LL-HLS, then sets the latency). A 360p source makes the ladder
  // one rung (rungs above the source are dropped); the publisher, standing in for OBS on another machine, uses
  // ultrafast. bench:latency measures the full 720p ladder.
  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${event.streamKey}`,
    width: 640,
    height: 360,
    fps: 30,
    videoKbps: 1000,
    stamp: true,
    preset: 'ultrafast',
  });
  // The viewer joins a steady stream (parts served through the edge, three segments in), as bench:latency does:
  // in the first seconds the publisher's and the ladder's start-up backlog is still being caught up.
  const media = new URL('360p/index.m3u8', event.hlsUrl).href;
  await waitFor(
    'LL parts and 3 segments in the 360p playlist',
    async () => {
      const r = await fetch(media);
      const text = r.ok ? await r.text() : '';
      return text.includes('#EXT-X-PART:') && text.split('#EXTINF:').length > 3 ? true : undefined;
    },
    45_000,
    250,
  );

  const { browser, close } = await launchChromium(LATENCY_CHROMIUM_ARGS);
  try {
    const state = await measureLatency(browser, {
      pageUrl: pageServer.pageUrl,
      hlsUrl: event.hlsUrl,
      hlsConfig: HLS_CONFIG,
      catchUp: true,
      durationMs: WINDOW_MS,
      firstFrameTimeoutMs: 30_000,
    });
    const summary = summarize(state);
    const detail = JSON.stringify(summary);
    t.diagnostic(detail);
    const t0 = state.samples[0]?.[0];
    assert.ok(t0 !== undefined, `no frame's strip decoded: ${detail}`);
    const steady = state.samples.filter((s) => s[0] - t0 >= WARMUP_MS);
    // At least a third of 15 s at 30 fps decoded: playback went on, and the strip reads at every rung.
    assert.ok(steady.length >= 150, `${steady.length} decoded frames after the first 5 s: ${detail}`);
    assert.ok(state.misreads <= state.frames / 10, `strip misreads ${state.misreads}/${state.frames}`);
    // Within 3 s of live: the median frame under the bound and none far past it (plain HLS sits at 6 s and more),
    // none from the future. Publisher, origin and browser share two cores here, so the tail is judged loosely;
    // bench:latency reports the real percentiles.
    const ages = steady.map((s) => s[1]).sort((a, b) => a - b);
    const p50 = ages[Math.floor(ages.length / 2)]!;
    assert.ok(p50 < BOUND_MS, `median ${p50} ms ≥ ${BOUND_MS} ms after capture; ${detail}`);
    assert.ok(ages.at(-1)! < BOUND_MS + 2000 && ages[0]! >= 0, `ages from ${ages[0]} to ${ages.at(-1)} ms; ${detail}`);
    assert.ok(!state.errors.some((e) => e.startsWith('fatal ') || e.startsWith('pageerror')), `errors: ${state.errors.join('; ')}`);
  } finally {
    await close();
  }
});

test('a stock hls.js (lowLatencyMode only) joining the same stream converges under the bound', async (t) => {
  assert.ok(publisher, 'the stream of the first test is running');
  const { browser, close } = await launchChromium(LATENCY_CHROMIUM_ARGS);
  try {
    const state = await measureLatency(browser, {
      pageUrl: pageServer.pageUrl,
      hlsUrl: event.hlsUrl,
      hlsConfig: { lowLatencyMode: true },
      durationMs: WINDOW_MS,
      firstFrameTimeoutMs: 30_000,
    });
    const detail = JSON.stringify(summarize(state));
    t.diagnostic(detail);
    const t0 = state.samples[0]?.[0];
    assert.ok(t0 !== undefined, `no frame's strip decoded: ${detail}`);
    // The last 10 s: a player that joined at an independent part, a GOP late at most, holds its place.
    const late = state.samples.filter((s) => s[0] - t0 >= WINDOW_MS - 10_000).map((s) => s[1]);
    assert.ok(late.length >= 100, `${late.length} decoded frames in the last 10 s: ${detail}`);
    late.sort((a, b) => a - b);
    const p50 = late[Math.floor(late.length / 2)]!;
    assert.ok(p50 < BOUND_MS, `stock hls.js median ${p50} ms ≥ ${BOUND_MS} ms after capture; ${detail}`);
    // It aims at PART-HOLD-BACK from the live edge and decodes from the independent part at or before its aim: the
    // origin answers its first playlist load when that part is the aim's own (within half a part), so it starts
    // within one part target (0.2 s) of the aim, not up to a GOP (1 s) before it.
    const join = state.joinBehindAimMs;
    assert.ok(join !== undefined && join >= 0 && join <= 200, `hls.js began ${join} ms before its aim; ${detail}`);
  } finally {
    await close();
  }
});

test('the watch page converges to its target latency (PART-HOLD-BACK) and shows the latency from capture', async () => {
  assert.ok(publisher, 'the stream of the first test is running');
  const { browser, close } = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(event.watchUrl);
    await page.waitForFunction(() => window.__onair?.state === 'playing' && window.__onair.hls !== undefined, undefined, {
      timeout: 40_000,
    });
    // hls.js's distance to its target: the catch-up (latency-control.ts) brings it within 0.3 s. Generous: 30 s.
    const reached = await page
      .waitForFunction(
        () => {
          const hls = window.__onair!.hls!;
          const target = hls.targetLatency;
          return target !== null && Number.isFinite(hls.latency) && hls.latency - target <= 0.3 ? { latency: hls.latency, target } : false;
        },
        undefined,
        { timeout: 30_000, polling: 250 },
      )
      .then((h) => h.jsonValue() as Promise<{ latency: number; target: number }>);
    assert.ok(reached.target <= 2, `target ${reached.target} s: PART-HOLD-BACK, not 3 target durations`);
    // The page shows the latency from capture (wall clock − PDT), which is above hls.js's distance to the edge.
    const shown = await page.waitForFunction(
      () => {
        const m = /Latency ([\d.]+) s/.exec(document.getElementById('latency')?.textContent ?? '');
        return m ? Number(m[1]) : false;
      },
      undefined,
      { timeout: 10_000 },
    );
    const seconds = (await shown.jsonValue()) as number;
    assert.ok(seconds > 0 && seconds < BOUND_MS / 1000, `shown latency ${seconds} s`);
  } finally {
    await close();
  }
});
