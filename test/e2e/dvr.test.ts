// End to end: DVR rewind while live. A live event with a small origin memory window (6 segments, 12 s) and a 60 s
// DVR window: its live playlist lists the recorded segments older than the memory window. In Chromium, the watch
// page's seek bar takes the viewer 20 s back: playback goes on there (PROGRAM-DATE-TIME ~20 s older than the usual
// latency, no catch-up towards live), then "Live" returns to the low-latency edge within 3 s of the usual latency.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import HLS from 'hls-parser';
import type { MediaPlaylist } from 'hls-parser/types.js';
import type { Page } from 'playwright-core';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { launchChromium } from '../support/chromium.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

type Created = { id: string; slug: string; streamKey: string; hlsUrl: string; watchUrl: string };

const BACK_SEC = 20;
const DVR_WINDOW_SEC = 60;

let server: ServerUnderTest;
let event: Created;
let publisher: ReturnType<typeof publishTestStream> | undefined;

before(async () => {
  server = await startServer({ ONAIR_WINDOW_SEGMENTS: '6', ONAIR_DVR_WINDOW_SEC: String(DVR_WINDOW_SEC) });
  event = JSON.parse(await server.cli(['event', 'create', '--title', 'E2E DVR', '--json'])) as Created;
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await publisher?.done;
  await server?.stop();
});

/** How far behind the wall clock the displayed position is (s): now − its PROGRAM-DATE-TIME. */
async function pdtAge(page: Page): Promise<number> {
  const age = await page.evaluate(() => {
    const d = window.__onair?.hls?.playingDate;
    return d ? Date.now() - d.getTime() : null;
  });
  assert.ok(age !== null, 'hls.js knows the PROGRAM-DATE-TIME of the position');
  return age / 1000;
}

/** The median of `n` samples of pdtAge, `everyMs` apart. */
async function medianAge(page: Page, n: number, everyMs: number): Promise<number> {
  const ages: number[] = [];
  for (let i = 0; i < n; i++) {
    ages.push(await pdtAge(page));
    await new Promise((r) => setTimeout(r, everyMs));
  }
  ages.sort((a, b) => a - b);
  return ages[Math.floor(n / 2)]!;
}

test('during live, the viewer seeks 20 s back with the DVR bar, plays there, and "Live" returns to the LL edge', async (t) => {
  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${event.streamKey}`,
    width: 640,
    height: 360,
    fps: 30,
    videoKbps: 800,
    preset: 'ultrafast',
    durationSec: 150,
  });
  const media = new URL('360p/index.m3u8', event.hlsUrl).href;
  // 36 s of broadcast: 18 segments, 12 of them only in the recording.
  const pl = await waitFor(
    'a playlist listing recorded segments older than the 12 s memory window',
    async () => {
      const r = await fetch(media);
      if (!r.ok) return undefined;
      const p = HLS.parse(await r.text()) as MediaPlaylist;
      return p.segments.filter((s) => s.uri && !s.gap).length >= 18 ? p : undefined;
    },
    90_000,
    500,
  );
  assert.equal(pl.mediaSequenceBase, pl.segments[0]!.mediaSequenceNumber);
  const oldest = pl.segments[0]!.uri;
  const seg = await fetch(new URL(oldest, media));
  assert.equal(seg.status, 200, `${oldest} read back from the recording through the edge`);
  assert.match(seg.headers.get('cache-control') ?? '', /immutable/);

  const { browser, close } = await launchChromium();
  try {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(new URL(event.watchUrl, server.base).href);
    await page.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 30_000 });
    // The bar shows the DVR range (more than the memory window) once playing.
    await page.waitForFunction(
      () => {
        const v = document.querySelector('video')!;
        const bar = document.getElementById('dvr');
        return bar !== null && !bar.hidden && v.seekable.length > 0 && v.seekable.end(0) - v.seekable.start(0) > 30;
      },
      undefined,
      { timeout: 30_000 },
    );
    // Settle on live, then measure the usual latency (position's PROGRAM-DATE-TIME against the wall clock).
    await new Promise((r) => setTimeout(r, 4000));
    const usual = await medianAge(page, 7, 300);
    t.diagnostic(`usual latency (PDT age) ${usual.toFixed(2)} s`);
    assert.ok(usual < 8, `live playback is near the edge: ${usual} s`);

    // Seek 20 s back with the bar, as a viewer dropping its thumb there.
    const target = await page.evaluate((back) => {
      const v = document.querySelector('video')!;
      const input = document.getElementById('dvr-range') as HTMLInputElement;
      const start = v.seekable.start(0);
      const end = v.seekable.end(v.seekable.length - 1);
      const t = v.currentTime - back;
      input.value = String(Math.round(((t - start) / (end - start)) * 1000));
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
      return t;
    }, BACK_SEC);
    await page.waitForFunction((t0) => Math.abs(document.querySelector('video')!.currentTime - t0) < 1.5, target, { timeout: 10_000 });
    // It plays there: the media clock advances 4 s.
    await page.waitForFunction((t0) => document.querySelector('video')!.currentTime >= t0 + 4, target, { timeout: 20_000 });
    const back = await medianAge(page, 7, 300);
    t.diagnostic(`after seeking back: PDT age ${back.toFixed(2)} s`);
    assert.ok(Math.abs(back - usual - BACK_SEC) <= 3, `about ${BACK_SEC} s further back: ${back} s vs usual ${usual} s`);
    const behind = Number(await page.evaluate(() => document.getElementById('dvr')!.dataset.behind));
    assert.ok(behind > BACK_SEC - 4 && behind < BACK_SEC + 4, `the bar says ${behind} s behind live`);
    assert.match((await page.textContent('#dvr-behind')) ?? '', /^−0:(1[6-9]|2[0-4])$/);
    // No catch-up towards live while the viewer holds the position: normal rate, still ~20 s back 5 s later.
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(await page.evaluate(() => document.querySelector('video')!.playbackRate), 1);
    const later = await medianAge(page, 5, 300);
    assert.ok(later > usual + BACK_SEC - 4, `still held back: ${later} s`);

    // Hovering the bar shows the seek preview of that point: a tile of the live sprite and how far behind live it is.
    const box = (await page.locator('#dvr-range').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    const preview = await page.waitForFunction(
      () => {
        const p = document.querySelector<HTMLElement>('#dvr .seek-preview');
        const img = p?.querySelector<HTMLElement>('.seek-preview-image');
        return p && !p.hidden && img && !img.hidden && /sprite-0\.jpg/.test(img.style.backgroundImage)
          ? { label: p.querySelector('.seek-preview-time')!.textContent, w: img.style.width }
          : undefined;
      },
      undefined,
      { timeout: 15_000 },
    );
    const shown = (await preview.jsonValue())!;
    assert.match(shown.label ?? '', /^−\d+:\d\d$/, 'the preview says how far behind live');
    assert.equal(shown.w, '160px', 'a 160 px tile');
    await page.mouse.move(0, 0);

    // "Live": back to the low-latency edge.
    await page.click('#dvr-live');
    await new Promise((r) => setTimeout(r, 3000));
    const live = await medianAge(page, 7, 300);
    t.diagnostic(`after Live: PDT age ${live.toFixed(2)} s`);
    assert.ok(live <= usual + 3, `back within 3 s of the usual latency: ${live} s vs ${usual} s`);
    assert.equal(await page.getAttribute('#dvr-live', 'aria-pressed'), 'true');
    assert.deepEqual(pageErrors, []);
    const errors = await page.evaluate(() => window.__onair!.errors.filter((e) => e.startsWith('fatal')));
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
