// End to end in Chromium against the real server: the home page lists every event the API returns; every page carries
// its security headers and runs under its CSP without a single violation while a stream plays.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

type Created = { id: string; slug: string; streamKey: string; rtmpUrl: string };

let server: ServerUnderTest;
let chromium: { browser: Browser; close(): Promise<void> };
let publisher: ReturnType<typeof publishTestStream> | undefined;

before(async () => {
  server = await startServer({ ONAIR_LADDER: '[{"name":"240p","height":240,"fps":30,"videoKbps":400}]' });
  chromium = await launchChromium();
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await chromium?.close();
  await server?.stop();
});

/** A page that records CSP violations (the DOM event, and Chromium's console report) and uncaught errors. */
async function watchedPage(): Promise<{ page: Page; violations: string[]; errors: string[] }> {
  const page = await chromium.browser.newPage();
  const violations: string[] = [];
  const errors: string[] = [];
  await page.exposeFunction('__cspViolation', (v: string) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { __cspViolation(v: string): void }).__cspViolation(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  return { page, violations, errors };
}

test('the home page lists two events from the real API, without an error', async () => {
  for (const title of ['First show', 'Second show']) await server.cli(['event', 'create', '--title', title, '--json']);
  const { page, violations, errors } = await watchedPage();
  try {
    await page.goto(`${server.base}/`);
    await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: 15_000 });
    assert.equal(await page.getAttribute('body', 'data-state'), 'ready', (await page.textContent('#list-status')) ?? '');
    const titles = await page.$$eval('.event-card .event-title', (els) => els.map((e) => e.textContent));
    // Newest first.
    assert.deepEqual(titles, ['Second show', 'First show']);
    assert.equal((await page.textContent('#list-status'))?.trim(), '');
    assert.deepEqual(errors, []);
    assert.deepEqual(violations, []);
  } finally {
    await page.close();
  }
});

test('pages carry a CSP, nosniff and a referrer policy; the console is never framed, the watch page may be', async () => {
  const get = async (path: string) => {
    const r = await fetch(`${server.base}${path}`);
    await r.arrayBuffer();
    return r;
  };
  for (const path of ['/', '/watch/some-show', '/console', '/console/events/abc']) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /(^|; )script-src 'self'(;|$)/, `${path}: ${csp}`);
    assert.match(csp, /(^|; )style-src 'self'(;|$)/, `${path}: ${csp}`);
    assert.match(csp, /(^|; )object-src 'none'(;|$)/, path);
    assert.match(
      csp,
      new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${server.httpPort} wss://127\\.0\\.0\\.1:${server.httpPort}`),
      path,
    );
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
    assert.ok(r.headers.get('referrer-policy'), path);
  }
  for (const path of ['/console', '/console/events/abc']) {
    const r = await get(path);
    assert.match(r.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path);
    assert.equal(r.headers.get('x-frame-options'), 'DENY', path);
  }
  const watch = await get('/watch/some-show');
  assert.match(watch.headers.get('content-security-policy') ?? '', /frame-ancestors \*(;|$)/);
  assert.equal(watch.headers.get('x-frame-options'), null);
  // Every other response of the public port: nosniff.
  for (const path of ['/api/v1/events', '/healthz', '/no-such-page']) {
    assert.equal((await get(path)).headers.get('x-content-type-options'), 'nosniff', path);
  }
});

test('the watch page plays a live stream under its CSP with no violation', { timeout: 120_000 }, async () => {
  const event = JSON.parse(await server.cli(['event', 'create', '--title', 'CSP show', '--json'])) as Created;
  publisher = publishTestStream({ url: `${event.rtmpUrl}/${event.streamKey}`, width: 426, height: 240, videoKbps: 400, durationSec: 90 });
  const { page, violations, errors } = await watchedPage();
  try {
    await page.goto(`${server.base}/watch/${event.slug}`);
    await page.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 60_000 });
    const t0 = await page.evaluate(() => document.querySelector('video')?.currentTime ?? 0);
    await page.waitForFunction((start) => (document.querySelector('video')?.currentTime ?? 0) > start + 1, t0, { timeout: 15_000 });
    // The chat's WebSocket connects under connect-src.
    await page.fill('.chat-name', 'Viewer');
    await page.click('.chat-join button');
    await page.waitForSelector('.chat[data-status=live]', { timeout: 15_000 });
    assert.deepEqual(violations, []);
    assert.deepEqual(errors, []);
    // The console's sign-in page too.
    await page.goto(`${server.base}/console`);
    await page.waitForSelector('input[name=email]', { timeout: 10_000 });
    assert.deepEqual(violations, []);
  } finally {
    await page.close();
  }
});
