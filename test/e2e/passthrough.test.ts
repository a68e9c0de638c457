// End to end: the `standard` ladder preset, the source's H.264 copied as the "source" rendition plus encoded rungs
// below it. Sources the broadcast-quality issue named (1080p60, 50 fps, 29.97 fps with 44.1 kHz audio, a 720x1280
// portrait, a 10 s keyframe interval) are encoded once ahead of time and published over RTMP as they are (-c copy,
// so the publisher costs nothing); for each, the master playlist's RESOLUTION / FRAME-RATE / CODECS must match what
// ffprobe finds in the segments, frames must be evenly spaced and never repeated, source segments must start with a
// keyframe and last what EXTINF says. Chromium plays the source rendition and is switched to a lower rung and back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import HLS from 'hls-parser';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { fetchBytes, fetchText, textWhenReady } from '../support/fetch-ok.ts';
import { launchChromium } from '../support/chromium.ts';

const run = promisify(execFile);
type Created = { id: string; streamKey: string; rtmpUrl: string; hlsUrl: string; watchUrl: string };

let server: ServerUnderTest;
let tmp: string;
const publishers: ChildProcess[] = [];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'onair-e2e-passthrough-'));
  server = await startServer({
    ONAIR_X264_PRESET: 'ultrafast',
    ONAIR_DEFAULT_LADDER_PRESET: 'standard',
    ONAIR_LADDER: JSON.stringify([
      { name: '360p', height: 360, videoKbps: 500 },
      { name: '180p', height: 180, videoKbps: 150 },
    ]),
  });
});

after(async () => {
  for (const p of publishers) p.kill('SIGKILL');
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

interface Source {
  name: string;
  width: number;
  height: number;
  /** ffmpeg rate: `60`, `30000/1001`. */
  rate: string;
  fps: number;
  seconds: number;
  gopFrames: number;
  kbps: number;
  sampleRate?: number;
}

/** Encodes `s` once (x264 ultrafast with B-frames, AAC) into an MP4, as an OBS recording would be. */
async function encodeSource(s: Source): Promise<string> {
  const file = join(tmp, `${s.name}.mp4`);
  await run(
    'ffmpeg',
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i'],
      `testsrc2=size=${s.width}x${s.height}:rate=${s.rate}[out0];sine=frequency=440:sample_rate=${s.sampleRate ?? 48000}[out1]`,
      ...['-t', String(s.seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-x264-params', 'bframes=2:cabac=1'],
      ...['-pix_fmt', 'yuv420p', '-b:v', `${s.kbps}k`, '-maxrate', `${s.kbps}k`, '-bufsize', `${s.kbps * 2}k`],
      ...['-g', String(s.gopFrames), '-keyint_min', String(s.gopFrames), '-sc_threshold', '0'],
      ...['-c:a', 'aac', '-b:a', '96k', '-ac', '2', '-movflags', '+faststart', file],
    ],
    { timeout: 120_000 },
  );
  return file;
}

/** Publishes `file` in real time over RTMP, copied as it is. */
function publish(file: string, url: string): ChildProcess {
  const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-i', file, '-c', 'copy', '-f', 'flv', url], {
    stdio: 'ignore',
  });
  publishers.push(child);
  return child;
}

async function createEvent(title: string): Promise<Created> {
  return JSON.parse(await server.cli(['event', 'create', '--title', title, '--json'])) as Created;
}

interface Probe {
  width: number;
  height: number;
  profile: string;
  level: number;
  audio?: { codec: string; sampleRate: number };
  /** Seconds between consecutive frames, in presentation order. */
  gaps: number[];
  repeats: number;
  /** The segment's first video packet (decode order) is a keyframe. */
  startsWithKeyframe: boolean;
  /** Sum of the video packets' durations. */
  videoSec: number;
  frames: number;
}

/** ffprobe and framemd5 of one segment (with its init). */
async function probe(initUrl: string, segmentUrl: string, name: string): Promise<Probe> {
  const file = join(tmp, `${name}.mp4`);
  writeFileSync(file, Buffer.concat([await fetchBytes(initUrl), await fetchBytes(segmentUrl)]));
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,profile,level,width,height,sample_rate'],
    ...['-show_entries', 'packet=stream_index,pts_time,duration_time,flags', '-of', 'json', file],
  ]);
  const j = JSON.parse(stdout) as {
    streams: {
      codec_type: string;
      codec_name: string;
      profile?: string;
      level?: number;
      width?: number;
      height?: number;
      sample_rate?: string;
    }[];
    packets: { stream_index: number; pts_time: string; duration_time?: string; flags: string }[];
  };
  const vi = j.streams.findIndex((s) => s.codec_type === 'video');
  const v = j.streams[vi]!;
  const a = j.streams.find((s) => s.codec_type === 'audio');
  const packets = j.packets.filter((p) => p.stream_index === vi);
  const pts = packets.map((p) => Number(p.pts_time)).sort((x, y) => x - y);
  const md5 = await run('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { maxBuffer: 16 << 20 });
  const hashes = md5.stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').at(-1)!.trim());
  return {
    width: v.width!,
    height: v.height!,
    profile: v.profile!,
    level: v.level!,
    audio: a && { codec: a.codec_name, sampleRate: Number(a.sample_rate) },
    gaps: pts.slice(1).map((t, k) => t - pts[k]!),
    repeats: hashes.filter((h, k) => k > 0 && h === hashes[k - 1]).length,
    startsWithKeyframe: packets[0]?.flags.includes('K') ?? false,
    videoSec: packets.reduce((n, p) => n + (Number.isFinite(Number(p.duration_time)) ? Number(p.duration_time) : 0), 0),
    frames: packets.length,
  };
}

const PROFILE_IDC: Record<string, string> = { High: '64', Main: '4d', Baseline: '42', 'Constrained Baseline': '42' };

/** The variant's CODECS says what ffprobe finds: avc1.<profile><constraints><level>, and AAC-LC when there is audio. */
function assertCodecs(codecs: string, p: Probe, what: string): void {
  const [video, audio] = codecs.split(',');
  const m = /^avc1\.([0-9a-f]{2})[0-9a-f]{2}([0-9a-f]{2})$/.exec(video ?? '');
  assert.ok(m, `${what}: CODECS ${codecs}`);
  assert.equal(m[1], PROFILE_IDC[p.profile], `${what}: CODECS profile ${m[1]}, the stream is ${p.profile}`);
  assert.equal(parseInt(m[2]!, 16), p.level, `${what}: CODECS level ${m[2]}, the stream is level ${p.level}`);
  assert.equal(audio, p.audio ? 'mp4a.40.2' : undefined, `${what}: audio codec in CODECS`);
  if (p.audio) assert.equal(p.audio.codec, 'aac');
}

/** Frames every 1/fps (within the 1 ms of FLV timestamps for the copied source), never the same picture twice. */
function assertFrames(p: Probe, fps: number, toleranceSec: number, what: string): void {
  assert.ok(p.gaps.length >= Math.floor(fps * 1.5), `${what}: ${p.frames} frames in a segment`);
  for (const g of p.gaps)
    assert.ok(Math.abs(g - 1 / fps) <= toleranceSec, `${what}: frames every ${(1 / fps).toFixed(4)} s, found a gap of ${g.toFixed(4)} s`);
  assert.equal(p.repeats, 0, `${what}: no duplicated frames`);
}

/** Listed complete segments (the open one, if any, is parts without a URI). */
const completeSegments = (p: HLS.types.MediaPlaylist) => p.segments.filter((seg) => seg.uri && seg.duration > 0);

type Expected = { name: string; resolution: string; frameRate: string };

/** Publishes `s` and checks every variant against ffprobe of one of its complete segments; returns the source rendition's playlist. */
async function publishAndCheck(s: Source, expected: Expected[], t: { diagnostic(m: string): void }) {
  const file = await encodeSource(s);
  const event = await createEvent(s.name);
  const publisher = publish(file, `${event.rtmpUrl}/${event.streamKey}`);
  try {
    const master = HLS.parse(await waitFor('master playlist', () => textWhenReady(event.hlsUrl), 40_000, 250)) as HLS.types.MasterPlaylist;
    const said = master.variants.map((v) => ({
      name: v.uri.split('/')[0]!,
      resolution: `${v.resolution!.width}x${v.resolution!.height}`,
      frameRate: v.frameRate!.toFixed(3),
    }));
    assert.deepEqual(said, expected, 'master playlist: variants, RESOLUTION, FRAME-RATE (highest bandwidth first)');
    let sourcePlaylist: HLS.types.MediaPlaylist | undefined;
    for (const [i, v] of master.variants.entries()) {
      const u = new URL(v.uri, event.hlsUrl).href;
      // A complete segment that is not the run's first.
      const list = await waitFor(
        `2 complete segments in ${u}`,
        async () => {
          const p = HLS.parse(await fetchText(u)) as HLS.types.MediaPlaylist;
          return completeSegments(p).length >= 2 ? p : undefined;
        },
        60_000,
        250,
      );
      const seg = completeSegments(list).at(-1)!;
      const p = await probe(new URL(seg.map!.uri, u).href, new URL(seg.uri, u).href, `${s.name}-${i}`);
      const what = `${s.name} ${said[i]!.name}`;
      assert.equal(`${p.width}x${p.height}`, said[i]!.resolution, `${what}: RESOLUTION matches the stream`);
      assertCodecs(v.codecs!, p, what);
      assert.ok(p.startsWithKeyframe, `${what}: the segment starts with a keyframe`);
      const frame = 1 / v.frameRate!;
      assert.ok(
        Math.abs(p.videoSec - seg.duration) <= 0.002 + frame / 2,
        `${what}: EXTINF ${seg.duration} s, the segment's frames last ${p.videoSec.toFixed(4)} s`,
      );
      if (said[i]!.name === 'source') {
        assertFrames(p, v.frameRate!, 0.0015, what);
        sourcePlaylist = list;
        t.diagnostic(`${what}: ${p.profile} level ${p.level}, audio ${p.audio?.sampleRate} Hz, EXTINF ${seg.duration}`);
      } else {
        assertFrames(p, v.frameRate!, 0.001, what);
        assert.equal(p.audio?.sampleRate, 48000, `${what}: encoded audio at 48 kHz`);
      }
      if (i === 0) assert.equal(said[i]!.name, 'source', 'the source rendition has the highest bandwidth');
      if (said[i]!.name === 'source' && s.sampleRate)
        assert.equal(p.audio?.sampleRate, s.sampleRate, `${what}: the AAC is copied as it came`);
    }
    return { event, sourcePlaylist: sourcePlaylist!, publisher };
  } catch (err) {
    publisher.kill('SIGKILL');
    throw err;
  }
}

test('1080p60: the source rendition is 1920x1080 at 60 fps, the rungs below at 30 fps', async (t) => {
  const { publisher } = await publishAndCheck(
    { name: 'p1080', width: 1920, height: 1080, rate: '60', fps: 60, seconds: 10, gopFrames: 120, kbps: 1500 },
    [
      { name: 'source', resolution: '1920x1080', frameRate: '60.000' },
      { name: '360p', resolution: '640x360', frameRate: '30.000' },
      { name: '180p', resolution: '320x180', frameRate: '30.000' },
    ],
    t,
  );
  publisher.kill('SIGKILL');
});

test('50 fps: the source rendition keeps 50, the rung below runs at 25', async (t) => {
  const { publisher } = await publishAndCheck(
    { name: 'p50', width: 640, height: 360, rate: '50', fps: 50, seconds: 10, gopFrames: 100, kbps: 600 },
    [
      { name: 'source', resolution: '640x360', frameRate: '50.000' },
      { name: '180p', resolution: '320x180', frameRate: '25.000' },
    ],
    t,
  );
  publisher.kill('SIGKILL');
});

test('29.97 fps with 44.1 kHz AAC: 29.970 everywhere, the audio copied into the source rendition', async (t) => {
  const { publisher } = await publishAndCheck(
    {
      name: 'ntsc',
      width: 640,
      height: 360,
      rate: '30000/1001',
      fps: 30000 / 1001,
      seconds: 10,
      gopFrames: 60,
      kbps: 600,
      sampleRate: 44100,
    },
    [
      { name: 'source', resolution: '640x360', frameRate: '29.970' },
      { name: '180p', resolution: '320x180', frameRate: '29.970' },
    ],
    t,
  );
  publisher.kill('SIGKILL');
});

test('a 720x1280 portrait source: the source rendition at 720x1280, portrait rungs below it', async (t) => {
  const { publisher } = await publishAndCheck(
    { name: 'portrait', width: 720, height: 1280, rate: '30', fps: 30, seconds: 10, gopFrames: 60, kbps: 800 },
    [
      { name: 'source', resolution: '720x1280', frameRate: '30.000' },
      { name: '360p', resolution: '360x640', frameRate: '30.000' },
      { name: '180p', resolution: '180x320', frameRate: '30.000' },
    ],
    t,
  );
  publisher.kill('SIGKILL');
});

test('a 10 s keyframe interval: source segments of 10 s with an honest TARGETDURATION, INDEPENDENT parts only at keyframes', async (t) => {
  const { sourcePlaylist, publisher } = await publishAndCheck(
    { name: 'gop10', width: 640, height: 360, rate: '30', fps: 30, seconds: 26, gopFrames: 300, kbps: 500 },
    [
      { name: 'source', resolution: '640x360', frameRate: '30.000' },
      { name: '180p', resolution: '320x180', frameRate: '30.000' },
    ],
    t,
  );
  publisher.kill('SIGKILL');
  const complete = completeSegments(sourcePlaylist);
  assert.ok(sourcePlaylist.targetDuration >= 10, `TARGETDURATION ${sourcePlaylist.targetDuration}`);
  for (const seg of complete.slice(1)) assert.ok(Math.abs(seg.duration - 10) < 0.1, `EXTINF ${seg.duration}`);
  for (const seg of complete) {
    const parts = seg.parts ?? [];
    if (parts.length === 0) continue; // parts are listed for the last segments only
    assert.equal(parts[0]!.independent, true, `segment ${seg.mediaSequenceNumber}: the first part is INDEPENDENT`);
    assert.ok(
      parts.slice(1).every((p) => !p.independent),
      `segment ${seg.mediaSequenceNumber}: only the keyframe part is INDEPENDENT`,
    );
  }
  const numbers = sourcePlaylist.segments.map((s) => s.mediaSequenceNumber);
  assert.deepEqual(
    numbers,
    numbers.map((_, i) => numbers[0]! + i),
    'source segments are numbered one by one',
  );
});

test('Chromium plays the source rendition and switches to a lower rung and back without stalling', async (t) => {
  const file = await encodeSource({ name: 'switch', width: 640, height: 360, rate: '30', fps: 30, seconds: 60, gopFrames: 60, kbps: 600 });
  const event = await createEvent('switch');
  const publisher = publish(file, `${event.rtmpUrl}/${event.streamKey}`);
  const { browser, close } = await launchChromium();
  try {
    await waitFor('master playlist', () => textWhenReady(event.hlsUrl), 40_000, 250);
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(event.watchUrl);
    await page.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 30_000 });
    // Count stalls: the video element waiting for data after playback started.
    await page.evaluate(() => {
      const w = window as unknown as { stalls: number };
      w.stalls = 0;
      document.querySelector('video')!.addEventListener('waiting', () => w.stalls++);
    });
    const levels = await page.evaluate(() => window.__onair!.hls!.levels.map((l) => ({ width: l.width, uri: l.url[0] ?? '' })));
    const source = levels.findIndex((l) => l.uri.includes('/source/'));
    const lower = levels.findIndex((l) => l.uri.includes('/180p/'));
    assert.ok(source >= 0 && lower >= 0, `levels ${JSON.stringify(levels)}`);
    /** Switches to `level` as hls.js's ABR does (nextLevel: from the next fragment, the buffer kept) and waits for its picture and 3 more seconds. */
    const switchTo = async (level: number, width: number) => {
      const t0 = await page.evaluate((l) => {
        window.__onair!.hls!.nextLevel = l;
        return document.querySelector('video')!.currentTime;
      }, level);
      await page.waitForFunction(
        ([w, t]) => document.querySelector('video')!.videoWidth === w && document.querySelector('video')!.currentTime >= t + 3,
        [width, t0] as const,
        { timeout: 25_000 },
      );
    };
    const errorsAt = async (step: string) =>
      t.diagnostic(`${step}: hls.js errors ${JSON.stringify(await page.evaluate(() => window.__onair!.errors))}`);
    await errorsAt('playing');
    // A join may already have nudged over the hole before its start position (a non-fatal bufferSeekOverHole when
    // hls.js's gap controller runs before its first seek); the switches must add nothing.
    const atJoin = await page.evaluate(() => window.__onair!.errors.length);
    await switchTo(source, 640);
    await errorsAt('on the source rendition');
    await switchTo(lower, 320);
    await errorsAt('switched to 180p');
    await switchTo(source, 640);
    await errorsAt('switched back to the source');
    const after = await page.evaluate(() => ({
      stalls: (window as unknown as { stalls: number }).stalls,
      errors: window.__onair!.errors,
      state: window.__onair!.state,
    }));
    t.diagnostic(`switches source → 180p → source: ${after.stalls} waiting events`);
    assert.equal(after.state, 'playing');
    assert.deepEqual(after.errors.slice(atJoin), []);
    assert.ok(!after.errors.some((e) => e.startsWith('fatal')), `errors ${after.errors.join(', ')}`);
    assert.deepEqual(pageErrors, []);
    assert.equal(after.stalls, 0, 'no stall: the renditions share one timeline');
  } finally {
    await close();
    publisher.kill('SIGKILL');
  }
});
