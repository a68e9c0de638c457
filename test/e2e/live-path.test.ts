// End to end: CLI-created event, RTMP publish with ffmpeg, ladder through origin + edge, playback in Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import HLS from 'hls-parser';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { fetchBytes, fetchText } from '../support/fetch-ok.ts';
import { launchChromium, watchPlaying } from '../support/chromium.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { childrenNamed } from '../../scripts/bench/proc.ts';

const run = promisify(execFile);
type Created = { id: string; slug: string; streamKey: string; rtmpUrl: string; whipUrl: string; watchUrl: string; hlsUrl: string };

let server: ServerUnderTest;
let event: Created;
let publisher: ReturnType<typeof publishTestStream> | undefined;
let tmp: string;

const text = fetchText;
const bytes = fetchBytes;
HLS.setOptions({ strictMode: true });
/** Spec violations hls-parser found in any playlist fetched here (part durations, tags); the last test asserts there were none. */
const violations = new Set<string>();
function media(text: string): HLS.types.MediaPlaylist {
  try {
    return HLS.parse(text) as HLS.types.MediaPlaylist;
  } catch (err) {
    violations.add(`${(err as Error).message}\n${text}`);
    throw err;
  }
}
function lastMsn(p: HLS.types.MediaPlaylist): number {
  return p.mediaSequenceBase! + p.segments.length - 1;
}
function publish(key: string, durationSec = 120) {
  return publishTestStream({ url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${key}`, durationSec, width: 1280, height: 720 });
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'onair-e2e-media-'));
  server = await startServer();
  event = JSON.parse(await server.cli(['event', 'create', '--title', 'E2E live path', '--json'])) as Created;
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('event create prints every URL and a stream key that never appears in them', () => {
  for (const k of ['id', 'slug', 'streamKey', 'rtmpUrl', 'whipUrl', 'watchUrl', 'hlsUrl'] as const) assert.ok(event[k], k);
  assert.equal(event.hlsUrl, `${server.base}/live/${event.id}/master.m3u8`);
  assert.equal(event.watchUrl, `${server.base}/watch/${event.slug}`);
  assert.equal(event.rtmpUrl, `rtmp://127.0.0.1:${server.rtmpPort}/live`);
  for (const u of [event.hlsUrl, event.watchUrl, event.whipUrl]) assert.ok(!u.includes(event.streamKey));
});

test('a wrong stream key is refused quickly and never logged', async () => {
  const bad = 'sk_' + 'A'.repeat(24);
  const started = Date.now();
  const code = await publish(bad, 10).done;
  assert.notEqual(code, 0);
  assert.ok(Date.now() - started < 5000, 'rejected within seconds');
  assert.ok(!server.log().includes(bad), 'the key is not in the log');
  assert.equal((await fetch(event.hlsUrl)).status, 404, 'nothing went live');
});

test('publish → 3-rendition ladder with aligned, decodable segments through the edge', async () => {
  publisher = publish(event.streamKey);
  const masterText = await waitFor(
    'master playlist',
    async () => {
      const r = await fetch(event.hlsUrl);
      return r.ok ? r.text() : undefined;
    },
    30_000,
    250,
  );
  const master = HLS.parse(masterText) as HLS.types.MasterPlaylist;
  assert.equal(master.variants.length, 3);
  const heights = master.variants.map((v) => v.resolution?.height).sort((a, b) => b! - a!);
  assert.deepEqual(heights, [720, 480, 360]);
  for (const v of master.variants) {
    assert.match(v.codecs ?? '', /^avc1\.64[0-9a-f]{4},mp4a\.40\.2$/);
    assert.ok(v.bandwidth > 0 && (v.averageBandwidth ?? 0) > 0, 'bandwidths');
    assert.equal(Math.round(v.frameRate ?? 0), 30);
    assert.equal(v.resolution!.width % 2, 0);
  }
  const uris = master.variants.map((v) => new URL(v.uri, event.hlsUrl).href);

  // Wait for four complete segments everywhere, then check they advance.
  const first = await Promise.all(
    uris.map((u) =>
      waitFor(
        `4 segments in ${u}`,
        async () => {
          const p = media(await text(u));
          return p.segments.length >= 4 ? p : undefined;
        },
        40_000,
        500,
      ),
    ),
  );
  for (const p of first) {
    assert.ok(p.targetDuration >= 2 && p.targetDuration <= 3);
    assert.ok(p.independentSegments || /EXT-X-INDEPENDENT-SEGMENTS/.test(HLS.stringify(p)));
  }
  const firstLast = first.map(lastMsn);
  await waitFor(
    'playlists to advance',
    async () => {
      const now = await Promise.all(uris.map(async (u) => media(await text(u))));
      return now.every((p, i) => lastMsn(p) > firstLast[i]!) ? true : undefined;
    },
    10_000,
    500,
  );

  // The same segment number in every rendition: same PDT, keyframe first, target ±0.5 s, decodable.
  const msn = Math.min(...firstLast) - 1;
  const pdts: number[] = [];
  for (const [i, u] of uris.entries()) {
    const p = media(await text(u));
    const seg = p.segments.find((s) => s.mediaSequenceNumber === msn);
    assert.ok(seg, `segment ${msn} in rendition ${i}`);
    assert.ok(seg.programDateTime, 'PDT');
    pdts.push(seg.programDateTime.getTime());
    assert.ok(Math.abs(seg.duration - 2) <= 0.5, `duration ${seg.duration}`);
    const file = join(tmp, `r${i}.mp4`);
    writeFileSync(file, Buffer.concat([await bytes(new URL(seg.map!.uri, u).href), await bytes(new URL(seg.uri, u).href)]));
    const { stdout } = await run('ffprobe', [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'frame=key_frame,pict_type,best_effort_timestamp_time',
      '-of',
      'json',
      file,
    ]);
    const probe = JSON.parse(stdout) as { frames: { key_frame: number; pict_type: string; best_effort_timestamp_time: string }[] };
    assert.ok(probe.frames.length >= 45, `decoded ${probe.frames.length} frames`);
    assert.equal(probe.frames[0]!.key_frame, 1, 'segment starts with a keyframe');
    // A keyframe every ONAIR_GOP_SEC (default 1 s), none in between (no scene-cut keyframes).
    assert.equal(probe.frames.filter((f) => f.key_frame === 1).length, Math.round(seg.duration / 1), 'one keyframe per 1 s GOP');
    const times = probe.frames.map((f) => Number(f.best_effort_timestamp_time));
    const probed = times[times.length - 1]! - times[0]! + 1 / 30;
    assert.ok(Math.abs(probed - 2) <= 0.5, `probed duration ${probed}`);
  }
  assert.ok(Math.max(...pdts) - Math.min(...pdts) <= 1, `PDTs agree: ${pdts.join(', ')}`);

  const status = (await (await fetch(`${server.base}/api/v1/events/${event.id}`)).json()) as { event: { status: string } };
  assert.equal(status.event.status, 'live');
});

test('a second publisher for a live event is refused and the first keeps going', async () => {
  const playlistUrl = new URL('360p/index.m3u8', event.hlsUrl).href;
  const before = lastMsn(media(await text(playlistUrl)));
  const code = await publish(event.streamKey, 10).done;
  assert.notEqual(code, 0);
  assert.equal(publisher!.child.exitCode, null, 'first publisher still running');
  await waitFor(
    'first stream to keep advancing',
    async () => (lastMsn(media(await text(playlistUrl))) > before ? true : undefined),
    15_000,
    500,
  );
});

test('Chromium plays through the edge, and keeps playing across a publisher reconnect', async () => {
  const { browser, close } = await launchChromium();
  try {
    const { page, pageErrors } = await watchPlaying(browser, event.watchUrl, 5);
    const width = await page.evaluate(() => document.querySelector('video')!.videoWidth);
    assert.ok([1280, 854, 852, 640].includes(width), `videoWidth ${width}`);

    // The publisher drops and returns within the reconnect window: same event, a discontinuity, no reload.
    publisher!.child.kill('SIGKILL');
    await publisher!.done;
    publisher = publish(event.streamKey);
    const playlistUrl = new URL('360p/index.m3u8', event.hlsUrl).href;
    await waitFor(
      'discontinuity after reconnect',
      async () => (/#EXT-X-DISCONTINUITY\n/.test(await text(playlistUrl)) ? true : undefined),
      30_000,
      500,
    );
    const t1 = await page.evaluate(() => document.querySelector('video')!.currentTime);
    await page.waitForFunction((t) => document.querySelector('video')!.currentTime >= t + 4, t1, { timeout: 30_000 });
    const hook = await page.evaluate(() => ({ state: window.__onair!.state, errors: window.__onair!.errors }));
    assert.equal(hook.state, 'playing', `errors: ${hook.errors.join('; ')}`);
    assert.deepEqual(pageErrors, []);
  } finally {
    await close();
  }
});

test('a crashed ffmpeg is restarted with a new init, and stopping the server leaves no ffmpeg behind', async () => {
  const serverPid = server.child.pid!;
  const [victim] = childrenNamed(serverPid, 'ffmpeg');
  assert.ok(victim, 'the origin runs an ffmpeg child');
  const playlistUrl = new URL('480p/index.m3u8', event.hlsUrl).href;
  const beforeText = await text(playlistUrl);
  const before = lastMsn(media(beforeText));
  const maps = (t: string) => [...t.matchAll(/#EXT-X-MAP:URI="([^"]+)"/g)].map((m) => m[1]!);
  process.kill(victim, 'SIGKILL');
  const restarted = await waitFor('a new ffmpeg', () => childrenNamed(serverPid, 'ffmpeg').find((p) => p !== victim), 15_000, 200);
  const metrics = await text(`${server.base}/metrics`);
  assert.match(metrics, /^onair_origin_ffmpeg_restarts_total 1$/m);
  await waitFor(
    'segments after the restart',
    async () => (lastMsn(media(await text(playlistUrl))) >= before + 2 ? true : undefined),
    20_000,
    500,
  );
  const after = await text(playlistUrl);
  // Timestamps continue on the event's timeline, so the new run needs no DISCONTINUITY (which would make this
  // replica's discontinuity sequence differ from the others'): a new init, and msns lost meanwhile listed as GAPs.
  const fresh = maps(after).filter((u) => !maps(beforeText).includes(u));
  assert.equal(fresh.length, 1, `a new EXT-X-MAP after the restart:\n${after}`);
  media(after); // the parts around the restart are valid too

  publisher!.child.kill('SIGKILL');
  await server.stop();
  assert.ok(!existsSync(`/proc/${restarted}`), 'ffmpeg ended with the server');
});

test('every media playlist fetched above passed hls-parser’s strict checks (RFC 8216bis)', () => {
  assert.deepEqual([...violations], []);
});
