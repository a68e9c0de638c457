// End to end: the part target and GOP are per event. Two events live at once on one all-in-one server, one created
// with `partTargetSec: 0.5, gopSec: 2`, one with the node's settings (0.2 s parts, 1 s GOP): each stream's playlists
// at the edge carry its own PART-TARGET and PART-HOLD-BACK, its parts last what it asked for, and its keyframes
// (independent parts) come every GOP of its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { adminApiToken, callApi, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { PART_HOLD_BACK_PARTS } from '../../config/timing.ts';

const EMAIL = 'timing@example.com';
const PASSWORD = 'correct horse battery';
/** Two small rungs: two ladders on a shared 2-core machine must keep up for parts to come on time. */
const LADDER = [
  { name: '240p', height: 240, fps: 30, videoKbps: 400 },
  { name: '180p', height: 180, fps: 30, videoKbps: 250 },
];

type Event = { id: string; hlsUrl: string; partTargetSec: number | null; gopSec: number | null };

let server: ServerUnderTest;
let token: string;
const publishers: ReturnType<typeof publishTestStream>[] = [];

function api(method: string, path: string, body?: unknown) {
  return callApi(server.base, method, path, body, { authorization: `Bearer ${token}` });
}

/** Creates an event and starts publishing to it. */
async function goLive(body: Record<string, unknown>): Promise<Event> {
  const made = await api('POST', '/events', body);
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const event = made.json.event as Event;
  const key = (await api('POST', `/events/${event.id}/stream-key/reveal`)).json.streamKey as string;
  publishers.push(publishTestStream({ url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${key}`, durationSec: 80, width: 426, height: 240 }));
  return event;
}

/** The media playlists of a live event at the edge, once each lists `parts` parts. */
async function playlists(e: Event, parts: number): Promise<{ url: string; body: string }[]> {
  const hls = new URL(e.hlsUrl, server.base).href;
  const master = await waitFor(
    `master playlist of ${e.id}`,
    async () => {
      const r = await fetch(hls);
      return r.ok ? r.text() : undefined;
    },
    40_000,
    250,
  );
  const uris = master
    .split('\n')
    .filter((l) => l.endsWith('.m3u8'))
    .map((u) => new URL(u, hls).href);
  assert.equal(uris.length, LADDER.length);
  return Promise.all(
    uris.map(async (url) => ({
      url,
      body: await waitFor(
        `${parts} parts in ${url}`,
        async () => {
          const r = await fetch(url);
          const body = r.ok ? await r.text() : '';
          return (body.match(/#EXT-X-PART:/g) ?? []).length >= parts ? body : undefined;
        },
        40_000,
        250,
      ),
    })),
  );
}

const tags = (body: string, name: string) => body.split('\n').filter((l) => l.startsWith(`#${name}:`));
/** PART-TARGET of a media playlist (written with three decimals: 0.500). */
const partTarget = (body: string) => Number(/#EXT-X-PART-INF:PART-TARGET=([\d.]+)/.exec(body)?.[1]);

/** Checks one stream's LL parameters, part durations and independent parts against its timing. */
async function checkTiming(name: string, pls: { url: string; body: string }[], partSec: number, gopSec: number): Promise<void> {
  const perGop = Math.round(gopSec / partSec);
  for (const { url, body } of pls) {
    const where = `${name} ${url.split('/').at(-2)}`;
    assert.equal(partTarget(body), partSec, `${where}: ${tags(body, 'EXT-X-PART-INF')[0]}`);
    const hold = Number(/PART-HOLD-BACK=([\d.]+)/.exec(tags(body, 'EXT-X-SERVER-CONTROL')[0] ?? '')?.[1]);
    const holdParts = PART_HOLD_BACK_PARTS.default;
    assert.ok(Math.abs(hold - holdParts * partSec) < 1e-9, `${where}: PART-HOLD-BACK ${hold}, ${holdParts} parts of ${partSec} s`);
    const parts = tags(body, 'EXT-X-PART').map((p) => ({
      line: p,
      index: Number(/part-\d+\.(\d+)\.m4s/.exec(p)?.[1]),
      duration: Number(/DURATION=([\d.]+)/.exec(p)?.[1]),
      independent: /INDEPENDENT=YES/.test(p),
    }));
    for (const p of parts) {
      // A keyframe every GOP starts an independent part; the parts between are cut every part target.
      assert.equal(p.independent, p.index % perGop === 0, `${where}: ${p.line}`);
      assert.ok(p.duration <= partSec + 1e-3, `${where}: ${p.line} longer than ${partSec} s`);
    }
    // Every part but a segment's last is within 85–100 % of PART-TARGET (RFC 8216bis §4.4.4.9); a segment has 2 s / partSec parts.
    const full = parts.filter((p) => (p.index + 1) % Math.round(2 / partSec) !== 0);
    assert.ok(full.length >= 2, `${where}: parts to measure`);
    for (const p of full) assert.ok(p.duration >= 0.85 * partSec - 1e-3, `${where}: ${p.line} shorter than 85 % of ${partSec} s`);
    assert.ok(
      parts.some((p) => p.index > 0 && p.index % perGop === 0) || perGop * partSec >= 2,
      `${where}: an independent part inside a segment every GOP`,
    );
    // A blocking reload for the hinted part is answered (its parts-per-segment count is the stream's own).
    const [, msn, part] = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.(\d+)\.m4s"/.exec(body)!;
    const r = await fetch(`${url}?_HLS_msn=${msn}&_HLS_part=${part}`);
    assert.equal(r.status, 200, `${where}: blocking reload for ${msn}.${part}`);
    assert.ok((await r.text()).includes(`part-${msn}.${part}.m4s`), `${where}: the blocking response lists the hinted part`);
  }
}

before(async () => {
  server = await startServer({ ONAIR_LADDER: JSON.stringify(LADDER), ONAIR_RECORDING: 'off' });
  token = await adminApiToken(server, EMAIL, PASSWORD, 'timing');
});

after(async () => {
  for (const p of publishers) p.child.kill('SIGKILL');
  await Promise.all(publishers.map((p) => p.done.catch(() => undefined)));
  await server?.stop();
});

test('onair event create takes --preset, --part-target and --gop, checked like the settings', async () => {
  const made = JSON.parse(
    await server.cli([
      'event',
      'create',
      '--title',
      'CLI timing',
      '--preset',
      'passthrough',
      '--part-target',
      '0.5',
      '--gop',
      '2',
      '--json',
    ]),
  ) as {
    ladderPreset: string | null;
    partTargetSec: number | null;
    gopSec: number | null;
  };
  assert.deepEqual([made.ladderPreset, made.partTargetSec, made.gopSec], ['passthrough', 0.5, 2]);
  await assert.rejects(
    server.cli(['event', 'create', '--title', 'x', '--preset', 'fancy']),
    /--preset must be one of standard, passthrough, audio, custom/,
  );
  await assert.rejects(
    server.cli(['event', 'create', '--title', 'x', '--part-target', '0.3']),
    /partTargetSec: 0\.3 s must split the segment target ONAIR_SEGMENT_TARGET_SEC \(2 s\) into 2 or more whole parts/,
  );
  await assert.rejects(server.cli(['event', 'create', '--title', 'x', '--gop', 'fast']), /--gop takes seconds, e\.g\. 0\.5/);
});

test('two live events, each with its own part target and GOP', { timeout: 90_000 }, async () => {
  const relaxed = await goLive({ title: 'Relaxed latency', partTargetSec: 0.5, gopSec: 2 });
  const plain = await goLive({ title: 'Node timing' });
  assert.deepEqual([relaxed.partTargetSec, relaxed.gopSec], [0.5, 2]);
  assert.deepEqual([plain.partTargetSec, plain.gopSec], [null, null]);
  // 8 parts: two segments of 0.5 s parts, under one of 0.2 s parts.
  const [a, b] = await Promise.all([playlists(relaxed, 8), playlists(plain, 12)]);
  await checkTiming('relaxed', a!, 0.5, 2);
  await checkTiming('plain', b!, 0.2, 1);
  // The timing is fixed while live: a change is stored for the next go-live, the live stream keeps its own.
  const changed = await api('PATCH', `/events/${relaxed.id}`, { partTargetSec: null, gopSec: null });
  assert.equal(changed.status, 200);
  const later = await playlists(relaxed, 8);
  assert.equal(partTarget(later[0]!.body), 0.5);
});
