// End to end: the ladder keeps the source's frame rate and orientation. A portrait 25 fps source and a 50 fps
// landscape one are published over RTMP; the master playlist's RESOLUTION/FRAME-RATE must match what ffprobe
// finds in the segments, with evenly spaced frames, no repeated picture, and keyframes aligned across rungs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import HLS from 'hls-parser';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { fetchBytes, fetchText } from '../support/fetch-ok.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

const run = promisify(execFile);
type Created = { id: string; streamKey: string; rtmpUrl: string; hlsUrl: string };

let server: ServerUnderTest;
let tmp: string;
const publishers: ReturnType<typeof publishTestStream>[] = [];

const text = fetchText;
const bytes = fetchBytes;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'onair-e2e-quality-'));
  // Two rungs under the small sources, frame rates left to the source (the default ladder's way).
  server = await startServer({
    ONAIR_X264_PRESET: 'ultrafast',
    ONAIR_LADDER: JSON.stringify([
      { name: '360p', height: 360, videoKbps: 600 },
      { name: '180p', height: 180, videoKbps: 200 },
    ]),
  });
});

after(async () => {
  for (const p of publishers) p.child.kill('SIGKILL');
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

interface Probe {
  width: number;
  height: number;
  /** Seconds between consecutive frames, in presentation order. */
  gaps: number[];
  /** Decoded frame hashes in order. */
  hashes: string[];
  firstPts: number;
}

/** Publishes a test pattern of `size` at `fps` and returns, per variant of the master playlist, the variant and a probe of one segment. */
async function publishAndProbe(name: string, width: number, height: number, fps: number) {
  const event = JSON.parse(await server.cli(['event', 'create', '--title', name, '--json'])) as Created;
  const publisher = publishTestStream({ url: `${event.rtmpUrl}/${event.streamKey}`, durationSec: 60, width, height, fps, videoKbps: 800 });
  publishers.push(publisher);
  try {
    const master = HLS.parse(
      await waitFor(
        'master playlist',
        async () => {
          const r = await fetch(event.hlsUrl);
          return r.ok ? r.text() : undefined;
        },
        30_000,
        250,
      ),
    ) as HLS.types.MasterPlaylist;
    const uris = master.variants.map((v) => new URL(v.uri, event.hlsUrl).href);
    // The same complete segment (not the run's first) from every rung.
    const lists = await Promise.all(
      uris.map((u) =>
        waitFor(
          `3 segments in ${u}`,
          async () => {
            const p = HLS.parse(await text(u)) as HLS.types.MediaPlaylist;
            return p.segments.length >= 3 ? p : undefined;
          },
          40_000,
          250,
        ),
      ),
    );
    const msn = Math.min(...lists.map((p) => p.mediaSequenceBase! + p.segments.length - 1)) - 1;
    const probes: Probe[] = [];
    for (const [i, u] of uris.entries()) {
      const p = HLS.parse(await text(u)) as HLS.types.MediaPlaylist;
      const seg = p.segments.find((s) => s.mediaSequenceNumber === msn);
      assert.ok(seg, `segment ${msn} in ${u}`);
      const file = join(tmp, `${name}-${i}.mp4`);
      writeFileSync(file, Buffer.concat([await bytes(new URL(seg.map!.uri, u).href), await bytes(new URL(seg.uri, u).href)]));
      const { stdout } = await run('ffprobe', [
        '-v',
        'error',
        '-select_streams',
        'v:0',
        '-show_entries',
        'stream=width,height:packet=pts_time',
        '-of',
        'json',
        file,
      ]);
      const j = JSON.parse(stdout) as { streams: { width: number; height: number }[]; packets: { pts_time: string }[] };
      const pts = j.packets.map((x) => Number(x.pts_time)).sort((a, b) => a - b);
      const md5 = await run('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { maxBuffer: 8 << 20 });
      probes.push({
        width: j.streams[0]!.width,
        height: j.streams[0]!.height,
        gaps: pts.slice(1).map((t, k) => t - pts[k]!),
        hashes: md5.stdout
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => l.split(',').at(-1)!.trim()),
        firstPts: pts[0]!,
      });
    }
    return { variants: master.variants, probes };
  } finally {
    publisher.child.kill('SIGTERM');
    await publisher.done;
  }
}

function assertTruthful(variants: HLS.types.Variant[], probes: Probe[], expected: { resolution: string; frameRate: string }[]) {
  const said = variants.map((v) => ({ resolution: `${v.resolution!.width}x${v.resolution!.height}`, frameRate: v.frameRate!.toFixed(3) }));
  assert.deepEqual(said, expected, 'master playlist RESOLUTION / FRAME-RATE');
  probes.forEach((p, i) => {
    const fps = variants[i]!.frameRate!;
    assert.equal(`${p.width}x${p.height}`, said[i]!.resolution, `rung ${i}: RESOLUTION matches the encoded size`);
    assert.ok(p.gaps.length >= Math.floor(fps * 1.5), `rung ${i}: ${p.gaps.length + 1} frames in a segment`);
    for (const g of p.gaps)
      assert.ok(Math.abs(g - 1 / fps) < 0.001, `rung ${i}: frames every ${(1 / fps).toFixed(4)} s, found a gap of ${g.toFixed(4)} s`);
    // testsrc2 changes every frame: a repeated picture is a duplicated frame.
    const repeats = p.hashes.filter((h, k) => k > 0 && h === p.hashes[k - 1]).length;
    assert.equal(repeats, 0, `rung ${i}: no duplicated frames`);
  });
  const starts = probes.map((p) => p.firstPts);
  assert.ok(Math.max(...starts) - Math.min(...starts) < 0.001, `keyframes aligned across rungs: segment starts ${starts.join(', ')}`);
}

test('a portrait 360x640 25 fps source: portrait rungs at 25 fps, as the master playlist says', async () => {
  const { variants, probes } = await publishAndProbe('portrait25', 360, 640, 25);
  assertTruthful(variants, probes, [
    { resolution: '360x640', frameRate: '25.000' },
    { resolution: '180x320', frameRate: '25.000' },
  ]);
});

test('a 640x360 50 fps source: 50 fps on the top rung, 25 below, as the master playlist says', async () => {
  const { variants, probes } = await publishAndProbe('landscape50', 640, 360, 50);
  assertTruthful(variants, probes, [
    { resolution: '640x360', frameRate: '50.000' },
    { resolution: '320x180', frameRate: '25.000' },
  ]);
});
