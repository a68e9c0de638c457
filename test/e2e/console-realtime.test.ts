// End to end in Chromium: the console's real-time preview. A moderator signs in to the console of a live event (an
// ffmpeg RTMP publish); the preview plays LL-HLS and offers Real-time (the server answers OPTIONS /whep/<id>); the
// switch plays the event over WHEP with a viewer token of the operator's role (frames shown, the server counts one
// WHEP viewer) and back to LL-HLS. With the node's single WHEP slot taken, a second console's switch is refused
// (whep_full): it says so under the picture and keeps playing LL-HLS. An event that is not live offers no switch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { runCli, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

const EMAIL = 'preview@example.com';
const PASSWORD = 'correct horse preview battery';

let server: ServerUnderTest;
let chromium: { browser: Browser; close(): Promise<void> };
let publisher: ReturnType<typeof publishTestStream> | undefined;
let eventId = '';
const contexts: BrowserContext[] = [];

/**
 * Frames the preview <video> displays in `ms` (requestVideoFrameCallback), and whether a MediaStream (WHEP) feeds
 * it. A string, not a function: tsx would wrap inner functions in a helper the page lacks.
 */
const FRAMES_SCRIPT = `(ms) => new Promise((resolve) => {
  const video = document.querySelector('.preview-video');
  let frames = 0;
  const onFrame = () => { frames++; video.requestVideoFrameCallback(onFrame); };
  video.requestVideoFrameCallback(onFrame);
  setTimeout(() => resolve({ frames, stream: video.srcObject !== null, width: video.videoWidth }), ms);
})`;
type Frames = { frames: number; stream: boolean; width: number };
const framesIn = (page: Page, ms: number) => page.evaluate(`(${FRAMES_SCRIPT})(${ms})`) as Promise<Frames>;

async function whepViewers(): Promise<number | undefined> {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('onair_whep_viewers '));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

/** A signed-in console page of event `id`. */
async function signedIn(id: string): Promise<Page> {
  const ctx = await chromium.browser.newContext({ viewport: { width: 1280, height: 800 } });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.on('pageerror', (err) => process.stderr.write(`page error (${page.url()}): ${err.message}\n`));
  await page.goto(`${server.base}/console/events/${id}`);
  await page.fill('input[name=email]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForSelector('.event-page[data-event-id]', { timeout: 15_000 });
  return page;
}

/** A console page of the live event, signed in as the moderator, its preview playing LL-HLS. */
async function consolePage(): Promise<Page> {
  const page = await signedIn(eventId);
  await page.waitForSelector('.preview[data-mode=hls][data-playing=true]', { timeout: 45_000 });
  return page;
}

before(async () => {
  server = await startServer({
    ONAIR_WHIP_ICE_ADDRESSES: '127.0.0.1',
    ONAIR_WHIP_ICE_PORTS: '46300-46399',
    ONAIR_WHEP_MAX_VIEWERS: '1',
  });
  const made = await runCli(server, ['operator', 'create', '--email', EMAIL, '--role', 'moderator'], `${PASSWORD}\n`);
  assert.equal(made.code, 0, made.out);
  const ev = JSON.parse(await server.cli(['event', 'create', '--title', 'Console real time', '--json'])) as {
    id: string;
    streamKey: string;
  };
  eventId = ev.id;
  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${ev.streamKey}`,
    durationSec: 150,
    width: 640,
    height: 360,
    fps: 30,
    videoKbps: 800,
    preset: 'ultrafast',
  });
  chromium = await launchChromium(['--allow-loopback-in-peer-connection']);
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await chromium?.close();
  publisher?.child.kill('SIGKILL');
  await publisher?.done;
  await server?.stop();
});

test('the console preview switches to real time (WHEP frames) and back to LL-HLS', { timeout: 120_000 }, async () => {
  const page = await consolePage();
  await page.waitForSelector('[data-action=realtime]:visible', { timeout: 10_000 });
  assert.equal(await page.getAttribute('[data-action=realtime]', 'aria-pressed'), 'false');

  await page.click('[data-action=realtime]');
  await page.waitForSelector('.preview[data-mode=whep][data-playing=true]', { timeout: 20_000 });
  assert.equal(await page.getAttribute('[data-action=realtime]', 'aria-pressed'), 'true');
  const rt = await framesIn(page, 2_000);
  assert.ok(rt.stream, 'a MediaStream (WebRTC) feeds the preview');
  assert.ok(rt.frames >= 20, `real-time frames shown in 2 s: ${rt.frames}`);
  assert.equal(rt.width, 640, 'the source picture');
  assert.equal(await whepViewers(), 1);
  assert.equal(await page.isVisible('[data-role=realtime-note]'), false, 'no refusal to report');

  await page.click('[data-action=realtime]');
  await page.waitForSelector('.preview[data-mode=hls][data-playing=true]', { timeout: 45_000 });
  assert.equal(await page.getAttribute('[data-action=realtime]', 'aria-pressed'), 'false');
  const hls = await framesIn(page, 2_000);
  assert.equal(hls.stream, false, 'LL-HLS (MSE) again, no MediaStream');
  assert.ok(hls.frames >= 20, `LL-HLS frames shown in 2 s: ${hls.frames}`);
  await waitFor('the WHEP session ended', async () => (await whepViewers()) === 0 || undefined, 10_000, 200);
  await page.context().close();
});

test(
  'with no WHEP slot free the switch is refused (whep_full): a note under the picture, LL-HLS plays on',
  { timeout: 120_000 },
  async () => {
    const first = await consolePage();
    await first.click('[data-action=realtime]');
    await first.waitForSelector('.preview[data-mode=whep][data-playing=true]', { timeout: 20_000 });
    assert.equal(await whepViewers(), 1, 'the one slot is taken');

    const second = await consolePage();
    await second.click('[data-action=realtime]');
    await second.waitForSelector('.preview[data-realtime-refused=whep_full][data-mode=hls][data-playing=true]', { timeout: 45_000 });
    assert.match((await second.textContent('[data-role=realtime-note]')) ?? '', /no WebRTC slot free.*Playing LL-HLS/);
    assert.equal(await second.isVisible('[data-role=realtime-note]'), true);
    assert.equal(await second.getAttribute('[data-action=realtime]', 'aria-pressed'), 'false');
    assert.ok((await framesIn(second, 2_000)).frames >= 20, 'LL-HLS plays');
  },
);

test('an event that is not live offers no Real-time switch', async () => {
  const idle = JSON.parse(await server.cli(['event', 'create', '--title', 'Not live', '--json'])) as { id: string };
  const page = await signedIn(idle.id);
  await page.waitForSelector('.preview-msg:has-text("Waiting for the first publish")', { timeout: 10_000 });
  assert.equal(await page.isVisible('[data-action=realtime]'), false);
  await page.context().close();
});
