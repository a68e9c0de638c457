// Test helper: Debian's Chromium driven by playwright-core (e2e tests and the latency benchmark).
import { chromium, type Browser, type Page } from 'playwright-core';

/** Launches Debian's Chromium headless (Playwright gives it a fresh temporary profile); never downloads a browser. */
export async function launchChromium(extraArgs: string[] = []): Promise<{ browser: Browser; close(): Promise<void> }> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
    },
  };
}

/** Opens the watch page `url`, waits for it to play, then for the media clock to advance `seconds`; page errors are collected. */
export async function watchPlaying(browser: Browser, url: string, seconds: number): Promise<{ page: Page; pageErrors: string[] }> {
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 30_000 });
  const t0 = await page.evaluate(() => document.querySelector('video')!.currentTime);
  await page.waitForFunction(([t, s]) => document.querySelector('video')!.currentTime >= t + s, [t0, seconds] as const, {
    timeout: 20_000,
  });
  return { page, pageErrors };
}
