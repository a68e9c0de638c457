// End to end: a live event is recorded; while it is still live a clip of a range is made through the API. The clip
// is its own VOD at /clips/<clipId>/ (through the edge) made of the recording's whole segments covering the range,
// Chromium plays it on its watch page /clip/<clipId> with a duration matching the range within one segment, the
// console's "Clip last 30 s" makes another, bad requests get clear JSON errors, and deleting the recording deletes
// its clips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import HLS from 'hls-parser';
import { adminApiToken, callApi, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { launchChromium } from '../support/chromium.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

HLS.setOptions({ strictMode: true });

/** ONAIR_SEGMENT_TARGET_SEC's default: a clip may differ from its range by up to one segment. */
const SEGMENT_SEC = 2;
/** The range clipped while live, seconds into the broadcast (not on segment boundaries on purpose). */
const RANGE = { startSec: 3, endSec: 11 };
const PUBLISH_SEC = 26;
const EMAIL = 'clips@example.com';
const PASSWORD = 'correct horse battery';

let server: ServerUnderTest;
let token: string;
let event: { id: string };
let unrecorded: { id: string };
let streamKey: string;
let publisher: ReturnType<typeof publishTestStream> | undefined;
let clip: {
  id: string;
  startSec: number;
  endSec: number;
  durationSec: number;
  hlsUrl: string;
  watchUrl: string;
  recordingId: string;
  segments: number;
};

function api(method: string, path: string, body?: unknown, auth: Record<string, string> = { authorization: `Bearer ${token}` }) {
  return callApi(server.base, method, path, body, auth);
}

const code = (r: { json: Record<string, unknown> }): string | undefined => (r.json.error as { code?: string } | undefined)?.code;
const message = (r: { json: Record<string, unknown> }): string => (r.json.error as { message?: string } | undefined)?.message ?? '';

async function text(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

/** The EXTINF total of every variant of a multivariant playlist at `masterUrl` (throws unless each is a VOD). */
async function vodDurations(masterUrl: string): Promise<number[]> {
  const master = await text(masterUrl);
  assert.equal(master.status, 200, master.body);
  const m = HLS.parse(master.body) as HLS.types.MasterPlaylist;
  assert.ok(m.variants.length >= 2, 'the recorded ladder');
  const out: number[] = [];
  for (const v of m.variants) {
    const r = await text(new URL(v.uri, masterUrl).href);
    assert.equal(r.status, 200);
    const p = HLS.parse(r.body) as HLS.types.MediaPlaylist;
    assert.equal(p.playlistType, 'VOD');
    assert.equal(p.endlist, true);
    for (const s of p.segments) {
      const seg = await fetch(new URL(s.uri, new URL(v.uri, masterUrl)).href);
      assert.equal(seg.status, 200, s.uri);
      assert.equal(seg.headers.get('content-type'), 'video/mp4');
      await seg.arrayBuffer();
    }
    out.push(p.segments.reduce((n, s) => n + s.duration, 0));
  }
  return out;
}

before(async () => {
  server = await startServer({
    ONAIR_RECONNECT_WINDOW_SEC: '2',
    ONAIR_LADDER: '[{"name":"360p","height":360,"videoKbps":600},{"name":"240p","height":240,"videoKbps":300}]',
  });
  token = await adminApiToken(server, EMAIL, PASSWORD, 'clips');
  event = (await api('POST', '/events', { title: 'Clipped show' })).json.event as typeof event;
  unrecorded = (await api('POST', '/events', { title: 'Unrecorded show', recording: false })).json.event as typeof unrecorded;
  streamKey = (await api('POST', `/events/${event.id}/stream-key/reveal`)).json.streamKey as string;
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await server?.stop();
});

test('clip requests without anything to clip are refused with clear errors', async () => {
  const unknown = await api('POST', '/events/nosuchevent1/clips', { lastSec: 30 });
  assert.equal(unknown.status, 404);
  assert.equal(code(unknown), 'not_found');
  assert.match(message(unknown), /no such event/);
  const off = await api('POST', `/events/${unrecorded.id}/clips`, { lastSec: 30 });
  assert.equal(off.status, 409);
  assert.equal(code(off), 'recording_off');
  const never = await api('POST', `/events/${event.id}/clips`, { startSec: 0, endSec: 5 });
  assert.equal(never.status, 409);
  assert.equal(code(never), 'no_recording');
  for (const body of [
    {},
    { lastSec: 30, startSec: 0, endSec: 5 },
    { startSec: 5 },
    { startSec: -1, endSec: 5 },
    { lastSec: 0 },
    { startSec: '0', endSec: 5 },
  ]) {
    const r = await api('POST', `/events/${event.id}/clips`, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(code(r), 'invalid_request', JSON.stringify(body));
  }
  const inverted = await api('POST', `/events/${event.id}/clips`, { startSec: 8, endSec: 4 });
  assert.equal(inverted.status, 400);
  assert.equal(code(inverted), 'invalid_range');
  assert.equal((await api('POST', `/events/${event.id}/clips`, { lastSec: 30 }, {})).status, 401, 'admins only');
  assert.equal((await api('GET', '/clips/nosuchclip1')).status, 404);
  assert.equal((await text(`${server.base}/clips/nosuchclip1/master.m3u8`)).status, 404);
});

test('while live, a range of the recording becomes its own VOD, cut at segment boundaries', async (t) => {
  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${streamKey}`,
    durationSec: PUBLISH_SEC,
    width: 640,
    height: 360,
  });
  // Wait until the recording holds more than the range (its manifest is written as segments are stored).
  const rec = await waitFor(
    'recorded past the range',
    async () => {
      const r = (
        (await api('GET', `/recordings?eventId=${event.id}`)).json.recordings as { id: string; status: string }[] | undefined
      )?.[0];
      if (r?.status !== 'recording') return undefined;
      const tryIt = await api('POST', `/events/${event.id}/clips`, { startSec: 0, endSec: RANGE.endSec + SEGMENT_SEC });
      if (tryIt.status === 201) {
        assert.equal((await api('DELETE', `/clips/${(tryIt.json.clip as { id: string }).id}`)).status, 204);
        return r;
      }
      assert.ok(['range_outside_recording', 'recording_empty'].includes(code(tryIt)!), JSON.stringify(tryIt.json));
      return undefined;
    },
    40_000,
    1000,
  );
  const past = await api('POST', `/events/${event.id}/clips`, { startSec: 0, endSec: 100_000 });
  assert.equal(past.status, 422);
  assert.equal(code(past), 'range_outside_recording');
  assert.match(message(past), /holds \d+\.\d s/);

  const made = await api('POST', `/events/${event.id}/clips`, RANGE);
  assert.equal(made.status, 201, JSON.stringify(made.json));
  clip = made.json.clip as typeof clip;
  assert.equal(clip.recordingId, rec.id);
  assert.equal(clip.hlsUrl, `/clips/${clip.id}/master.m3u8`);
  assert.equal(clip.watchUrl, `/clip/${clip.id}`);
  // Whole segments covering the range: it starts at or before the range and ends at or after it, by less than a segment.
  assert.ok(clip.startSec <= RANGE.startSec && clip.startSec > RANGE.startSec - SEGMENT_SEC - 0.5, `starts at ${clip.startSec}`);
  assert.ok(clip.endSec >= RANGE.endSec && clip.endSec < RANGE.endSec + SEGMENT_SEC + 0.5, `ends at ${clip.endSec}`);
  const asked = RANGE.endSec - RANGE.startSec;
  assert.ok(Math.abs(clip.durationSec - asked) <= SEGMENT_SEC + 0.5, `duration ${clip.durationSec} for ${asked} s asked`);

  const durations = await vodDurations(new URL(clip.hlsUrl, server.base).href);
  t.diagnostic(
    `range ${RANGE.startSec}–${RANGE.endSec} s → clip ${clip.startSec}–${clip.endSec} s (${clip.segments} segments), playlists ${durations.join(', ')} s`,
  );
  for (const d of durations) assert.ok(Math.abs(d - clip.durationSec) < 0.01, `playlist ${d} s vs API ${clip.durationSec} s`);
  assert.deepEqual((await api('GET', `/clips/${clip.id}`, undefined, {})).json.clip, clip, 'readable without signing in, as its page is');
  const listed = (await api('GET', `/events/${event.id}/clips`)).json.clips as { id: string }[];
  assert.deepEqual(
    listed.map((c) => c.id),
    [clip.id],
  );
});

test('Chromium plays the clip on its watch page; its duration matches the range within one segment', async () => {
  const { browser, close } = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(new URL(clip.watchUrl, server.base).href);
    await page.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 30_000 });
    const duration = await page.evaluate(() => document.querySelector('video')!.duration);
    const asked = RANGE.endSec - RANGE.startSec;
    assert.ok(Math.abs(duration - asked) <= SEGMENT_SEC + 0.5, `played duration ${duration} s for the ${asked} s range`);
    assert.ok(Math.abs(duration - clip.durationSec) < 0.5, `played duration ${duration} s vs the clip's ${clip.durationSec} s`);
    // It plays through to its end.
    await page.evaluate(() => {
      const v = document.querySelector('video')!;
      v.currentTime = Math.max(0, v.duration - 2.5);
    });
    await page.waitForFunction(() => window.__onair?.state === 'ended', undefined, { timeout: 20_000 });
    assert.match((await page.textContent('#title')) ?? '', /Clipped show/);
    const errors = await page.evaluate(() => window.__onair!.errors.filter((e) => e.startsWith('fatal')));
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('the console makes a clip of the last 30 s and lists it with its link', async () => {
  const { browser, close } = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.base}/console`);
    await page.fill('input[name=email]', EMAIL);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('.recordings-card');
    await page.goto(`${server.base}/console/events/${event.id}`);
    await page.waitForSelector(`.clips-card li[data-id="${clip.id}"]`, { timeout: 15_000 });
    await page.click('[data-action=clip-last-30]');
    await page.waitForSelector('.clips-card li:nth-child(2)', { timeout: 15_000 });
    const links = await page.$$eval('.clips-card li a', (as) => as.map((a) => a.getAttribute('href')));
    assert.equal(links.length, 2);
    assert.ok(links.includes(clip.watchUrl));
    // The range form too; a range past the recording is refused with the server's reason.
    await page.fill('input[name=clip-start]', '0');
    await page.fill('input[name=clip-end]', '99999');
    await page.click('[data-action=clip-range]');
    await page.waitForSelector('text=/reaches past the recording/', { timeout: 10_000 });
  } finally {
    await close();
  }
  const clips = (await api('GET', `/events/${event.id}/clips`)).json.clips as { id: string; startSec: number; durationSec: number }[];
  assert.equal(clips.length, 2);
  const last = clips.find((c) => c.id !== clip.id)!;
  // The last 30 s: everything recorded when less was, else at least 30 s.
  assert.ok(last.durationSec > 0 && (last.startSec === 0 || last.durationSec >= 30), `last-30 clip ${JSON.stringify(last)}`);
  const durations = await vodDurations(new URL(`/clips/${last.id}/master.m3u8`, server.base).href);
  assert.ok(Math.abs(durations[0]! - last.durationSec) < 0.01);
  // Deleting a clip leaves its recording and the other clip alone.
  assert.equal((await api('DELETE', `/clips/${last.id}`)).status, 204);
  assert.equal((await api('DELETE', `/clips/${last.id}`)).status, 404);
  await waitFor(
    'deleted clip gone',
    async () => ((await text(`${server.base}/clips/${last.id}/master.m3u8`)).status === 404 ? true : undefined),
    10_000,
    500,
  );
  assert.equal((await text(new URL(clip.hlsUrl, server.base).href)).status, 200);
});

test('a clip names its recording’s segments: deleting the recording deletes its clips', async () => {
  assert.equal(await publisher!.done, 0);
  publisher = undefined;
  const rec = await waitFor(
    'recording ready',
    async () => {
      const r = ((await api('GET', `/recordings?eventId=${event.id}`)).json.recordings as { id: string; status: string }[])[0];
      return r?.status === 'ready' ? r : undefined;
    },
    30_000,
    500,
  );
  // Still plays once the event is offline (its recording replays at /live/, the clip at /clips/).
  await vodDurations(new URL(clip.hlsUrl, server.base).href);
  assert.equal((await api('DELETE', `/recordings/${rec.id}`)).status, 204);
  assert.deepEqual((await api('GET', `/events/${event.id}/clips`)).json.clips, []);
  assert.equal((await api('GET', `/clips/${clip.id}`)).status, 404);
  await waitFor(
    'clip gone with its recording',
    async () => ((await text(new URL(clip.hlsUrl, server.base).href)).status === 404 ? true : undefined),
    10_000,
    500,
  );
});
