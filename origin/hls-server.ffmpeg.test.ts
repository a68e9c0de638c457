// LL-HLS conformance of the origin's HLS handler (RFC 8216bis §4.4.3, §6.2.5), against a real origin fed
// by a real ffmpeg publish: tags, blocking reload (status codes and timing bounds), preload-hinted parts,
// delta updates, rendition reports, part retention, plain-HLS events, and the 503 after 3 target durations.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import type { LatencyMode } from '../lib/store/schema.ts';
import { testStreamArgs } from '../scripts/publish-test-stream.ts';
import { createOrigin, type Origin } from './origin.ts';
import { parseInit, parseMoof } from './mp4.ts';
import type { RenditionPackager } from './packager.ts';
import { advancePartLimit, partsAhead } from './hls-server.ts';
import { waitFor } from '../test/support/wait-for.ts';

const LL = 'llEvent001';
const PLAIN = 'plainEvent01';
const RENDITIONS = ['360p', '240p', '180p'];
const config = configSchema.parse({
  x264Preset: 'ultrafast',
  // The encoded ladder below, without the source rendition the default preset (standard) adds.
  defaultLadderPreset: 'custom',
  ladder: [
    { name: '360p', height: 360, fps: 30, videoKbps: 600 },
    { name: '240p', height: 240, fps: 30, videoKbps: 350 },
    { name: '180p', height: 180, fps: 30, videoKbps: 200 },
  ],
});
const TD = config.segmentTargetSec;

/** One media playlist, read tag by tag. */
interface Playlist {
  text: string;
  version: number;
  targetDuration: number;
  partTarget?: number;
  serverControl: Record<string, string>;
  mediaSequence: number;
  skipped: number;
  parts: { msn: number; index: number; duration: number; independent: boolean; uri: string }[];
  segments: { msn: number; duration: number; uri: string; pdt?: number }[];
  hints: { msn: number; index: number; uri: string }[];
  reports: { uri: string; lastMsn: number; lastPart: number }[];
}

function attrs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) out[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  return out;
}

function parsePlaylist(text: string): Playlist {
  assert.ok(text.startsWith('#EXTM3U\n'), 'starts with #EXTM3U');
  const pl: Playlist = {
    text,
    version: 0,
    targetDuration: 0,
    serverControl: {},
    mediaSequence: -1,
    skipped: 0,
    parts: [],
    segments: [],
    hints: [],
    reports: [],
  };
  let pdt: number | undefined;
  let extinf: number | undefined;
  for (const line of text.split('\n')) {
    const [tag, rest = ''] = line.split(/:(.*)/s) as [string, string?];
    if (tag === '#EXT-X-VERSION') pl.version = Number(rest);
    else if (tag === '#EXT-X-TARGETDURATION') pl.targetDuration = Number(rest);
    else if (tag === '#EXT-X-PART-INF') pl.partTarget = Number(attrs(rest)['PART-TARGET']);
    else if (tag === '#EXT-X-SERVER-CONTROL') pl.serverControl = attrs(rest);
    else if (tag === '#EXT-X-MEDIA-SEQUENCE') pl.mediaSequence = Number(rest);
    else if (tag === '#EXT-X-SKIP') pl.skipped = Number(attrs(rest)['SKIPPED-SEGMENTS']);
    else if (tag === '#EXT-X-PROGRAM-DATE-TIME') pdt = Date.parse(rest);
    else if (tag === '#EXTINF') extinf = Number(rest.split(',')[0]);
    else if (tag === '#EXT-X-PART') {
      const a = attrs(rest);
      const [, msn, index] = /part-(\d+)\.(\d+)\.m4s/.exec(a.URI!)!;
      pl.parts.push({
        msn: Number(msn),
        index: Number(index),
        duration: Number(a.DURATION),
        independent: a.INDEPENDENT === 'YES',
        uri: a.URI!,
      });
    } else if (tag === '#EXT-X-PRELOAD-HINT') {
      const a = attrs(rest);
      assert.equal(a.TYPE, 'PART');
      const [, msn, index] = /part-(\d+)\.(\d+)\.m4s/.exec(a.URI!)!;
      pl.hints.push({ msn: Number(msn), index: Number(index), uri: a.URI! });
    } else if (tag === '#EXT-X-RENDITION-REPORT') {
      const a = attrs(rest);
      pl.reports.push({ uri: a.URI!, lastMsn: Number(a['LAST-MSN']), lastPart: Number(a['LAST-PART']) });
    } else if (line.startsWith('seg-')) {
      pl.segments.push({ msn: Number(/seg-(\d+)\.m4s/.exec(line)![1]), duration: extinf!, uri: line, pdt });
    }
  }
  return pl;
}

let origin: Origin;
let llPublisher: ChildProcess | undefined;
let plainPublisher: ChildProcess | undefined;
const lookups: string[] = [];
/** When each part of each rendition appeared (performance.now()), keyed "rendition msn.index". */
const partSeen = new Map<string, number>();

function publish(eventId: string, width: number, height: number): ChildProcess {
  const feed = origin.feeds.open(eventId, { protocol: 'rtmp', sessionId: eventId, remoteAddress: '127.0.0.1' });
  const child = spawn('ffmpeg', testStreamArgs({ url: 'pipe:1', width, height, videoKbps: 800 }), { stdio: ['ignore', 'pipe', 'ignore'] });
  child.stdout!.on('data', (c: Buffer) => feed.write(c));
  child.on('close', () => feed.end());
  return child;
}

async function stopPublisher(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((r) => child.once('close', r));
  child.kill('SIGKILL');
  await closed;
}

const url = (event: string, path: string) => `${origin.url}/live/${event}/${path}`;

/** GET with the time the response head arrived (performance.now()). */
async function get(
  u: string,
  signal?: AbortSignal,
): Promise<{ status: number; body: Buffer; at: number; ms: number; json?: { error: { code: string } } }> {
  const t0 = performance.now();
  const r = await fetch(u, { signal });
  const at = performance.now();
  const body = Buffer.from(await r.arrayBuffer());
  const json = r.headers.get('content-type')?.startsWith('application/json')
    ? (JSON.parse(body.toString()) as { error: { code: string } })
    : undefined;
  return { status: r.status, body, at, ms: at - t0, json };
}

async function playlist(rendition: string, query = '', event = LL): Promise<Playlist & { at: number; ms: number }> {
  const r = await get(url(event, `${rendition}/index.m3u8${query}`));
  assert.equal(r.status, 200, `${rendition}/index.m3u8${query}: ${r.body.toString()}`);
  return { ...parsePlaylist(r.body.toString()), at: r.at, ms: r.ms };
}

function packager(rendition: string): RenditionPackager {
  return origin.stream(LL)!.packagers.get(rendition)!;
}

/** The last part listed in a playlist. */
function lastPart(pl: Playlist): { msn: number; index: number } {
  const p = pl.parts.at(-1)!;
  return { msn: p.msn, index: p.index };
}

before(async () => {
  origin = createOrigin({
    config,
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    bindHost: '127.0.0.1',
    parent: {
      onStatus: () => {},
      latencyMode: async (id): Promise<LatencyMode> => {
        lookups.push(id);
        return id === PLAIN ? 'standard' : 'low';
      },
    },
  });
  await origin.start();
  llPublisher = publish(LL, 640, 360);
  await waitFor('the LL stream to have packagers', () => (origin.stream(LL)?.packagers.size === 3 ? true : undefined), 30_000);
  for (const r of RENDITIONS) {
    packager(r).on('part', (part) => partSeen.set(`${r} ${part.msn}.${part.index}`, performance.now()));
  }
  // Two complete segments everywhere.
  await waitFor(
    'two complete segments per rendition',
    () => (RENDITIONS.every((r) => packager(r).playlistSegments.filter((s) => s.complete).length >= 2) ? true : undefined),
    30_000,
  );
});

after(async () => {
  await stopPublisher(llPublisher);
  await stopPublisher(plainPublisher);
  await origin?.stop();
});

describe('LL-HLS origin', () => {
  let earlyPart: { uri: string; bytes: Buffer } | undefined;

  it('computes the advance part limit and distances as §6.2.5.2 says', () => {
    assert.equal(advancePartLimit(0.5), 6);
    assert.equal(advancePartLimit(0.333), 9);
    assert.equal(advancePartLimit(1), 3);
    assert.equal(advancePartLimit(2), 3);
    assert.equal(partsAhead(10, 3, 10, 1, 4), 2);
    assert.equal(partsAhead(11, 0, 10, 1, 4), 3); // parts 10.2, 10.3, 11.0
    assert.equal(partsAhead(12, 1, 10, 3, 4), 6);
    assert.equal(partsAhead(9, 9, 10, 0, 4), -1);
  });

  it('looked the event up for its latency mode when the stream started', () => {
    assert.ok(lookups.includes(LL));
  });

  it('lists parts, one preload hint, server control and rendition reports, consistently across renditions', async () => {
    const pls = await Promise.all(RENDITIONS.map((r) => playlist(r)));
    for (const [i, pl] of pls.entries()) {
      const name = RENDITIONS[i]!;
      assert.ok(pl.version >= 9, 'version');
      assert.ok(pl.partTarget === config.partTargetSec, `PART-TARGET ${pl.partTarget}: no part longer than the target`);
      const sc = pl.serverControl;
      assert.equal(sc['CAN-BLOCK-RELOAD'], 'YES');
      const holdBack = Number(sc['PART-HOLD-BACK']);
      assert.ok(Math.abs(holdBack - config.partHoldBackParts * pl.partTarget) < 1e-9, `PART-HOLD-BACK ${holdBack}: the setting's parts`);
      assert.ok(holdBack >= 2 * pl.partTarget - 1e-9, 'PART-HOLD-BACK ≥ 2 × PART-TARGET (RFC 8216bis MUST)');
      assert.ok(Number(sc['CAN-SKIP-UNTIL']) >= 6 * pl.targetDuration, 'CAN-SKIP-UNTIL ≥ 6 × TARGETDURATION');
      assert.ok(pl.parts.length >= 2, 'parts listed');
      for (const p of pl.parts) assert.ok(p.duration <= pl.partTarget + 1e-9, `part ${p.uri} within PART-TARGET`);
      // INDEPENDENT=YES exactly on keyframe parts: one every GOP (the first of each segment among them).
      const perGop = Math.round(config.gopSec / config.partTargetSec);
      for (const p of pl.parts) assert.equal(p.independent, p.index % perGop === 0, `INDEPENDENT on ${p.uri}`);
      assert.equal(pl.hints.length, 1, 'exactly one EXT-X-PRELOAD-HINT');
      const last = lastPart(pl);
      const hint = pl.hints[0]!;
      assert.ok(
        (hint.msn === last.msn && hint.index === last.index + 1) || (hint.msn === last.msn + 1 && hint.index === 0),
        `hint ${hint.uri} follows the last part ${last.msn}.${last.index}`,
      );
      // Reports for the other renditions, never itself, close to where those renditions are.
      assert.deepEqual(
        pl.reports.map((r) => r.uri).sort(),
        RENDITIONS.filter((r) => r !== name)
          .map((r) => `../${r}/index.m3u8`)
          .sort(),
      );
      for (const rep of pl.reports) {
        const other = pls[RENDITIONS.indexOf(rep.uri.split('/')[1]!)]!;
        const o = lastPart(other);
        const distance = Math.abs(partsAhead(rep.lastMsn, rep.lastPart, o.msn, o.index, 4));
        assert.ok(distance <= 2 || rep.lastMsn === o.msn, `report ${rep.uri} ${rep.lastMsn}.${rep.lastPart} vs ${o.msn}.${o.index}`);
      }
    }
    const first = pls[0]!;
    for (const pl of pls) {
      assert.equal(pl.targetDuration, first.targetDuration);
      assert.equal(pl.partTarget, first.partTarget);
      assert.deepEqual(pl.serverControl, first.serverControl);
      assert.ok(Math.abs(pl.mediaSequence - first.mediaSequence) <= 1, 'media sequences aligned');
    }
    // Aligned segments: the same msn has the same PROGRAM-DATE-TIME in every rendition.
    const msn = first.segments.at(-1)!.msn;
    const pdts = pls.map((pl) => pl.segments.find((s) => s.msn === msn)?.pdt);
    assert.ok(
      pdts.every((t) => t !== undefined && Math.abs(t - pdts[0]!) <= 1),
      `PDTs of ${msn}: ${pdts.join(', ')}`,
    );

    // The bytes agree with the tags: independent parts start with a video sync sample, the others do not.
    const init = parseInit((await get(url(LL, `360p/init-${packager('360p').latestRun}.mp4`))).body);
    const video = init.tracks.find((t) => t.kind === 'video')!;
    for (const p of first.parts) {
      const bytes = (await get(url(LL, `360p/${p.uri}`))).body;
      const traf = parseMoof(bytes.subarray(0, bytes.readUInt32BE(0)), init).trafs.find((t) => t.trackId === video.id)!;
      assert.equal(traf.firstSampleSync, p.independent, `${p.uri} sync sample`);
      earlyPart ??= { uri: p.uri, bytes };
    }
  });

  it('answers a first load once PART-HOLD-BACK from its end lands on an independent part; at once with join=now', async () => {
    /** Seconds from the independent part a player aiming PART-HOLD-BACK from the end decodes from, to its aim. */
    const lag = (pl: Playlist) => {
      const hold = Number(pl.serverControl['PART-HOLD-BACK']);
      let behind = 0;
      for (const p of [...pl.parts].reverse()) {
        behind += p.duration;
        if (behind >= hold - 1e-6 && p.independent) return behind - hold;
      }
      return Infinity;
    };
    const tolerance = config.partTargetSec / 2 + 1e-6;
    for (let i = 0; i < 3; i++) {
      const pl = await playlist('360p');
      assert.ok(lag(pl) <= tolerance, `first load ${i}: aim ${lag(pl).toFixed(3)} s past its independent part`);
      await sleep(130);
    }
    // Asked to skip the wait, six loads spread over more than a GOP land anywhere within it.
    const lags: number[] = [];
    for (let i = 0; i < 6; i++) {
      lags.push(lag(await playlist('360p', '?join=now')));
      await sleep(90);
    }
    assert.ok(
      lags.some((l) => l > tolerance),
      `join=now is not held: aims ${lags.map((l) => l.toFixed(2)).join(', ')} s past their independent parts`,
    );
  });

  it('holds a blocking reload until the requested part exists, then answers at once', async () => {
    let pl = await playlist('360p');
    for (let i = 0; i < 4; i++) {
      const want = pl.hints[0]!;
      const r = await playlist('360p', `?_HLS_msn=${want.msn}&_HLS_part=${want.index}`);
      const seen = partSeen.get(`360p ${want.msn}.${want.index}`);
      assert.ok(
        r.parts.some((p) => p.msn === want.msn && p.index === want.index),
        `response lists ${want.uri}`,
      );
      assert.ok(seen !== undefined && r.at >= seen, 'not answered before the part existed');
      assert.ok(r.at - seen < 500, `answered ${Math.round(r.at - seen)} ms after the part appeared`);
      pl = r;
    }
  });

  it('reads a part index past the segment end as part 0 of the next segment', async () => {
    const pl = await playlist('360p');
    const last = lastPart(pl);
    // One past the last part of a full segment (segment target / part target parts): answered when (msn+1).0 appears.
    const perSegment = Math.round(TD / config.partTargetSec);
    const r = await playlist('360p', `?_HLS_msn=${last.msn}&_HLS_part=${perSegment}`);
    const seen = partSeen.get(`360p ${last.msn + 1}.0`);
    assert.ok(seen !== undefined, `${last.msn + 1}.0 appeared`);
    assert.ok(r.at >= seen && r.at - seen < 500, `answered ${Math.round(r.at - seen)} ms after ${last.msn + 1}.0 appeared`);
    assert.ok(r.parts.some((p) => p.msn === last.msn + 1 && p.index === 0));
    // For a complete segment it is answered at once, with the full playlist.
    const done = await playlist('360p', `?_HLS_msn=${last.msn}&_HLS_part=${perSegment + 5}`);
    assert.ok(done.ms < 300, `immediate (${Math.round(done.ms)} ms)`);
    assert.equal(done.skipped, 0, 'a full playlist');
    assert.ok(done.segments.length >= 2);
  });

  it('holds _HLS_msn without a part until that segment is complete; an old msn is answered at once', async () => {
    const pl = await playlist('360p');
    const open = lastPart(pl).msn;
    const r = await playlist('360p', `?_HLS_msn=${open}`);
    assert.ok(
      r.segments.some((s) => s.msn === open),
      `segment ${open} complete in the response`,
    );
    const old = await playlist('360p', `?_HLS_msn=${pl.mediaSequence}`);
    assert.ok(old.ms < 300, 'an msn already in the playlist is not held');
  });

  it('answers 400 for msn > last+2, _HLS_part without _HLS_msn, and beyond the advance part limit', async () => {
    const pl = await playlist('360p');
    const last = lastPart(pl);
    const tooFar = await get(url(LL, `360p/index.m3u8?_HLS_msn=${last.msn + 3}`));
    assert.equal(tooFar.status, 400);
    assert.equal(tooFar.json?.error.code, 'msn_too_far');
    const noMsn = await get(url(LL, '360p/index.m3u8?_HLS_part=1'));
    assert.equal(noMsn.status, 400);
    const limit = advancePartLimit(pl.partTarget!);
    const beyond = await get(url(LL, `360p/index.m3u8?_HLS_msn=${last.msn + 2}&_HLS_part=3`));
    assert.equal(beyond.status, 400, 'msn+2 part 3 is more than 6 parts ahead');
    assert.equal(beyond.json?.error.code, 'part_too_far');
    assert.ok(limit >= 6);
    // Up to the limit (6 parts at 0.5 s, not 3) the request is held, not refused.
    const now = lastPart(await playlist('360p'));
    const atLimit = [0, 1, 2, 3]
      .map((part) => ({ part, ahead: partsAhead(now.msn + 1, part, now.msn, now.index, 4) }))
      .filter((x) => x.ahead <= limit)
      .at(-1)!;
    assert.ok(
      atLimit.ahead > 3,
      `probe ${atLimit.ahead} parts ahead (PART-TARGET ${pl.partTarget}, limit ${limit}, last part ${now.msn}.${now.index})`,
    );
    const heldAtLimit = await get(
      url(LL, `360p/index.m3u8?_HLS_msn=${now.msn + 1}&_HLS_part=${atLimit.part}`),
      AbortSignal.timeout(300),
    ).catch((e: Error) => e);
    assert.ok(heldAtLimit instanceof Error && heldAtLimit.name === 'TimeoutError', `${atLimit.ahead} parts ahead is held`);
    // msn = last+2 without a part is within bounds: held, not refused.
    const held = await get(url(LL, `360p/index.m3u8?_HLS_msn=${last.msn + 2}`), AbortSignal.timeout(400)).catch((e: Error) => e);
    assert.ok(held instanceof Error && held.name === 'TimeoutError', `msn+2 is held (${held instanceof Error ? held.name : held.status})`);
  });

  it('holds a request for the preload-hinted part and answers with its bytes the moment it exists', async () => {
    const pl = await playlist('360p');
    const hint = pl.hints[0]!;
    const [a, b, notHinted] = await Promise.all([
      get(url(LL, `360p/${hint.uri}`)),
      get(url(LL, `360p/${hint.uri}`)),
      get(url(LL, `360p/part-${hint.msn}.${hint.index + 2}.m4s`)),
    ]);
    assert.equal(notHinted.status, 404, 'a part that is neither there nor hinted is refused');
    assert.ok(notHinted.ms < 300, 'at once');
    const seen = partSeen.get(`360p ${hint.msn}.${hint.index}`);
    assert.ok(seen !== undefined, 'the hinted part appeared');
    for (const r of [a, b]) {
      assert.equal(r.status, 200);
      assert.ok(r.at >= seen && r.at - seen < 500, `answered ${Math.round(r.at - seen)} ms after the part appeared`);
      assert.equal(Buffer.compare(r.body, packager('360p').part(hint.msn, hint.index)!.bytes), 0, 'the part bytes');
    }
  });

  it('serves delta updates that really skip segments before the skip boundary', async () => {
    // The window (12 segments) must reach past CAN-SKIP-UNTIL (12 s) before anything can be skipped.
    const delta = await waitFor(
      'a delta update that skips',
      async () => {
        const d = await playlist('360p', '?_HLS_skip=YES');
        return d.skipped > 0 ? d : undefined;
      },
      40_000,
    );
    const full = await playlist('360p');
    assert.ok(delta.version >= 9);
    assert.ok(delta.text.includes(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${delta.skipped}\n`));
    assert.ok(full.mediaSequence <= delta.mediaSequence + 1 && full.mediaSequence >= delta.mediaSequence, 'same window');
    const skippedEnd = delta.segments[0]!.msn;
    assert.equal(skippedEnd, delta.mediaSequence + delta.skipped, 'listing resumes right after the skipped segments');
    // Nothing newer than the skip boundary is skipped: the listed part starts within CAN-SKIP-UNTIL of the end.
    const fullAtFirst = full.segments.findIndex((s) => s.msn === skippedEnd);
    const listedDuration = full.segments.slice(fullAtFirst).reduce((n, s) => n + s.duration, 0);
    assert.ok(listedDuration >= Number(full.serverControl['CAN-SKIP-UNTIL']) - TD, `listed ${listedDuration.toFixed(1)} s`);
    // Blocking and delta together.
    const hint = delta.hints[0]!;
    const both = await playlist('360p', `?_HLS_msn=${hint.msn}&_HLS_part=${hint.index}&_HLS_skip=YES`);
    assert.ok(both.skipped > 0 && both.parts.some((p) => p.msn === hint.msn && p.index === hint.index));
  });

  it('keeps parts downloadable after they leave the playlist', async () => {
    assert.ok(earlyPart, 'a part was recorded early');
    const listed = (await playlist('360p')).parts.map((p) => p.uri);
    assert.ok(!listed.includes(earlyPart.uri), `${earlyPart.uri} has left the playlist`);
    const r = await get(url(LL, `360p/${earlyPart.uri}`));
    assert.equal(r.status, 200);
    assert.equal(Buffer.compare(r.body, earlyPart.bytes), 0);
  });

  it('serves a standard-latency event as plain HLS: no parts, no hints, no blocking', async () => {
    plainPublisher = publish(PLAIN, 320, 180);
    try {
      const pl = await waitFor(
        'the plain playlist to list a segment',
        async () => {
          const r = await get(url(PLAIN, '180p/index.m3u8'));
          if (r.status !== 200) return undefined;
          const p = parsePlaylist(r.body.toString());
          return p.segments.length >= 1 ? p : undefined;
        },
        30_000,
      );
      assert.ok(lookups.includes(PLAIN));
      for (const tag of ['#EXT-X-PART', '#EXT-X-PRELOAD-HINT', '#EXT-X-SERVER-CONTROL', '#EXT-X-RENDITION-REPORT', '#EXT-X-SKIP']) {
        assert.ok(!pl.text.includes(tag), `no ${tag}`);
      }
      const next = pl.segments.at(-1)!.msn + 2;
      const r = await get(url(PLAIN, `180p/index.m3u8?_HLS_msn=${next}&_HLS_part=0&_HLS_skip=YES`));
      assert.equal(r.status, 200, 'delivery directives are ignored');
      assert.ok(r.ms < 300, 'not held');
      assert.ok(!r.body.toString().includes('#EXT-X-SKIP'));
      assert.equal((await get(url(PLAIN, `180p/part-${pl.segments.at(-1)!.msn}.0.m4s`))).status, 404, 'no parts');
      assert.equal((await get(url(PLAIN, `180p/${pl.segments.at(-1)!.uri}`))).status, 200);
    } finally {
      await stopPublisher(plainPublisher);
    }
  });

  it('answers 503 after three target durations when the requested segment never comes', async () => {
    await stopPublisher(llPublisher);
    const p = packager('360p');
    await waitFor('the last segment to close', () => (p.playlistSegments.at(-1)?.complete ? true : undefined), 10_000);
    const last = p.lastMsn!;
    const r = await get(url(LL, `360p/index.m3u8?_HLS_msn=${last + 1}`));
    assert.equal(r.status, 503);
    assert.equal(r.json?.error.code, 'timeout');
    assert.ok(r.ms >= 3 * TD * 1000 - 200 && r.ms < 3 * TD * 1000 + 3000, `503 after ${Math.round(r.ms)} ms`);
  });
});
