// End to end in Chromium: an event's settings edited from the console. An admin creates an event, then changes its
// title, DVR window and latency tuning in the Settings card (one PATCH): the page header follows and the API returns
// the new values. A DVR window the API refuses shows the API's message in the card and changes nothing. A moderator
// sees no Settings card.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { runCli, startServer, type ServerUnderTest } from '../support/onair-server.ts';

const ADMIN = 'settings-admin@example.com';
const MODERATOR = 'settings-mod@example.com';
const PASSWORD = 'correct horse settings battery';

let server: ServerUnderTest;
let chromium: { browser: Browser; close(): Promise<void> };
const contexts: BrowserContext[] = [];

interface EventBody {
  title: string;
  description: string;
  dvrWindowSec: number | null;
  partTargetSec: number | null;
  gopSec: number | null;
}

async function getEvent(id: string): Promise<EventBody> {
  return ((await (await fetch(`${server.base}/api/v1/events/${id}`)).json()) as { event: EventBody }).event;
}

/** A console page at `path`, signed in as `email`. */
async function signedIn(email: string, path: string): Promise<Page> {
  const ctx = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.on('pageerror', (err) => process.stderr.write(`page error (${page.url()}): ${err.message}\n`));
  await page.goto(`${server.base}${path}`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  return page;
}

before(async () => {
  server = await startServer();
  for (const [email, role] of [
    [ADMIN, 'admin'],
    [MODERATOR, 'moderator'],
  ]) {
    const made = await runCli(server, ['operator', 'create', '--email', email!, '--role', role!], `${PASSWORD}\n`);
    assert.equal(made.code, 0, made.out);
  }
  chromium = await launchChromium();
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await chromium?.close();
  await server?.stop();
});

test('an admin edits an event’s settings in the console; a moderator cannot', { timeout: 60_000 }, async () => {
  const op = await signedIn(ADMIN, '/console');
  await op.waitForSelector('.create-form input[name=title]', { timeout: 10_000 });
  await op.fill('.create-form input[name=title]', 'Settings show');
  await op.fill('.create-form textarea[name=description]', 'Before the edit.');
  await op.click('.create-form button[type=submit]');
  await op.waitForSelector('.event-page[data-event-id] .settings-card', { timeout: 10_000 });
  const id = (await op.getAttribute('.event-page', 'data-event-id'))!;
  const created = await getEvent(id);
  assert.deepEqual([created.dvrWindowSec, created.partTargetSec, created.gopSec], [null, null, null], 'created with server defaults');

  // The card shows the event's values; the go-live rule is said.
  const form = '.settings-card form';
  assert.equal(await op.inputValue(`${form} input[name=title]`), 'Settings show');
  assert.equal(await op.inputValue(`${form} select[name=latencyTuning]`), '');
  assert.match((await op.textContent('.settings-card')) ?? '', /apply from the next go-live/);

  // Title, DVR window and latency tuning in one save.
  await op.fill(`${form} input[name=title]`, 'Settings show, renamed');
  await op.fill(`${form} input[name=dvrWindowSec]`, '120');
  await op.selectOption(`${form} select[name=latencyTuning]`, '0.5,1');
  const patch = op.waitForRequest((r) => r.method() === 'PATCH' && r.url().endsWith(`/api/v1/events/${id}`));
  await op.click('[data-role=save-settings]');
  const body = (await patch).postDataJSON() as Record<string, unknown>;
  assert.deepEqual(body, { title: 'Settings show, renamed', dvrWindowSec: 120, partTargetSec: 0.5, gopSec: 1 }, 'only changed fields');
  await op.waitForFunction(() => document.querySelector('.event-head h1')?.textContent === 'Settings show, renamed', undefined, {
    timeout: 10_000,
  });
  const edited = await getEvent(id);
  assert.equal(edited.title, 'Settings show, renamed');
  assert.equal(edited.description, 'Before the edit.', 'unchanged fields stay');
  assert.deepEqual([edited.dvrWindowSec, edited.partTargetSec, edited.gopSec], [120, 0.5, 1]);
  assert.match((await op.textContent('[data-role=latency-tuning]')) ?? '', /0\.5 s parts, 1 s GOP/);
  assert.equal(await op.textContent('[data-role=settings-error]'), '');

  // A DVR window past the API's limit: its message in the card, nothing changed.
  await op.fill(`${form} input[name=dvrWindowSec]`, '100000');
  await op.click('[data-role=save-settings]');
  await op.waitForFunction(() => (document.querySelector('[data-role=settings-error]')?.textContent ?? '') !== '', undefined, {
    timeout: 10_000,
  });
  const message = (await op.textContent('[data-role=settings-error]')) ?? '';
  assert.match(message, /dvrWindowSec/, `the API's message: ${message}`);
  assert.equal((await getEvent(id)).dvrWindowSec, 120, 'the refused value was not stored');

  // A moderator sees the event page without the Settings card.
  const mod = await signedIn(MODERATOR, `/console/events/${id}`);
  await mod.waitForSelector('.event-page[data-event-id] .ladder-card', { timeout: 10_000 });
  assert.equal(await mod.locator('.settings-card').count(), 0, 'no Settings card for moderators');
  assert.equal(await mod.locator('[data-role=save-settings]').count(), 0);
});
