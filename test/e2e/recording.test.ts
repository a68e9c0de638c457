// End to end: a broadcast (with a publisher reconnect) is recorded to local storage; once the event is offline its
// hlsUrl replays it as VOD through the edge, a `recording.ready` webhook goes out, the recordings API lists it,
// downloads it as one MP4 (remuxed), Chromium plays the replay with a seek bar, and deleting it ends the replay.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import HLS from 'hls-parser';
import { adminApiToken, callApi, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { launchChromium } from '../support/chromium.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { listen, closeServer } from '../../lib/http.ts';
import { startSeaweedS3, type SeaweedS3 } from '../support/seaweedfs.ts';

const run = promisify(execFile);
HLS.setOptions({ strictMode: true });

let server: ServerUnderTest;
let receiver: Server;
let receiverUrl: string;
const hooks: { type: string; body: string }[] = [];
let token: string;
let event: { id: string; slug: string; hlsUrl: string; watchUrl: string };
let streamKey: string;
let publisher: ReturnType<typeof publishTestStream> | undefined;
let tmp: string;
/** recording-s3.seaweedfs.test.ts runs this file against a SeaweedFS S3 server instead of the local disk. */
let s3: SeaweedS3 | undefined;
/** Seconds published: two sessions of a 640x360 test source. */
const FIRST_SEC = 8;
const SECOND_SEC = 6;

function api(method: string, path: string, body?: unknown, auth: Record<string, string> = { authorization: `Bearer ${token}` }) {
  return callApi(server.base, method, path, body, auth);
}

function publish(durationSec: number) {
  return publishTestStream({ url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${streamKey}`, durationSec, width: 640, height: 360 });
}

async function text(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'onair-e2e-rec-'));
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push({ type: req.headers['x-onair-event'] as string, body });
      res.writeHead(200).end('ok');
    });
  });
  receiverUrl = `http://127.0.0.1:${await listen(receiver, 0, '127.0.0.1')}`;
  if (process.env.E2E_RECORDING_S3 === '1') s3 = await startSeaweedS3();
  server = await startServer({
    ...(s3 ? { ...s3.env, ONAIR_STORAGE_URL: `s3://${s3.bucket}/recordings?endpoint=${encodeURIComponent(s3.endpoint)}` } : {}),
    ONAIR_RECONNECT_WINDOW_SEC: '3',
    ONAIR_WEBHOOK_ALLOW_CIDRS: '127.0.0.0/8',
    ONAIR_WEBHOOK_RETRY_BASE_MS: '300',
    ONAIR_LADDER: '[{"name":"360p","height":360,"videoKbps":600},{"name":"240p","height":240,"videoKbps":300}]',
  });
  token = await adminApiToken(server, 'rec@example.com', 'correct horse battery', 'rec');
  assert.equal((await api('POST', '/webhooks', { url: `${receiverUrl}/hook`, events: ['recording.ready'] })).status, 201);
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await server?.stop();
  await s3?.stop();
  await closeServer(receiver);
  rmSync(tmp, { recursive: true, force: true });
});

test('recording is an event field: false switches it off, null (the default) follows ONAIR_RECORDING', async () => {
  const off = await api('POST', '/events', { title: 'Not recorded', recording: false });
  assert.equal(off.status, 201);
  assert.equal((off.json.event as { recording: boolean | null }).recording, false);
  const on = await api('POST', '/events', { title: 'Recorded show' });
  assert.equal((on.json.event as { recording: boolean | null }).recording, null, 'follows ONAIR_RECORDING (on)');
  event = on.json.event as typeof event;
  const reveal = await api('POST', `/events/${event.id}/stream-key/reveal`);
  streamKey = reveal.json.streamKey as string;
  assert.equal((await api('PATCH', `/events/${event.id}`, { recording: 'yes' })).status, 400, 'a boolean or null');
});

test('a broadcast with a reconnect is recorded while live, then replays as VOD at the same hlsUrl', async (t) => {
  const hlsUrl = new URL(event.hlsUrl, server.base).href;
  publisher = publish(FIRST_SEC);
  await waitFor('live', async () => ((await text(hlsUrl)).status === 200 ? true : undefined), 30_000, 300);
  const live = await api('GET', `/recordings?eventId=${event.id}`);
  const recs = live.json.recordings as { id: string; status: string }[];
  assert.equal(recs.length, 1);
  assert.equal(recs[0]!.status, 'recording');
  assert.equal((await api('DELETE', `/recordings/${recs[0]!.id}`)).status, 409, 'not while recording');
  assert.equal(await publisher.done, 0);
  // The publisher returns within the reconnect window: the same recording continues, after a discontinuity.
  publisher = publish(SECOND_SEC);
  assert.equal(await publisher.done, 0);
  publisher = undefined;

  const ready = await waitFor(
    'recording ready',
    async () => {
      const r = ((await api('GET', `/recordings?eventId=${event.id}`)).json.recordings as { status: string }[])[0];
      return r?.status === 'ready' ? r : undefined;
    },
    30_000,
    500,
  );
  const rec = ready as unknown as { id: string; durationSec: number; bytes: number; failure: string | null; hlsUrl: string };
  assert.equal(rec.failure, null);
  assert.equal(rec.hlsUrl, event.hlsUrl);
  assert.ok(rec.bytes > 100_000, `bytes ${rec.bytes}`);

  // The master playlist (through the edge, same URL as while live) lists the recorded ladder.
  const master = await text(hlsUrl);
  assert.equal(master.status, 200);
  const m = HLS.parse(master.body) as HLS.types.MasterPlaylist;
  assert.deepEqual(m.variants.map((v) => v.uri).sort(), ['240p/index.m3u8', '360p/index.m3u8']);
  let total = 0;
  for (const v of m.variants) {
    const r = await text(new URL(v.uri, hlsUrl).href);
    assert.equal(r.status, 200);
    const p = HLS.parse(r.body) as HLS.types.MediaPlaylist;
    assert.equal(p.playlistType, 'VOD');
    assert.equal(p.endlist, true);
    assert.equal(p.segments.filter((s) => s.discontinuity).length, 1, 'one discontinuity, at the reconnect');
    total = p.segments.reduce((n, s) => n + s.duration, 0);
    // Each session may lose its first segment (cut where the keyframe grid starts) and part of its last second.
    const published = FIRST_SEC + SECOND_SEC;
    assert.ok(total > published - 5 && total < published + 1, `${v.uri}: EXTINF total ${total} s for ${published} s published`);
    assert.ok(Math.abs(total - rec.durationSec) < 0.01, `API duration ${rec.durationSec} vs playlist ${total}`);
    // Every segment and init is fetchable through the edge.
    const uris = new Set([...p.segments.map((s) => s.uri), ...p.segments.flatMap((s) => (s.map ? [s.map.uri] : []))]);
    for (const u of uris) {
      const r2 = await fetch(new URL(u, new URL(v.uri, hlsUrl)).href);
      assert.equal(r2.status, 200, u);
      assert.equal(r2.headers.get('content-type'), 'video/mp4');
      assert.ok((await r2.arrayBuffer()).byteLength > 0, u);
    }
  }
  assert.match((await text(new URL('360p/part-1.0.m4s', hlsUrl).href)).body, /not_found/, 'a recording has no parts');

  const hook = await waitFor('recording.ready webhook', () => hooks.find((h) => h.type === 'recording.ready'), 15_000, 200);
  const payload = JSON.parse(hook.body) as { type: string; data: { recording: { id: string; status: string } } };
  assert.equal(payload.data.recording.id, rec.id);
  assert.equal(payload.data.recording.status, 'ready');

  // One MP4 of the top rendition, remuxed: its duration is the playlist's (sessions joined end to end).
  const dl = await fetch(`${server.base}/api/v1/recordings/${rec.id}/download`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(dl.status, 200);
  assert.equal(dl.headers.get('content-type'), 'video/mp4');
  const file = join(tmp, 'rec.mp4');
  writeFileSync(file, Buffer.from(await dl.arrayBuffer()));
  const probe = JSON.parse(
    (await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name,width,height', '-of', 'json', file])).stdout,
  ) as { format: { duration: string }; streams: { codec_name: string; width?: number; height?: number }[] };
  const duration = Number(probe.format.duration);
  t.diagnostic(
    `published ${FIRST_SEC + SECOND_SEC} s; VOD EXTINF total ${total.toFixed(3)} s; MP4 ${duration.toFixed(3)} s; ${rec.bytes} bytes stored`,
  );
  assert.ok(Math.abs(duration - total) < 1, `MP4 ${duration} s vs playlist ${total} s`);
  assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
  assert.equal(probe.streams.find((s) => s.codec_name === 'h264')?.height, 360);
  assert.equal((await fetch(`${server.base}/api/v1/recordings/${rec.id}/download`)).status, 401, 'admins only');
});

test('Chromium plays the replay on the watch page: a seek bar, the recording’s duration, seekable to the end', async () => {
  const { browser, close } = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(new URL(event.watchUrl, server.base).href);
    await page.waitForFunction(() => window.__onair?.replay === true && window.__onair.state === 'playing', undefined, { timeout: 30_000 });
    const info = await page.evaluate(() => {
      const v = document.querySelector('video')!;
      return { duration: v.duration, controls: v.controls };
    });
    assert.equal(info.controls, true, 'a seek bar');
    assert.ok(info.duration > FIRST_SEC + SECOND_SEC - 5 && info.duration < FIRST_SEC + SECOND_SEC + 1, `duration ${info.duration}`);
    // Seek into the second publish session, past the discontinuity, and play on from there to the end.
    const target = await page.evaluate(() => {
      const v = document.querySelector('video')!;
      v.currentTime = v.duration - 3;
      return v.currentTime;
    });
    try {
      await page.waitForFunction((t) => document.querySelector('video')!.currentTime >= t + 1.5, target, { timeout: 20_000 });
    } catch (err) {
      const state = await page.evaluate(() => {
        const v = document.querySelector('video')!;
        const b = v.buffered;
        const ranges = Array.from({ length: b.length }, (_, i) => [b.start(i), b.end(i)]);
        return { t: v.currentTime, d: v.duration, paused: v.paused, ranges, errors: window.__onair!.errors, state: window.__onair!.state };
      });
      throw new Error(`the replay did not play on after seeking to ${target}: ${JSON.stringify(state)}`, { cause: err });
    }
    const errors = await page.evaluate(() => window.__onair!.errors.filter((e) => e.startsWith('fatal')));
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('the console lists the recording with its download link; deleting it there removes its media and ends the replay', async () => {
  const recs = (await api('GET', `/recordings?eventId=${event.id}`)).json.recordings as { id: string; downloadUrl: string }[];
  const id = recs[0]!.id;
  const { browser, close } = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.base}/console`);
    await page.fill('input[name=email]', 'rec@example.com');
    await page.fill('input[name=password]', 'correct horse battery');
    await page.click('button[type=submit]');
    const row = `.recordings-card li[data-id="${id}"]`;
    await page.waitForSelector(`${row}[data-status=ready]`, { timeout: 15_000 });
    assert.equal(await page.getAttribute(`${row} a[download]`, 'href'), recs[0]!.downloadUrl);
    await page.click(`${row} [data-action=delete-recording]`);
    await page.click(`${row} [data-confirm=yes]`);
    await page.waitForSelector(row, { state: 'detached', timeout: 10_000 });
  } finally {
    await close();
  }
  assert.equal((await api('GET', `/recordings/${id}`)).status, 404);
  assert.equal((await api('DELETE', `/recordings/${id}`)).status, 404);
  const hlsUrl = new URL(event.hlsUrl, server.base).href;
  await waitFor('replay gone', async () => ((await text(hlsUrl)).status === 404 ? true : undefined), 10_000, 500);
});
