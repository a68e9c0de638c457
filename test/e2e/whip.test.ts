// End to end: WHIP ingest (RFC 9725). Chromium publishes its fake camera and microphone over WebRTC; the event
// goes live and plays through the edge as the usual H.264 + AAC ladder; a second publisher on either protocol is
// refused; DELETE ends the session; bad requests get their documented errors and change nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { launchChromium } from '../support/chromium.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

type Created = { id: string; slug: string; streamKey: string; whipUrl: string; watchUrl: string; hlsUrl: string };

let server: ServerUnderTest;
let event: Created;
let other: Created;
let chromium: { browser: Browser; close(): Promise<void> } | undefined;
let publisherPage: Page | undefined;
let sessionUrl = '';
const ICE_PORTS = [46000, 46099] as const;

/**
 * Publishes a page's fake camera and microphone to a WHIP URL; resolves to the session URL and the answer. A string, not a function:
 * tsx would wrap the inner functions in a `__name` helper the page does not have.
 */
const PUBLISH_SCRIPT = `async ({ url, key }) => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 3000);
    if (pc.iceGatheringState === 'complete') resolve();
  });
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: 'Bearer ' + key }, body: pc.localDescription.sdp });
  if (r.status !== 201) throw new Error('WHIP POST: ' + r.status + ' ' + (await r.text()));
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  window.whipPc = pc;
  return { location: new URL(r.headers.get('location'), url).href, answer: pc.remoteDescription.sdp };
}`;

/** A Chromium page on the server's origin (a secure context: 127.0.0.1) publishing over WHIP. */
async function publishFromChromium(page: Page, whipUrl: string, key: string): Promise<{ location: string; answer: string }> {
  await page.goto(`${server.base}/healthz`);
  return page.evaluate(`(${PUBLISH_SCRIPT})(${JSON.stringify({ url: whipUrl, key })})`) as Promise<{ location: string; answer: string }>;
}

async function metric(name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

async function status(id: string): Promise<string> {
  return ((await (await fetch(`${server.base}/api/v1/events/${id}`)).json()) as { event: { status: string } }).event.status;
}

async function post(url: string, init: { key?: string; type?: string; body?: string; method?: string }): Promise<Response> {
  const headers: Record<string, string> = {};
  if (init.type !== undefined) headers['content-type'] = init.type;
  if (init.key !== undefined) headers.authorization = `Bearer ${init.key}`;
  return fetch(url, { method: init.method ?? 'POST', headers, body: init.body });
}

before(async () => {
  server = await startServer({
    ONAIR_WHIP_ICE_ADDRESSES: '127.0.0.1',
    ONAIR_WHIP_ICE_PORTS: ICE_PORTS.join('-'),
    ONAIR_RECONNECT_WINDOW_SEC: '2',
  });
  event = JSON.parse(await server.cli(['event', 'create', '--title', 'WHIP e2e', '--json'])) as Created;
  other = JSON.parse(await server.cli(['event', 'create', '--title', 'Other', '--json'])) as Created;
  chromium = await launchChromium([
    '--allow-loopback-in-peer-connection',
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
  ]);
});

after(async () => {
  await chromium?.close();
  await server?.stop();
});

test('bad WHIP requests get their documented errors and change nothing', async () => {
  const url = event.whipUrl;
  const offer = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n';
  const cases: [string, Response, number, string][] = [
    ['no content type', await post(url, { key: event.streamKey, type: 'text/plain', body: offer }), 415, 'unsupported_media_type'],
    ['no key', await post(url, { type: 'application/sdp', body: offer }), 401, 'unauthorized'],
    ['wrong key', await post(url, { key: 'sk_wrong', type: 'application/sdp', body: offer }), 401, 'unauthorized'],
    ['key of another event', await post(url, { key: other.streamKey, type: 'application/sdp', body: offer }), 401, 'unauthorized'],
    ['not SDP', await post(url, { key: event.streamKey, type: 'application/sdp', body: 'hello' }), 400, 'bad_sdp'],
    ['VP8 only', await post(url, { key: event.streamKey, type: 'application/sdp', body: offer }), 400, 'bad_sdp'],
    [
      'oversized',
      await post(url, { key: event.streamKey, type: 'application/sdp', body: `v=0\r\n${'a=x\r\n'.repeat(20_000)}` }),
      413,
      'too_large',
    ],
    ['unknown session', await post(`${url}/nope`, { method: 'DELETE' }), 404, 'not_found'],
    ['GET', await post(url, { method: 'GET' }), 405, 'method_not_allowed'],
  ];
  for (const [what, r, code, error] of cases) {
    assert.equal(r.status, code, what);
    const body = (await r.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, error, what);
    assert.ok(body.error.message.length > 0, what);
    assert.ok(!JSON.stringify(body).includes(event.streamKey), `${what}: no key in the answer`);
  }
  assert.equal(cases[1]![1].headers.get('www-authenticate'), 'Bearer');
  const preflight = await fetch(url, { method: 'OPTIONS' });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('accept-post'), 'application/sdp');
  assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
  assert.equal(await status(event.id), 'idle', 'never went live');
  assert.equal(await metric('onair_ingest_rejected_total', 'reason="bad_sdp"'), 2);
  assert.equal(await metric('onair_ingest_rejected_total', 'reason="unknown_key"'), 2);
  const log = server.log();
  assert.ok(!log.includes(event.streamKey) && !log.includes(other.streamKey), 'stream keys are never logged');
});

test('Chromium publishes over WHIP: the event goes live and its H.264 + AAC ladder plays through the edge', async () => {
  publisherPage = await chromium!.browser.newPage();
  const published = await publishFromChromium(publisherPage, event.whipUrl, event.streamKey);
  sessionUrl = published.location;
  const candidates = published.answer.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
  assert.ok(
    candidates.some((c) => c.includes(' 127.0.0.1 ')),
    'the configured loopback address is a candidate',
  );
  for (const c of candidates) {
    const port = Number(c.split(' ')[5]);
    assert.ok(port >= ICE_PORTS[0] && port <= ICE_PORTS[1], `candidate port ${port} within ONAIR_WHIP_ICE_PORTS`);
  }
  assert.match(published.answer, /x-google-max-bitrate=/);
  assert.doesNotMatch(published.answer, /VP8|VP9|AV1/, 'one H.264 payload type kept');
  assert.match(sessionUrl, new RegExp(`/whip/${event.id}/[\\w-]{16,}$`));
  assert.ok(!sessionUrl.includes(event.streamKey));

  const master = await waitFor(
    'master playlist',
    async () => {
      const r = await fetch(event.hlsUrl);
      return r.ok ? r.text() : undefined;
    },
    40_000,
    250,
  );
  assert.match(master, /CODECS="avc1\.[0-9a-f]+,mp4a\.40\.2"/);
  assert.match(master, /RESOLUTION=640x360/, 'the 360p rung of a 640×360 camera');
  const media = new URL(
    master.split('\n').find((l) => l.endsWith('.m3u8'))!,
    event.hlsUrl,
  ).href;
  const playlist = await waitFor(
    'two segments',
    async () => {
      const body = await (await fetch(media)).text();
      return (body.match(/^seg-\d+\.m4s$/gm) ?? []).length >= 2 ? body : undefined;
    },
    40_000,
    500,
  );
  // A whole segment decodes with video and audio.
  const init = playlist.match(/URI="(init-\d+\.mp4)"/)![1]!;
  const seg = playlist.match(/^seg-\d+\.m4s$/m)![0];
  const bytes = Buffer.concat(
    await Promise.all([init, seg].map(async (u) => Buffer.from(await (await fetch(new URL(u, media))).arrayBuffer()))),
  );
  const probe = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      'ffprobe',
      ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name', '-of', 'csv=p=0', '-i', 'pipe:0'],
      (err, out) => (err ? reject(err) : resolve(out)),
    );
    child.stdin!.end(bytes);
  });
  assert.match(probe, /h264,video/);
  assert.match(probe, /aac,audio/);
  assert.equal(await status(event.id), 'live');
  assert.equal(await metric('onair_ingest_active_publishers', 'protocol="whip"'), 1);

  // A viewer plays it in the watch page.
  const viewer = await chromium!.browser.newPage();
  await viewer.goto(event.watchUrl);
  await viewer.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 40_000 });
  await viewer.close();
});

test('while WHIP is live, a second publisher on WHIP (409) or RTMP is refused and the first keeps going', async () => {
  const page = await chromium!.browser.newPage();
  await assert.rejects(publishFromChromium(page, event.whipUrl, event.streamKey), /WHIP POST: 409 .*already_live/);
  await page.close();
  const rtmp = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${event.streamKey}`,
    durationSec: 10,
    width: 320,
    height: 240,
  });
  assert.notEqual(await rtmp.done, 0, 'the RTMP publisher is refused');
  assert.equal(await metric('onair_ingest_rejected_total', 'protocol="rtmp",reason="already_live"'), 1);
  assert.equal(await metric('onair_ingest_rejected_total', 'protocol="whip",reason="already_live"'), 1);
  const before = await metric('onair_ingest_bytes_total', 'protocol="whip"');
  await waitFor(
    'WHIP bytes still flowing',
    async () => ((await metric('onair_ingest_bytes_total', 'protocol="whip"'))! > before! ? true : undefined),
    10_000,
    250,
  );
});

test('PATCH is 405 (no trickle ICE); DELETE ends the session and the event goes offline', async () => {
  const patch = await fetch(sessionUrl, {
    method: 'PATCH',
    headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
    body: 'a=end-of-candidates\r\n',
  });
  assert.equal(patch.status, 405);
  assert.match(patch.headers.get('allow') ?? '', /DELETE/);
  const del = await fetch(sessionUrl, { method: 'DELETE' });
  assert.equal(del.status, 200);
  assert.equal(await metric('onair_ingest_active_publishers', 'protocol="whip"'), 0);
  assert.equal((await fetch(sessionUrl, { method: 'DELETE' })).status, 404, 'gone');
  await waitFor(
    'event offline after the reconnect window',
    async () => ((await status(event.id)) === 'offline' ? true : undefined),
    15_000,
    250,
  );
  await publisherPage?.close();
});

test('an address that keeps sending wrong stream keys is refused (429) for a while, even with the right key', async () => {
  const offer = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n';
  let limitedAfter = 0;
  for (let i = 1; i <= 11 && limitedAfter === 0; i++) {
    const r = await post(event.whipUrl, { key: `sk_guess_${i}`, type: 'application/sdp', body: offer });
    if (r.status === 429) limitedAfter = i;
    else assert.equal(r.status, 401);
  }
  assert.ok(limitedAfter > 1, 'refused after a handful of wrong keys (some were spent above)');
  const r = await post(event.whipUrl, { key: event.streamKey, type: 'application/sdp', body: offer });
  assert.equal(r.status, 429);
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'rate_limited');
  assert.equal(await status(event.id), 'offline');
});
