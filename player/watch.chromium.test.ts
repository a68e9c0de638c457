// End-to-end test of the viewer pages: built player + tiny fake API + a real ffmpeg HLS stream, in Chromium.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { ApiEvent } from '../control/api-types.ts';
import { waitFor } from '../test/support/wait-for.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const distDir = path.join(repoRoot, 'dist', 'player');

const XSS_TITLE = '<img src=x onerror="window.__xss=1">Show & "Tell"';
const XSS_DESCRIPTION = '<b>not bold</b> <script>window.__xss=2</script>';
const EVENT_ID = 'evt-1';
const SLUG = 'the-show';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.m4s': 'video/mp4',
  '.mp4': 'video/mp4',
};

/** Mutable fake control-plane state, changed by the test. */
interface Fake {
  status: 'idle' | 'live' | 'offline' | 'ended';
  serveHls: boolean;
  masterRequests: number;
  hls404s: number;
}

interface Ctx {
  tmp?: string;
  ffmpeg?: ChildProcess;
  ffmpegLog: string;
  server?: http.Server;
  base?: string;
  browser?: Browser;
  page?: Page;
  pageErrors: string[];
  fake: Fake;
}

const ctx: Ctx = { ffmpegLog: '', pageErrors: [], fake: { status: 'offline', serveHls: false, masterRequests: 0, hls404s: 0 } };

/** Waits for a Node-side condition, polling, for at most `timeoutMs`. */
/** waitFor with ffmpeg's last output in the timeout message. */
function waitLogged(what: string, cond: () => boolean, timeoutMs: number): Promise<true> {
  return waitFor(what, cond, timeoutMs, 100).catch((err: Error) => {
    throw new Error(`${err.message}\nffmpeg: ${ctx.ffmpegLog.slice(-2000)}`);
  });
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds the player when dist/player is missing or older than its sources. */
function ensureBuilt(): void {
  const built = path.join(distDir, 'watch.html');
  if (existsSync(built) && statSync(built).mtimeMs >= newestMtime(here)) return;
  execFileSync(
    process.execPath,
    [path.join(repoRoot, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'player/vite.config.ts', '--logLevel', 'warn'],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 60_000,
    },
  );
}

/** The fake's event, typed by the API's own schema so that it cannot drift from what the server sends. */
function eventJson(): ApiEvent {
  const at = Date.parse('2025-01-01T00:00:00.000Z');
  return {
    id: EVENT_ID,
    slug: SLUG,
    title: XSS_TITLE,
    description: XSS_DESCRIPTION,
    status: ctx.fake.status,
    createdAt: at,
    updatedAt: at,
    liveSince: ctx.fake.status === 'live' ? at + 60_000 : null,
    latencyMode: 'standard',
    scheduledStart: null,
    visibility: 'public',
    endedAt: ctx.fake.status === 'ended' ? at + 120_000 : null,
    recording: null,
    dvrWindowSec: null,
    ladderPreset: null,
    partTargetSec: null,
    gopSec: null,
    sourceRefusal: null,
    hlsUrl: `/live/${EVENT_ID}/master.m3u8`,
    watchUrl: `/watch/${SLUG}`,
    thumbnailUrl: `/live/${EVENT_ID}/thumbnail.jpg`,
  };
}

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function sendFile(res: http.ServerResponse, root: string, rel: string): Promise<void> {
  const file = path.resolve(root, rel);
  if (!file.startsWith(root + path.sep)) return send(res, 404, 'text/plain', 'not found');
  try {
    send(res, 200, MIME[path.extname(file)] ?? 'application/octet-stream', await readFile(file));
  } catch {
    send(res, 404, 'text/plain', 'not found');
  }
}

/** Serves dist/player, the fake API and the ffmpeg HLS output (only while `serveHls`). */
function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const p = url.pathname;
  const notFound = JSON.stringify({ error: { code: 'not_found', message: 'no such event' } });
  if (p === '/') void sendFile(res, distDir, 'index.html');
  else if (/^\/watch\/[^/]+$/.test(p)) void sendFile(res, distDir, 'watch.html');
  else if (p.startsWith('/assets/')) void sendFile(res, distDir, p.slice(1));
  else if (p === '/api/v1/events') {
    const events = [eventJson()].filter((e) => !url.searchParams.has('status') || e.status === url.searchParams.get('status'));
    send(res, 200, 'application/json', JSON.stringify({ events }));
  } else if (p === `/api/v1/events/by-slug/${SLUG}`) {
    send(res, 200, 'application/json', JSON.stringify({ event: eventJson() }));
  } else if (p.startsWith('/api/')) send(res, 404, 'application/json', notFound);
  else if (p.startsWith(`/live/${EVENT_ID}/`)) {
    if (p.endsWith('/master.m3u8')) ctx.fake.masterRequests += 1;
    if (!ctx.fake.serveHls || ctx.tmp === undefined) {
      ctx.fake.hls404s += 1;
      return send(res, 404, 'text/plain', 'not found');
    }
    void sendFile(res, path.join(ctx.tmp, 'hls'), decodeURIComponent(p.slice(`/live/${EVENT_ID}/`.length)));
  } else send(res, 404, 'text/plain', 'not found');
}

/** Starts ffmpeg's own hls muxer: 2 renditions, fMP4, 1 s segments, sliding window of 6. */
function startFfmpeg(out: string): ChildProcess {
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostdin',
    '-re',
    '-t',
    '90',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=640x360:rate=30',
    '-re',
    '-t',
    '90',
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=48000',
    '-filter_complex',
    '[0:v]split=2[a][b];[a]scale=640:360[v0];[b]scale=426:240[v1]',
    '-map',
    '[v0]',
    '-map',
    '1:a',
    '-map',
    '[v1]',
    '-map',
    '1:a',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-tune',
    'zerolatency',
    '-pix_fmt',
    'yuv420p',
    '-g',
    '30',
    '-keyint_min',
    '30',
    '-sc_threshold',
    '0',
    '-b:v:0',
    '800k',
    '-b:v:1',
    '300k',
    '-c:a',
    'aac',
    '-b:a',
    '64k',
    '-f',
    'hls',
    '-hls_time',
    '1',
    '-hls_list_size',
    '6',
    '-hls_segment_type',
    'fmp4',
    '-hls_flags',
    'delete_segments+independent_segments',
    '-master_pl_name',
    'master.m3u8',
    '-var_stream_map',
    'v:0,a:0 v:1,a:1',
    '-hls_segment_filename',
    path.join(out, 'v%v', 'seg%d.m4s'),
    path.join(out, 'v%v', 'index.m3u8'),
  ];
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (chunk: Buffer) => {
    ctx.ffmpegLog = (ctx.ffmpegLog + chunk.toString()).slice(-8000);
  });
  return child;
}

function segmentCount(out: string, variant: string): number {
  try {
    return (readFileSync(path.join(out, variant, 'index.m3u8'), 'utf8').match(/^#EXTINF/gm) ?? []).length;
  } catch {
    return 0;
  }
}

before(async () => {
  ensureBuilt();
  ctx.tmp = mkdtempSync(path.join(tmpdir(), 'onair-player-'));
  ctx.ffmpeg = startFfmpeg(path.join(ctx.tmp, 'hls'));
  const server = http.createServer(handle);
  ctx.server = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ctx.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ctx.browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'],
    timeout: 20_000,
  });
  ctx.page = await ctx.browser.newPage();
  ctx.page.on('pageerror', (err) => ctx.pageErrors.push(err.message));
});

after(async () => {
  await ctx.browser?.close().catch(() => undefined);
  if (ctx.server !== undefined) {
    ctx.server.closeAllConnections();
    await new Promise((resolve) => ctx.server?.close(resolve));
  }
  const ff = ctx.ffmpeg;
  if (ff !== undefined && ff.exitCode === null && ff.signalCode === null) {
    const closed = new Promise((resolve) => ff.once('close', resolve));
    ff.kill('SIGKILL');
    await closed;
  }
  if (ctx.tmp !== undefined) rmSync(ctx.tmp, { recursive: true, force: true });
});

function page(): Page {
  assert.ok(ctx.page !== undefined, 'browser page not started');
  return ctx.page;
}

test('home page lists the event, rendering its title as text', async () => {
  const p = page();
  await p.goto(`${ctx.base}/`);
  await p.waitForSelector('.event-card', { timeout: 10_000 });
  assert.equal(await p.textContent('.event-card .event-title'), XSS_TITLE);
  assert.equal(await p.getAttribute('.event-card', 'href'), `/watch/${SLUG}`);
  assert.equal(await p.locator('#events img, #events script').count(), 0);
});

test('watch page: offline, then plays by itself once live, without a reload', async () => {
  const p = page();
  await p.goto(`${ctx.base}/watch/${SLUG}`);
  await p.waitForSelector('body[data-state="offline"]', { timeout: 10_000 });
  assert.equal(await p.textContent('#overlay'), 'offline — waiting for the broadcast');
  assert.equal(await p.textContent('#title'), XSS_TITLE);
  assert.equal(await p.textContent('#description'), XSS_DESCRIPTION);
  assert.equal(await p.locator('main img, main script').count(), 0);
  await p.evaluate(() => {
    (window as unknown as { __sameDocument: boolean }).__sameDocument = true;
  });

  // The API says live but the master still 404s (origin not ready): stay offline, keep trying.
  ctx.fake.status = 'live';
  const before404 = ctx.fake.masterRequests;
  await waitLogged('a master request answered 404', () => ctx.fake.masterRequests > before404, 10_000);
  // The page may show `loading` while that request is in flight; once the 404 lands it is offline again.
  await p.waitForSelector('body[data-state="offline"]', { timeout: 10_000 });
  assert.ok(!(await p.evaluate(() => window.__onair?.hls !== undefined && window.__onair.state === 'playing')));

  // The stream appears: the page starts playing on its own.
  const out = path.join(ctx.tmp ?? '', 'hls');
  await waitLogged('ffmpeg segments', () => segmentCount(out, 'v0') >= 3 && segmentCount(out, 'v1') >= 3, 20_000);
  ctx.fake.serveHls = true;
  await p.waitForSelector('body[data-state="playing"]', { timeout: 20_000 });
  assert.equal(await p.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument), true);
  assert.equal(await p.isHidden('#overlay'), true);

  const t0 = await p.evaluate(() => document.querySelector('video')?.currentTime ?? 0);
  await p.waitForFunction((start) => (document.querySelector('video')?.currentTime ?? 0) > start + 1.5, t0, {
    timeout: 10_000,
  });
  await p.waitForFunction(() => /^Latency \d+\.\d s$/.test(document.getElementById('latency')?.textContent ?? ''), null, {
    timeout: 5_000,
  });
  assert.equal(await p.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
});

test('quality menu lists the renditions and selecting one sets hls.currentLevel', async () => {
  const p = page();
  const levels = await p.evaluate(() => window.__onair?.levels ?? []);
  assert.deepEqual(
    levels.map((l) => l.height).sort((a, b) => b - a),
    [360, 240],
  );
  const options = await p.$$eval('#quality option', (os) =>
    os.map((o) => ({ value: (o as HTMLOptionElement).value, text: o.textContent })),
  );
  assert.equal(options.length, 3);
  assert.match(options[0]?.text ?? '', /^Auto( \((360|240)p\))?$/);
  assert.deepEqual(
    options.slice(1).map((o) => o.text),
    ['360p', '240p'],
  );
  await p.waitForFunction(() => /^Auto \((360|240)p\)$/.test(document.querySelector('#quality option')?.textContent ?? ''), null, {
    timeout: 10_000,
  });

  const low = options.find((o) => o.text === '240p')?.value;
  assert.ok(low !== undefined);
  const index = Number(low);
  assert.equal(levels[index]?.height, 240);
  await p.selectOption('#quality', low);
  assert.equal(await p.evaluate(() => window.__onair?.hls?.manualLevel), index);
  await p.waitForFunction((i) => window.__onair?.hls?.currentLevel === i && window.__onair.currentLevel === i, index, {
    timeout: 15_000,
  });
  assert.equal(await p.textContent('#quality option'), 'Auto');

  const t0 = await p.evaluate(() => document.querySelector('video')?.currentTime ?? 0);
  await p.waitForFunction((start) => (document.querySelector('video')?.currentTime ?? 0) > start + 1, t0, {
    timeout: 10_000,
  });
  await p.selectOption('#quality', '-1');
  assert.equal(await p.evaluate(() => window.__onair?.hls?.autoLevelEnabled), true);
});

test('a brief 404 period (publisher reconnecting) recovers without a reload', async () => {
  const p = page();
  ctx.fake.serveHls = false;
  const start404 = ctx.fake.hls404s;
  await waitLogged('several 404s for the stream', () => ctx.fake.hls404s >= start404 + 3, 15_000);
  // Long enough for hls.js to give up on its own retries: our recovery must take over.
  const fatalsBefore = await p.evaluate(() => window.__onair?.errors.filter((e) => e.startsWith('fatal')).length ?? 0);
  await p.waitForFunction((n) => (window.__onair?.errors.filter((e) => e.startsWith('fatal')).length ?? 0) > n, fatalsBefore, {
    timeout: 25_000,
  });
  ctx.fake.serveHls = true;
  const resumedAt = await p.evaluate(() => document.querySelector('video')?.currentTime ?? 0);
  await p.waitForFunction(
    (start) => document.body.dataset.state === 'playing' && (document.querySelector('video')?.currentTime ?? 0) > start + 2,
    resumedAt,
    { timeout: 25_000 },
  );
  assert.equal(await p.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument), true);
});

test('the broadcast ending shows the ended state', async () => {
  const p = page();
  const ff = ctx.ffmpeg;
  assert.ok(ff !== undefined);
  const closed = new Promise((resolve) => ff.once('close', resolve));
  ff.kill('SIGINT'); // ffmpeg finishes the playlists with EXT-X-ENDLIST
  await closed;
  ctx.fake.status = 'ended';
  await p.waitForSelector('body[data-state="ended"]', { timeout: 25_000 });
  assert.equal(await p.textContent('#overlay'), 'This broadcast has ended.');
  assert.deepEqual(ctx.pageErrors, []);
});
