// End to end: thumbnails. While an event is live its lowest rung gives a live thumbnail through the edge (a JPEG
// 320 px wide, renewed), the watch page carries it as og:image, and the seek-preview VTT grows; once the event
// ended its recording has a poster (API and /live/<event>/thumbnail.jpg) and a VTT whose cues cover the replay's
// duration and point inside the sprite sheets' pixel size (ffprobed). Also prints the CPU the thumbnailer used.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { adminApiToken, callApi, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { launchChromium } from '../support/chromium.ts';
import { cueAt, parsePreviewVtt } from '../../player/src/seek-preview.ts';

const run = promisify(execFile);

let server: ServerUnderTest;
let token: string;
let event: { id: string; slug: string; thumbnailUrl: string };
let streamKey: string;
let publisher: ReturnType<typeof publishTestStream> | undefined;
let tmp: string;
/** Seconds published; a thumbnail every INTERVAL_SEC of media keeps the test short. */
const PUBLISH_SEC = 20;
const INTERVAL_SEC = 4;

function api(method: string, path: string, body?: unknown, auth: Record<string, string> = { authorization: `Bearer ${token}` }) {
  return callApi(server.base, method, path, body, auth);
}

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: Buffer }> {
  const r = await fetch(new URL(path, server.base), { headers });
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: Buffer.from(await r.arrayBuffer()) };
}

/** Width and height of a picture, by ffprobe. */
async function pictureSize(jpeg: Buffer): Promise<{ width: number; height: number }> {
  const file = join(tmp, `probe-${Math.random().toString(36).slice(2)}.jpg`);
  writeFileSync(file, jpeg);
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'json', file]);
  const s = (JSON.parse(stdout) as { streams: { width: number; height: number }[] }).streams[0]!;
  return { width: s.width, height: s.height };
}

function assertJpeg(b: Buffer, what: string): void {
  assert.ok(b.length > 500, `${what}: ${b.length} bytes`);
  assert.deepEqual([b[0], b[1], b[b.length - 2], b[b.length - 1]], [0xff, 0xd8, 0xff, 0xd9], `${what}: JPEG SOI … EOI`);
}

interface Cue {
  start: number;
  end: number;
  sprite: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

function parseVtt(text: string): Cue[] {
  assert.ok(text.startsWith('WEBVTT\n'), 'a WebVTT file');
  const sec = (t: string) => {
    const [h, m, s] = t.split(':');
    return Number(h) * 3600 + Number(m) * 60 + Number(s);
  };
  const cues: Cue[] = [];
  for (const block of text.split('\n\n').slice(1)) {
    const m = /^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(sprite-\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)\n?$/.exec(block);
    assert.ok(m, `cue ${JSON.stringify(block)}`);
    cues.push({ start: sec(m[1]!), end: sec(m[2]!), sprite: m[3]!, x: +m[4]!, y: +m[5]!, w: +m[6]!, h: +m[7]! });
  }
  return cues;
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'onair-e2e-thumbs-'));
  server = await startServer({
    ONAIR_RECONNECT_WINDOW_SEC: '2',
    ONAIR_THUMBNAIL_INTERVAL_SEC: String(INTERVAL_SEC),
    ONAIR_LADDER: '[{"name":"360p","height":360,"videoKbps":600},{"name":"240p","height":240,"videoKbps":300}]',
  });
  token = await adminApiToken(server, 'thumbs@example.com', 'correct horse battery', 'thumbs');
  const made2 = await api('POST', '/events', { title: 'Thumbs & "previews"', description: 'A test <show>' });
  assert.equal(made2.status, 201);
  event = made2.json.event as typeof event;
  streamKey = (await api('POST', `/events/${event.id}/stream-key/reveal`)).json.streamKey as string;
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('before any broadcast there is no thumbnail: a JSON 404 through the edge', async () => {
  assert.equal(event.thumbnailUrl, `/live/${event.id}/thumbnail.jpg`);
  const r = await get(event.thumbnailUrl);
  assert.equal(r.status, 404);
  assert.match(r.type, /json/);
  assert.equal((await get(`/live/${event.id}/sprite-x.jpg`)).status, 400, 'a malformed sprite name');
});

test('live: a 320 px JPEG thumbnail through the edge, renewed; og:image on the watch page; a growing preview VTT', async () => {
  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${streamKey}`,
    durationSec: PUBLISH_SEC,
    width: 640,
    height: 360,
  });
  const first = await waitFor(
    'live thumbnail',
    async () => {
      const r = await get(event.thumbnailUrl);
      return r.status === 200 ? r : undefined;
    },
    30_000,
    250,
  );
  assert.equal(first.type, 'image/jpeg');
  assertJpeg(first.body, 'live thumbnail');
  // The lowest rung is 240p of a 16:9 source: 426x240, so 320x180.
  assert.deepEqual(await pictureSize(first.body), { width: 320, height: 180 });
  // A thumbnail every INTERVAL_SEC of media (edge cache: 5 s): the picture changes (the test pattern moves).
  const next = await waitFor(
    'a newer thumbnail',
    async () => {
      const r = await get(event.thumbnailUrl);
      return r.status === 200 && !r.body.equals(first.body) ? r : undefined;
    },
    20_000,
    500,
  );
  assertJpeg(next.body, 'renewed thumbnail');

  const pageRes = await fetch(new URL(`/watch/${event.slug}`, server.base));
  assert.equal(pageRes.status, 200);
  assert.match(pageRes.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(pageRes.headers.get('content-security-policy') ?? '', /default-src 'self'/, 'the page headers still apply');
  const html = await pageRes.text();
  const og = /<meta property="og:image" content="([^"]+)" \/>/.exec(html);
  assert.ok(og, 'og:image');
  assert.equal(new URL(og[1]!).pathname, event.thumbnailUrl, 'absolute URL of the live thumbnail');
  assert.match(html, /<meta property="og:title" content="Thumbs &amp; &quot;previews&quot;" \/>/);
  assert.match(html, /<title>Thumbs &amp; &quot;previews&quot; · onair<\/title>/);
  assert.ok(!html.includes('<show>'), 'the description is escaped');

  const vtt = await get(`/live/${event.id}/thumbnails.vtt`);
  assert.equal(vtt.status, 200);
  assert.match(vtt.type, /^text\/vtt/);
  const cues = parseVtt(vtt.body.toString('utf8'));
  assert.ok(cues.length >= 1, 'live cues');
  assert.equal(cues[0]!.start, 0);
  const sprite = await get(`/live/${event.id}/${cues[0]!.sprite}`);
  assert.equal(sprite.status, 200);
  assertJpeg(sprite.body, 'live sprite');
});

test('ended: the recording has a poster and seek previews covering its duration, inside the sprite', async () => {
  assert.equal(await publisher!.done, 0);
  publisher = undefined;
  const rec = await waitFor(
    'recording ready',
    async () => {
      const r = ((await api('GET', `/recordings?eventId=${event.id}`)).json.recordings as Record<string, unknown>[])[0];
      return r?.status === 'ready' ? r : undefined;
    },
    30_000,
    500,
  );
  const durationSec = rec.durationSec as number;
  assert.ok(Math.abs(durationSec - PUBLISH_SEC) < 3, `duration ${durationSec}`);
  assert.equal(rec.posterUrl, `/api/v1/recordings/${rec.id as string}/poster.jpg`);
  assert.equal(rec.previewUrl, `/live/${event.id}/thumbnails.vtt`);

  assert.equal((await get(rec.posterUrl as string)).status, 401, 'the API poster is for operators');
  const poster = await get(rec.posterUrl as string, { authorization: `Bearer ${token}` });
  assert.equal(poster.status, 200);
  assert.equal(poster.type, 'image/jpeg');
  assertJpeg(poster.body, 'poster');
  assert.deepEqual(await pictureSize(poster.body), { width: 320, height: 180 });
  // The event's thumbnail URL now answers with the replay's poster (through the edge).
  const replayed = await waitFor('poster at the thumbnail URL', async () => {
    const r = await get(event.thumbnailUrl);
    return r.status === 200 && r.body.equals(poster.body) ? r : undefined;
  });
  assertJpeg(replayed.body, 'replay poster');
  assert.equal((await api('GET', `/recordings/${event.id}.1/poster.jpg`)).status, 404, 'no such recording');

  const vtt = await get(rec.previewUrl as string);
  assert.equal(vtt.status, 200);
  const cues = parseVtt(vtt.body.toString('utf8'));
  // A tile every INTERVAL_SEC of media: about PUBLISH_SEC / INTERVAL_SEC of them (one may be skipped while a job runs).
  assert.ok(cues.length >= Math.floor(durationSec / INTERVAL_SEC) - 1, `${cues.length} cues for ${durationSec} s`);
  assert.equal(cues[0]!.start, 0, 'from the start');
  for (let i = 1; i < cues.length; i++) assert.equal(cues[i]!.start, cues[i - 1]!.end, `cue ${i} follows cue ${i - 1}`);
  assert.ok(Math.abs(cues[cues.length - 1]!.end - durationSec) < 0.01, `to the end: ${cues[cues.length - 1]!.end} vs ${durationSec}`);
  const sizes = new Map<string, { width: number; height: number }>();
  for (const c of cues) {
    if (!sizes.has(c.sprite)) {
      const s = await get(`/live/${event.id}/${c.sprite}`);
      assert.equal(s.status, 200, c.sprite);
      assertJpeg(s.body, c.sprite);
      sizes.set(c.sprite, await pictureSize(s.body));
    }
    const size = sizes.get(c.sprite)!;
    assert.deepEqual([c.w, c.h], [160, 90], 'tile size');
    assert.ok(
      c.x + c.w <= size.width && c.y + c.h <= size.height,
      `${c.sprite}#xywh=${c.x},${c.y},${c.w},${c.h} inside ${size.width}x${size.height}`,
    );
  }
  assert.equal((await get(`/live/${event.id}/sprite-${sizes.size}.jpg`)).status, 404, 'no sheet past the last');

  // What the thumbnails cost the origin: ffmpeg CPU seconds per minute of media.
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(metrics)?.[1]);
  const cpu = value('onair_origin_thumbnail_cpu_seconds_total');
  assert.ok(cpu > 0, 'thumbnail CPU counted');
  console.log(
    JSON.stringify({
      bench: 'thumbnails',
      intervalSec: INTERVAL_SEC,
      mediaSec: durationSec,
      tiles: cues.length,
      cpuSec: Number(cpu.toFixed(3)),
      cpuSecPerMediaMinute: Number(((cpu / durationSec) * 60).toFixed(3)),
      cpuSecPerMediaMinuteAt10s: Number((((cpu / durationSec) * 60 * INTERVAL_SEC) / 10).toFixed(3)),
    }),
  );
});

test('Chromium: the replay shows the poster, links the track and previews the tile under the pointer on its seek bar', async () => {
  const vttUrl = new URL(`/live/${event.id}/thumbnails.vtt`, server.base).href;
  const cues = parsePreviewVtt((await get(vttUrl)).body.toString('utf8'), vttUrl);
  const { browser, close } = await launchChromium();
  try {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.base}/watch/${event.slug}`);
    await page.waitForFunction(() => window.__onair?.replay === true && window.__onair.state === 'playing', undefined, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => document.querySelector('video')!.poster), new URL(event.thumbnailUrl, server.base).href);
    assert.equal(await page.evaluate(() => document.querySelector<HTMLTrackElement>('video track[kind=metadata]')?.src), vttUrl);
    await page.waitForFunction(() => Number(document.querySelector<HTMLInputElement>('#seek')!.max) > 0, undefined, { timeout: 10_000 });
    const bar = (await page.locator('#seek').boundingBox())!;
    const duration = await page.evaluate(() => Number(document.querySelector<HTMLInputElement>('#seek')!.max));
    // Hover at 70 % of the bar: the tile of the cue at 70 % of the duration.
    await page.mouse.move(bar.x + bar.width * 0.7, bar.y + bar.height / 2);
    await page.waitForSelector('.seek-preview:not([hidden])', { timeout: 5_000 });
    const shown = await page.evaluate(() => {
      const img = document.querySelector<HTMLElement>('.seek-preview-image')!;
      return {
        image: img.style.backgroundImage,
        position: img.style.backgroundPosition,
        width: img.style.width,
        time: document.querySelector('.seek-preview-time')!.textContent,
      };
    });
    const cue = cueAt(cues, 0.7 * duration)!;
    assert.ok(cue, 'a cue at 70 %');
    assert.equal(shown.image, `url("${cue.url}")`);
    assert.equal(shown.position, `${-cue.x}px ${-cue.y}px`);
    assert.equal(shown.width, `${cue.w}px`);
    await page.mouse.move(bar.x + bar.width / 2, bar.y - 200);
    await page.waitForSelector('.seek-preview', { state: 'hidden', timeout: 5_000 });

    // The home page lists the event with its thumbnail (the replay's poster), loaded.
    await page.goto(server.base);
    await page.waitForFunction(() => (document.querySelector<HTMLImageElement>('img.event-thumb')?.naturalWidth ?? 0) === 320, undefined, {
      timeout: 10_000,
    });
    assert.deepEqual(pageErrors, []);
  } finally {
    await close();
  }
});
