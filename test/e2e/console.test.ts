// End to end in Chromium: the operator console and the viewer page on one real server and one ffmpeg publish.
// Operator logs in → creates an event → reveals the key → ffmpeg publishes → health chart shows bitrate → viewer
// page plays → news flash on the viewer page → ad break (creative + countdown; DATERANGE in every rendition; a phone
// viewer joining mid-break sees it) → a viewer comment deleted from the console vanishes for the viewer → key
// rotation disconnects the publisher → end stream shows "ended". Screenshots go to test/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import HLS from 'hls-parser';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { runCli, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { closeServer, listen } from '../../lib/http.ts';

const artifacts = join(import.meta.dirname, '..', 'artifacts');
const EMAIL = 'console@example.com';
const PASSWORD = 'correct horse console battery';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const AD_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360" viewBox="0 0 640 360">
<rect width="640" height="360" fill="#0ea5e9"/><text x="320" y="190" font-size="48" font-family="sans-serif" text-anchor="middle" fill="#fff">Test Ad Creative</text></svg>`;

let server: ServerUnderTest;
let adServer: Server;
let chromium: { browser: Browser; close(): Promise<void> };
let publisher: ReturnType<typeof publishTestStream> | undefined;
const contexts: BrowserContext[] = [];
/** Content-Security-Policy violations Chromium reported on any page (the test ends asserting there were none). */
const cspViolations: string[] = [];

async function newPage(viewport: { width: number; height: number }, mobile = false): Promise<Page> {
  const ctx = await chromium.browser.newContext({ viewport, ...(mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}) });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.on('pageerror', (err) => process.stderr.write(`page error (${page.url()}): ${err.message}\n`));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(`${page.url()}: ${m.text()}`);
  });
  return page;
}

/** Screenshot from the top of the page (the console: the whole page). */
async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage });
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  adServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/svg+xml', 'access-control-allow-origin': '*' }).end(AD_SVG);
  });
  const adPort = await listen(adServer, 0, '127.0.0.1');
  server = await startServer({
    ONAIR_HEALTH_INTERVAL_SEC: '1',
    ONAIR_AD_CREATIVE_URL: `http://127.0.0.1:${adPort}/ad.svg`,
  });
  const made = await runCli(server, ['operator', 'create', '--email', EMAIL, '--role', 'admin'], `${PASSWORD}\n`);
  assert.equal(made.code, 0, made.out);
  chromium = await launchChromium();
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  for (const c of contexts) await c.close().catch(() => undefined);
  await chromium?.close();
  await server?.stop();
  if (adServer) await closeServer(adServer);
});

test('console runs a live show end to end; the viewer page follows', { timeout: 180_000 }, async () => {
  // Sign in.
  const op = await newPage(DESKTOP);
  await op.goto(`${server.base}/console`);
  await op.fill('input[name=email]', EMAIL);
  await op.fill('input[name=password]', 'wrong password');
  await op.click('button[type=submit]');
  await waitFor('login error', async () => ((await op.textContent('.form-error'))?.trim() ? true : undefined), 10_000);
  await op.fill('input[name=password]', PASSWORD);
  await op.click('button[type=submit]');
  await op.waitForSelector('.create-form input[name=title]', { timeout: 10_000 });
  assert.match((await op.textContent('#whoami')) ?? '', /console@example\.com/);

  // Create an event → its page. The Record switch is on unless turned off.
  assert.equal(await op.isChecked('.create-form input[name=recording]'), true, 'Record is on by default');
  await op.fill('.create-form input[name=title]', 'Console E2E Show');
  await op.fill('.create-form textarea[name=description]', 'A show run from the operator console.\nSecond line.');
  await op.click('.create-form button[type=submit]');
  await op.waitForSelector('.event-page[data-event-id]', { timeout: 10_000 });
  const eventId = (await op.getAttribute('.event-page', 'data-event-id'))!;
  assert.match(op.url(), new RegExp(`/console/events/${eventId}$`));
  const { event } = (await (await fetch(`${server.base}/api/v1/events/${eventId}`)).json()) as {
    event: { slug: string; recording: boolean | null };
  };
  assert.equal(event.recording, true, 'the Record switch sets the event’s recording field');

  // Reveal the key (once).
  await op.click('[data-action=reveal-key]');
  await op.waitForFunction(() => (document.querySelector<HTMLInputElement>('input[name=stream-key]')?.value ?? '') !== '', undefined, {
    timeout: 10_000,
  });
  const key = await op.inputValue('input[name=stream-key]');
  const rtmpServer = await op.inputValue('input[name=rtmp-server]');
  assert.equal(rtmpServer, `rtmp://127.0.0.1:${server.rtmpPort}/live`);
  assert.ok(!(await op.isVisible('[data-action=reveal-key]')), 'reveal is offered once');

  // Publish with it → live, health chart shows bitrate.
  publisher = publishTestStream({ url: `${rtmpServer}/${key}`, width: 854, height: 480, videoKbps: 1200 });
  await op.waitForSelector('.event-head .badge[data-status=live]', { timeout: 30_000 });
  await op.waitForFunction(
    () => Number(document.querySelector<HTMLElement>('[data-chart=bitrate]')?.dataset.latest ?? 0) > 100,
    undefined,
    { timeout: 30_000 },
  );
  await op.waitForSelector('.preview[data-playing=true]', { timeout: 30_000 });

  // A viewer plays and joins the chat.
  const viewer = await newPage(DESKTOP);
  await viewer.goto(`${server.base}/watch/${event.slug}`);
  await viewer.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 30_000 });
  assert.equal(await viewer.textContent('#title'), 'Console E2E Show');
  await viewer.fill('.chat-name', 'Viewer One');
  await viewer.click('.chat-join button');
  await viewer.waitForSelector('.chat[data-status=live]', { timeout: 15_000 });

  // News flash → viewer page.
  await op.fill('textarea[name=flash-text]', 'Road closures downtown until 6 pm');
  await op.selectOption('select[name=flash-severity]', 'warning');
  await op.click('[data-action=post-flash]');
  await viewer.waitForSelector('#news .news-flash.sev-warning:has-text("Road closures downtown")', { timeout: 10_000 });
  await op.fill('textarea[name=disclaimer-text]', 'Opinions are the speakers’ own.');
  await op.click('[data-action=set-disclaimer]');
  await viewer.waitForSelector('#disclaimer:not([hidden]):has-text("speakers")', { timeout: 10_000 });

  // A viewer comment shows in the console's moderation feed.
  await viewer.fill('.chat-input', 'please delete me');
  await viewer.press('.chat-input', 'Enter');
  await viewer.waitForSelector('.chat-list .chat-item:has-text("please delete me")', { timeout: 10_000 });
  await viewer.fill('.chat-input', 'a comment that stays');
  await viewer.press('.chat-input', 'Enter');
  await viewer.waitForSelector('.chat-list .chat-item:has-text("a comment that stays")', { timeout: 10_000 });
  await op.waitForSelector('.mod-feed .mod-item:has-text("please delete me")', { timeout: 10_000 });
  await shot(viewer, 'viewer-desktop');

  // Ad break: creative + countdown for the viewer, countdown in the console, DATERANGE in every rendition.
  await op.selectOption('select[name=ad-duration]', '15');
  await op.click('[data-action=start-ad]');
  await viewer.waitForSelector('#adbreak:not([hidden])[data-creative=image] img.ad-media', { timeout: 10_000 });
  await viewer.waitForFunction(
    () => (document.querySelector<HTMLImageElement>('#adbreak img.ad-media')?.naturalWidth ?? 0) > 0,
    undefined,
    { timeout: 10_000 },
  );
  const remaining = Number(await viewer.getAttribute('#adbreak', 'data-remaining'));
  assert.ok(remaining > 5 && remaining <= 15, `countdown ${remaining}`);
  assert.match((await viewer.textContent('#adbreak .ad-countdown')) ?? '', /Back to the broadcast in 0:\d\d/);
  await op.waitForSelector('.ad-card .ad-countdown[data-remaining]', { timeout: 10_000 });
  const masterUrl = `${server.base}/live/${eventId}/master.m3u8`;
  const master = HLS.parse(await (await fetch(masterUrl)).text()) as HLS.types.MasterPlaylist;
  assert.ok(master.variants.length >= 2, `${master.variants.length} renditions`);
  for (const v of master.variants) {
    const uri = new URL(v.uri, masterUrl).href;
    await waitFor(
      `DATERANGE in ${uri}`,
      async () => ((await (await fetch(uri)).text()).includes('#EXT-X-DATERANGE:') ? true : undefined),
      10_000,
      200,
    );
  }
  // A phone viewer joining mid-break sees the rest of it.
  const phone = await newPage(PHONE, true);
  await phone.goto(`${server.base}/watch/${event.slug}`);
  await phone.waitForSelector('#adbreak:not([hidden]) img.ad-media', { timeout: 15_000 });
  await phone.waitForFunction(() => (document.querySelector<HTMLImageElement>('#adbreak img.ad-media')?.naturalWidth ?? 0) > 0, undefined, {
    timeout: 10_000,
  });
  await shot(viewer, 'viewer-desktop-ad-break');
  await shot(phone, 'viewer-phone-ad-break');
  await shot(op, 'console-desktop-live', true);
  // End the break from the console: both viewers are back to the live stream.
  await op.click('[data-action=stop-ad]');
  await viewer.waitForSelector('#adbreak', { state: 'hidden', timeout: 10_000 });
  await phone.waitForSelector('#adbreak', { state: 'hidden', timeout: 10_000 });
  await phone.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 30_000 });
  await shot(phone, 'viewer-phone');

  // Delete the comment from the console → it vanishes on the viewer page; the other one stays.
  const item = op.locator('.mod-feed .mod-item', { hasText: 'please delete me' });
  await item.hover();
  await item.locator('[data-action=delete]').click();
  await viewer.waitForSelector('.chat-list .chat-item:has-text("please delete me")', { state: 'detached', timeout: 10_000 });
  assert.ok(await viewer.isVisible('.chat-list .chat-item:has-text("a comment that stays")'));
  await op.waitForSelector('.mod-item[data-deleted=true]', { timeout: 5000 });

  // The console on a phone-sized screen.
  const opPhone = await newPage(PHONE, true);
  await opPhone.goto(`${server.base}/console/events/${eventId}`);
  await opPhone.fill('input[name=email]', EMAIL);
  await opPhone.fill('input[name=password]', PASSWORD);
  await opPhone.click('button[type=submit]');
  await opPhone.waitForSelector('.event-head .badge[data-status=live]', { timeout: 15_000 });
  await shot(opPhone, 'console-phone', true);

  // Rotate the key → the publisher is disconnected.
  await op.click('[data-action=rotate-key]');
  await op.click('.obs-card [data-confirm=yes]');
  const code = await Promise.race([publisher.done, new Promise<'running'>((r) => setTimeout(() => r('running'), 20_000))]);
  assert.notEqual(code, 'running', 'publisher still running after rotation');
  await waitFor(
    'new key shown',
    async () => {
      const k = await op.inputValue('input[name=stream-key]');
      return k !== '' && k !== key ? true : undefined;
    },
    10_000,
  );
  // The SRT URL, which carries the key, is shown with it.
  const newKey = await op.inputValue('input[name=stream-key]');
  assert.equal(await op.inputValue('input[name=srt-url]'), `srt://127.0.0.1:${await server.srtPort()}?streamid=publish:${newKey}`);

  // End the stream → "ended" in the console and on the viewer page.
  await op.click('[data-action=end]');
  await op.click('.event-head [data-confirm=yes]');
  await op.waitForSelector('.event-head .badge[data-status=ended]', { timeout: 15_000 });
  assert.equal((await op.textContent('.event-head .badge'))?.trim(), 'ended');
  await viewer.waitForFunction(() => window.__onair?.state === 'ended', undefined, { timeout: 45_000 });
  assert.match((await viewer.textContent('#overlay')) ?? '', /ended/);
  await shot(op, 'console-desktop-ended', true);
  await op.goto(`${server.base}/console`);
  await op.waitForSelector(`.event-row[data-id="${eventId}"][data-status=ended]`, { timeout: 10_000 });
  await shot(op, 'console-desktop-list', true);

  // The Record switch turned off: the event is created unrecorded (its recording field false).
  await op.fill('.create-form input[name=title]', 'Console unrecorded show');
  await op.uncheck('.create-form input[name=recording]');
  await op.selectOption('.create-form select[name=latencyTuning]', '0.5,2');
  await op.click('.create-form button[type=submit]');
  await op.waitForFunction((old) => document.querySelector('.event-page')?.getAttribute('data-event-id') !== old, eventId, {
    timeout: 10_000,
  });
  const offId = (await op.getAttribute('.event-page', 'data-event-id'))!;
  const off = (await (await fetch(`${server.base}/api/v1/events/${offId}`)).json()) as {
    event: { recording: boolean | null; partTargetSec: number | null; gopSec: number | null };
  };
  assert.equal(off.event.recording, false, 'Record off → recording: false');
  assert.deepEqual([off.event.partTargetSec, off.event.gopSec], [0.5, 2], 'the latency tuning chosen in the form');
  assert.match((await op.textContent('[data-role=latency-tuning]')) ?? '', /0\.5 s parts, 2 s GOP/);
  assert.deepEqual(cspViolations, [], 'no page broke its CSP');
});
