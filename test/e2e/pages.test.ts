// End to end in Chromium against the real server: the home page lists every event the API returns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchChromium, startServer, type ServerUnderTest } from './harness.ts';

let server: ServerUnderTest;
let chromium: { browser: Browser; close(): Promise<void> };

before(async () => {
  server = await startServer();
  chromium = await launchChromium();
});

after(async () => {
  await chromium?.close();
  await server?.stop();
});

test('the home page lists two events from the real API, without an error', async () => {
  for (const title of ['First show', 'Second show']) await server.cli(['event', 'create', '--title', title, '--json']);
  const page = await chromium.browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  try {
    await page.goto(`${server.base}/`);
    await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: 15_000 });
    assert.equal(await page.getAttribute('body', 'data-state'), 'ready', (await page.textContent('#list-status')) ?? '');
    const titles = await page.$$eval('.event-card .event-title', (els) => els.map((e) => e.textContent));
    // Newest first.
    assert.deepEqual(titles, ['Second show', 'First show']);
    assert.equal((await page.textContent('#list-status'))?.trim(), '');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
