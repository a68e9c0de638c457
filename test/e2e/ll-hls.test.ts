// End to end: LL-HLS through the edge in Chromium (hls.js low-latency mode, PART-HOLD-BACK as target,
// ABR switch down and up without a stall), LL tags consistent across renditions at the edge, and a
// `--latency standard` event served and played as plain HLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { launchChromium } from '../support/chromium.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

/** Parts per GOP with the default settings (config/schema.ts gopSec / partTargetSec). */
const PARTS_PER_GOP = 5;

type Created = { id: string; slug: string; streamKey: string; latencyMode: string; watchUrl: string; hlsUrl: string };

const LADDER = [
  { name: '360p', height: 360, fps: 30, videoKbps: 700 },
  { name: '240p', height: 240, fps: 30, videoKbps: 400 },
  { name: '180p', height: 180, fps: 30, videoKbps: 250 },
];
let server: ServerUnderTest;
let ll: Created;
let plain: Created;
let publisher: ReturnType<typeof publishTestStream> | undefined;
let chromium: { browser: Browser; close(): Promise<void> } | undefined;

async function text(url: string): Promise<{ body: string; headers: Headers }> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return { body: await r.text(), headers: r.headers };
}

function publish(key: string) {
  return publishTestStream({ url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${key}`, durationSec: 180, width: 640, height: 360 });
}

async function stopPublisher(): Promise<void> {
  if (!publisher) return;
  publisher.child.kill('SIGKILL');
  await publisher.done;
  publisher = undefined;
}

async function masterVariants(hlsUrl: string): Promise<string[]> {
  const master = await waitFor(
    'master playlist',
    async () => {
      const r = await fetch(hlsUrl);
      return r.ok ? r.text() : undefined;
    },
    40_000,
    250,
  );
  return master
    .split('\n')
    .filter((l) => l.endsWith('.m3u8'))
    .map((u) => new URL(u, hlsUrl).href);
}

/** Opens the watch page and waits until hls.js plays. */
async function watch(url: string): Promise<{ page: Page; pageErrors: string[] }> {
  const page = await chromium!.browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => window.__onair?.state === 'playing' && (window.__onair.hls?.levels.length ?? 0) > 0, undefined, {
    timeout: 40_000,
  });
  return { page, pageErrors };
}

before(async () => {
  // A three-rung ladder as small as it goes: the ABR switch is the same at any size, and a 720p ladder, its
  // publisher and Chromium's decoding leave a 2-core machine short enough of CPU for parts to come late.
  server = await startServer({ ONAIR_LADDER: JSON.stringify(LADDER) });
  ll = JSON.parse(await server.cli(['event', 'create', '--title', 'LL e2e', '--json'])) as Created;
  plain = JSON.parse(await server.cli(['event', 'create', '--title', 'Plain e2e', '--latency', 'standard', '--json'])) as Created;
  chromium = await launchChromium();
});

after(async () => {
  await chromium?.close();
  await stopPublisher();
  await server?.stop();
});

test('events carry a latency mode: low by default, standard on request, shown by the API', async () => {
  assert.equal(ll.latencyMode, 'low');
  assert.equal(plain.latencyMode, 'standard');
  const api = (await (await fetch(`${server.base}/api/v1/events/${plain.id}`)).json()) as { event: { latencyMode: string } };
  assert.equal(api.event.latencyMode, 'standard');
  await assert.rejects(server.cli(['event', 'create', '--title', 'x', '--latency', 'fast']), /--latency must be low or standard/);
});

test('LL tags are present and consistent across renditions at the edge', async () => {
  publisher = publish(ll.streamKey);
  const uris = await masterVariants(ll.hlsUrl);
  assert.equal(uris.length, 3);
  const names = uris.map((u) => u.split('/').at(-2)!);
  const pls = await Promise.all(
    uris.map((u) =>
      waitFor(
        `parts in ${u}`,
        async () => {
          const r = await text(u);
          return (r.body.match(/#EXT-X-PART:/g) ?? []).length >= 3 ? r : undefined;
        },
        30_000,
        250,
      ),
    ),
  );
  const tag = (body: string, name: string) => body.split('\n').filter((l) => l.startsWith(`#${name}:`));
  for (const [i, { body, headers }] of pls.entries()) {
    assert.ok(headers.get('age') !== null, 'Age from the edge');
    const sc = tag(body, 'EXT-X-SERVER-CONTROL');
    assert.equal(sc.length, 1);
    assert.match(sc[0]!, /CAN-BLOCK-RELOAD=YES/);
    const pt = Number(/PART-TARGET=([\d.]+)/.exec(tag(body, 'EXT-X-PART-INF')[0] ?? '')?.[1]);
    assert.ok(pt > 0);
    assert.ok(Number(/PART-HOLD-BACK=([\d.]+)/.exec(sc[0]!)?.[1]) >= 2 * pt - 1e-9, 'PART-HOLD-BACK at least 2 parts (RFC 8216bis MUST)');
    const td = Number(tag(body, 'EXT-X-TARGETDURATION')[0]!.split(':')[1]);
    assert.ok(Number(/CAN-SKIP-UNTIL=([\d.]+)/.exec(sc[0]!)?.[1]) >= 6 * td);
    assert.equal(tag(body, 'EXT-X-PRELOAD-HINT').length, 1, 'one preload hint');
    // Every keyframe (one per GOP: ONAIR_GOP_SEC / ONAIR_PART_TARGET_SEC = 1 / 0.2 = 5 parts by default) starts an
    // independent part, where a player may join; no other part is independent.
    for (const p of tag(body, 'EXT-X-PART')) {
      const index = Number(/part-\d+\.(\d+)\.m4s/.exec(p)?.[1]);
      assert.equal(/INDEPENDENT=YES/.test(p), index % PARTS_PER_GOP === 0, p);
    }
    const reports = tag(body, 'EXT-X-RENDITION-REPORT').map((l) => /URI="\.\.\/([^/]+)\//.exec(l)?.[1]);
    assert.deepEqual(reports.sort(), names.filter((n) => n !== names[i]).sort(), 'reports for the other renditions');
  }
  const same = (name: string) => new Set(pls.map(({ body }) => tag(body, name).join())).size === 1;
  assert.ok(same('EXT-X-TARGETDURATION') && same('EXT-X-PART-INF') && same('EXT-X-SERVER-CONTROL'), 'same LL parameters everywhere');
  // The edge answers a blocking reload for the hinted part of every rendition.
  for (const [i, { body }] of pls.entries()) {
    const [, msn, part] = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.(\d+)\.m4s"/.exec(body)!;
    const r = await text(`${uris[i]}?_HLS_msn=${msn}&_HLS_part=${part}`);
    assert.ok(r.body.includes(`part-${msn}.${part}.m4s`), 'the blocking response lists the hinted part');
  }
});

test('Chromium plays LL-HLS through the edge at PART-HOLD-BACK and switches down and up without a stall', async () => {
  const { page, pageErrors } = await watch(ll.watchUrl);
  const ll0 = await page.evaluate(() => {
    const hls = window.__onair!.hls!;
    return { lowLatencyMode: hls.config.lowLatencyMode, targetLatency: hls.targetLatency, levels: hls.levels.map((l) => l.height) };
  });
  assert.equal(ll0.lowLatencyMode, true);
  // PART-HOLD-BACK (0.5 s) drives the target, not 3 target durations (6 s): hls.js honours it only if
  // liveSyncDuration(Count) is left unset.
  assert.ok(ll0.targetLatency !== null && ll0.targetLatency <= 3, `target latency ${ll0.targetLatency}`);
  assert.deepEqual(
    [...ll0.levels].sort((a, b) => a - b),
    LADDER.map((r) => r.height).sort((a, b) => a - b),
  );

  // Measure stalled time from here on: from each <video> 'waiting' to the next 'playing'. The machine is
  // shared and loaded, so a late part can cost a short underrun; a broken switch stops playback for good.
  await page.evaluate(() => {
    const w = window as unknown as { __stall: { since: number; ms: number; count: number } };
    w.__stall = { since: 0, ms: 0, count: 0 };
    const video = document.querySelector('video')!;
    video.addEventListener('waiting', () => {
      if (w.__stall.since === 0) w.__stall.since = performance.now();
      w.__stall.count++;
    });
    video.addEventListener('playing', () => {
      if (w.__stall.since !== 0) w.__stall.ms += performance.now() - w.__stall.since;
      w.__stall.since = 0;
    });
  });
  const switchStart = Date.now();
  const playStart = await page.evaluate(() => document.querySelector('video')!.currentTime);
  const levelIndex = (h: number) => ll0.levels.indexOf(h);
  for (const height of [180, 360]) {
    const idx = levelIndex(height);
    const t0 = await page.evaluate(() => document.querySelector('video')!.currentTime);
    await page.evaluate((i) => {
      window.__onair!.hls!.nextLevel = i;
    }, idx);
    await page.waitForFunction(
      ([i, h]) => window.__onair!.hls!.currentLevel === i && document.querySelector('video')!.videoHeight === h,
      [idx, height] as const,
      { timeout: 20_000 },
    );
    await page.waitForFunction((t) => document.querySelector('video')!.currentTime >= t + 2, t0, { timeout: 15_000 });
  }
  const wallSec = (Date.now() - switchStart) / 1000;
  const result = await page.evaluate(() => ({
    stall: (window as unknown as { __stall: { since: number; ms: number; count: number } }).__stall,
    played: document.querySelector('video')!.currentTime,
    latency: window.__onair!.hls!.latency,
    state: window.__onair!.state,
    errors: window.__onair!.errors,
  }));
  const stalledMs = result.stall.ms + (result.stall.since === 0 ? 0 : 1000);
  const why = `${result.stall.count} underruns, ${Math.round(stalledMs)} ms stalled; errors: ${result.errors.join('; ')}`;
  assert.ok(stalledMs < 2000, `no stall across the switches: ${why}`);
  assert.ok(
    result.played - playStart >= wallSec - 3,
    `played ${(result.played - playStart).toFixed(1)} s of ${wallSec.toFixed(1)} s: ${why}`,
  );
  assert.equal(result.state, 'playing');
  assert.ok(result.latency > 0 && result.latency < 6, `hls.latency ${result.latency}`);
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test('a standard-latency event is plain HLS at the edge and plays', async () => {
  await stopPublisher();
  publisher = publish(plain.streamKey);
  const uris = await masterVariants(plain.hlsUrl);
  const body = await waitFor(
    'segments in the plain playlist',
    async () => {
      const r = await text(uris[0]!);
      return (r.body.match(/#EXTINF/g) ?? []).length >= 2 ? r.body : undefined;
    },
    30_000,
    250,
  );
  for (const t of ['#EXT-X-PART', '#EXT-X-PRELOAD-HINT', '#EXT-X-SERVER-CONTROL', '#EXT-X-RENDITION-REPORT'])
    assert.ok(!body.includes(t), `no ${t}`);
  const { page, pageErrors } = await watch(plain.watchUrl);
  const t0 = await page.evaluate(() => document.querySelector('video')!.currentTime);
  await page.waitForFunction((t) => document.querySelector('video')!.currentTime >= t + 3, t0, { timeout: 20_000 });
  const target = await page.evaluate(() => window.__onair!.hls!.targetLatency);
  assert.ok(target !== null && target >= 4, `plain HLS plays further behind (target ${target})`);
  assert.deepEqual(pageErrors, []);
  await page.close();
});
