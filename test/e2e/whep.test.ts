// End to end: WHEP playback. An RTMP publisher (ffmpeg, a small 360p source) is live; Chromium receives it over
// WebRTC from POST /whep/<eventId> with a viewer token and decodes frames; a wrong token is refused (401); with the
// cap at one viewer a second session is refused (503 whep_full); the watch page asked for real time falls back to
// LL-HLS when refused, and plays real time once a slot is free; DELETE ends the session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { launchChromium } from '../support/chromium.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { h264Offer } from '../support/sdp-offer.ts';
import { playWhep } from '../support/whep-page.ts';

type Created = { id: string; slug: string; streamKey: string; watchUrl: string; hlsUrl: string };
type Viewer = { token: string; viewer: { id: string; name: string; role: string }; expiresAt: number };

let server: ServerUnderTest;
let event: Created;
let idle: Created;
let viewer: Viewer;
let publisher: ReturnType<typeof publishTestStream> | undefined;
let chromium: { browser: Browser; close(): Promise<void> } | undefined;
let playerPage: Page | undefined;
let sessionUrl = '';

/** What the page's peer connection has decoded so far. */
const STATS_SCRIPT = `async () => {
  const out = { framesDecoded: 0, audioPackets: 0, currentTime: window.whepVideo.currentTime, width: window.whepVideo.videoWidth };
  for (const s of (await window.whepPc.getStats()).values()) {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.framesDecoded = s.framesDecoded ?? 0;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioPackets = s.packetsReceived ?? 0;
  }
  return out;
}`;

type Stats = { framesDecoded: number; audioPackets: number; currentTime: number; width: number };

async function play(page: Page, url: string, token: string): Promise<string> {
  await page.goto(`${server.base}/healthz`);
  return playWhep(page, url, token);
}

async function metric(name: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

async function post(url: string, init: { token?: string; body?: string; type?: string }): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': init.type ?? 'application/sdp' };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  return fetch(url, { method: 'POST', headers, body: init.body ?? '' });
}

const OFFER = h264Offer('recvonly');

before(async () => {
  server = await startServer({
    ONAIR_WHIP_ICE_ADDRESSES: '127.0.0.1',
    ONAIR_WHIP_ICE_PORTS: '46100-46199',
    ONAIR_WHEP_MAX_VIEWERS: '1',
  });
  event = JSON.parse(await server.cli(['event', 'create', '--title', 'WHEP e2e', '--json'])) as Created;
  idle = JSON.parse(await server.cli(['event', 'create', '--title', 'Idle', '--json'])) as Created;
  const r = await fetch(`${server.base}/api/v1/viewers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ displayName: 'Realtime' }),
  });
  assert.equal(r.status, 201);
  viewer = (await r.json()) as Viewer;
  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${event.streamKey}`,
    durationSec: 120,
    width: 640,
    height: 360,
    fps: 30,
    videoKbps: 800,
    preset: 'ultrafast',
  });
  chromium = await launchChromium(['--allow-loopback-in-peer-connection']);
});

after(async () => {
  await chromium?.close();
  publisher?.child.kill('SIGTERM');
  await publisher?.done;
  await server?.stop();
});

test('bad WHEP requests get their documented errors', async () => {
  const url = `${server.base}/whep/${event.id}`;
  const cases: [string, Response, number, string][] = [
    ['no content type', await post(url, { token: viewer.token, type: 'text/plain', body: OFFER }), 415, 'unsupported_media_type'],
    ['no token', await post(url, { body: OFFER }), 401, 'unauthorized'],
    ['wrong token', await post(url, { token: viewer.token.slice(0, -2) + 'xx', body: OFFER }), 401, 'unauthorized'],
    ['a stream key is no viewer token', await post(url, { token: event.streamKey, body: OFFER }), 401, 'unauthorized'],
    ['not SDP', await post(url, { token: viewer.token, body: 'hello' }), 400, 'bad_sdp'],
    ['sendonly offer', await post(url, { token: viewer.token, body: OFFER.replace('a=recvonly', 'a=sendonly') }), 400, 'bad_sdp'],
    ['not live', await post(`${server.base}/whep/${idle.id}`, { token: viewer.token, body: OFFER }), 404, 'not_live'],
    ['unknown session', await fetch(`${url}/nope`, { method: 'DELETE' }), 404, 'not_found'],
    ['GET', await fetch(url), 405, 'method_not_allowed'],
  ];
  for (const [what, r, code, error] of cases) {
    assert.equal(r.status, code, what);
    const body = (await r.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, error, what);
    assert.ok(body.error.message.length > 0, what);
  }
  assert.equal(cases[1]![1].headers.get('www-authenticate'), 'Bearer');
  const preflight = await fetch(url, { method: 'OPTIONS' });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('accept-post'), 'application/sdp');
  assert.ok(!server.log().includes(viewer.token), 'viewer tokens are never logged');
});

test('Chromium plays a live RTMP publish over WHEP: H.264 frames decode and Opus audio arrives', async () => {
  await waitFor(
    'event live',
    async () =>
      ((await (await fetch(`${server.base}/api/v1/events/${event.id}`)).json()) as { event: { status: string } }).event.status === 'live' ||
      undefined,
    30_000,
    250,
  );
  playerPage = await chromium!.browser.newPage();
  sessionUrl = await play(playerPage, `${server.base}/whep/${event.id}`, viewer.token);
  assert.match(sessionUrl, new RegExp(`/whep/${event.id}/[\\w-]{16,}$`));
  const first = await waitFor(
    'frames decoded',
    async () => {
      const s = (await playerPage!.evaluate(`(${STATS_SCRIPT})()`)) as Stats;
      return s.framesDecoded >= 30 && s.audioPackets > 0 ? s : undefined;
    },
    30_000,
    250,
  );
  assert.equal(first.width, 640, 'the source picture, not transcoded');
  // Playback goes on: the video element's clock advances and more frames decode.
  await new Promise((r) => setTimeout(r, 2_000));
  const later = (await playerPage.evaluate(`(${STATS_SCRIPT})()`)) as Stats;
  assert.ok(later.framesDecoded > first.framesDecoded + 20, `frames keep decoding (${first.framesDecoded} → ${later.framesDecoded})`);
  assert.ok(later.currentTime > first.currentTime + 1, `currentTime advances (${first.currentTime} → ${later.currentTime})`);
  assert.equal(await metric('onair_whep_viewers'), 1);
});

test('beyond ONAIR_WHEP_MAX_VIEWERS a viewer is refused with 503 whep_full and Retry-After', async () => {
  const page = await chromium!.browser.newPage();
  await assert.rejects(play(page, `${server.base}/whep/${event.id}`, viewer.token), /WHEP POST: 503 10 .*whep_full/);
  await page.close();
});

/** A watch page of the event for a viewer holding a token, asking for real time. */
async function watchRealtime(): Promise<Page> {
  const page = await chromium!.browser.newPage();
  await page.addInitScript(`localStorage.setItem('onair.viewer', ${JSON.stringify(JSON.stringify(viewer))})`);
  await page.goto(`${event.watchUrl}?realtime=1`);
  return page;
}

test('the watch page asked for real time falls back to LL-HLS when WHEP refuses (the node is full)', async () => {
  const page = await watchRealtime();
  await page.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 60_000 });
  const hook = (await page.evaluate(() => ({ mode: window.__onair!.mode, refused: window.__onair!.realtimeRefused }))) as {
    mode: string;
    refused?: string;
  };
  assert.deepEqual(hook, { mode: 'hls', refused: 'whep_full' });
  assert.equal(await page.locator('#realtime').isVisible(), true, 'the toggle is offered to a viewer with a token');
  assert.equal(await page.locator('#realtime').getAttribute('aria-pressed'), 'false');
  await page.close();
});

test('PATCH is 405; DELETE ends the session and frees the slot', async () => {
  const patch = await fetch(sessionUrl, { method: 'PATCH', headers: { 'content-type': 'application/trickle-ice-sdpfrag' }, body: '' });
  assert.equal(patch.status, 405);
  assert.equal((await fetch(sessionUrl, { method: 'DELETE' })).status, 200);
  assert.equal((await fetch(sessionUrl, { method: 'DELETE' })).status, 404, 'gone');
  assert.equal(await metric('onair_whep_viewers'), 0);
  await playerPage?.close();
  // The slot is free again: a new session is taken.
  const page = await chromium!.browser.newPage();
  const again = await play(page, `${server.base}/whep/${event.id}`, viewer.token);
  assert.equal((await fetch(again, { method: 'DELETE' })).status, 200);
  await page.close();
});

test('with a free slot the watch page plays real time, and its toggle goes back to LL-HLS', async () => {
  const page = await watchRealtime();
  await page.waitForFunction(() => window.__onair?.state === 'playing' && window.__onair.mode === 'whep', undefined, { timeout: 30_000 });
  const t0 = await page.evaluate(() => (document.getElementById('video') as HTMLVideoElement).currentTime);
  await page.waitForFunction((t) => (document.getElementById('video') as HTMLVideoElement).currentTime > t + 1, t0, { timeout: 15_000 });
  assert.equal(await page.locator('#realtime').getAttribute('aria-pressed'), 'true');
  assert.equal(await metric('onair_whep_viewers'), 1);
  await page.locator('#realtime').click();
  await page.waitForFunction(() => window.__onair?.state === 'playing' && window.__onair.mode === 'hls', undefined, { timeout: 60_000 });
  await waitFor('the WHEP session ended', async () => (await metric('onair_whep_viewers')) === 0 || undefined, 10_000, 200);
  await page.close();
});
