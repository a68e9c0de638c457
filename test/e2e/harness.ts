// End-to-end harness: runs the real onair CLI on free ports in a temp data dir, and Debian's Chromium.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../../lib/http.ts';

export { freePort };
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'cli', 'onair.ts');


/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A running onair server started through its CLI. */
export interface ServerUnderTest {
  httpPort: number;
  rtmpPort: number;
  base: string;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  child: ChildProcess;
  /** Everything the server logged so far (JSON lines). */
  log(): string;
  /** Runs `onair <args>` against the same data dir and config. */
  cli(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts `onair start` with `env` overrides on free ports and waits for /healthz. A port found free can be taken
 * (as some connection's local port) before the server binds it: then it starts again on other ports.
 */
export async function startServer(env: Record<string, string> = {}): Promise<ServerUnderTest> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(env);
    } catch (err) {
      if (attempt === 3 || !/already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startServerOnce(env: Record<string, string>): Promise<ServerUnderTest> {
  const dataDir = mkdtempSync(join(tmpdir(), 'onair-e2e-'));
  const httpPort = await freePort();
  const rtmpPort = await freePort();
  const fullEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ONAIR_HTTP_PORT: String(httpPort),
    ONAIR_RTMP_PORT: String(rtmpPort),
    ONAIR_HOST: '127.0.0.1',
    ONAIR_DATA_DIR: dataDir,
    ONAIR_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
    ONAIR_LOG_LEVEL: 'info',
    ...env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start'], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const base = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor('server /healthz', async () => {
      if (child.exitCode !== null) throw new Error(`server exited: ${out}`);
      const r = await fetch(`${base}/healthz`);
      return r.ok ? true : undefined;
    }, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    httpPort,
    rtmpPort,
    base,
    dataDir,
    env: fullEnv,
    child,
    log: () => out,
    cli: async (args) => (await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, ...args], { env: fullEnv, cwd: root })).stdout,
    stop,
  };
}

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
