// Test helper: Debian's Chromium driven by playwright-core (e2e tests and the latency benchmark).
import { chromium, type Browser } from 'playwright-core';

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
