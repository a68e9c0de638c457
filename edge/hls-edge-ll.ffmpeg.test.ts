// LL-HLS through the edge, against a real origin fed by a real ffmpeg publish: held blocking playlist
// requests and preload-hinted part requests coalesced to one upstream request per object, `_HLS_*` in
// the cache key, Age and Cache-Control, and the origin's 400/503 answers passed through.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, Agent, type Server } from 'node:http';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { closeServer, listen } from '../lib/http.ts';
import { testStreamArgs } from '../scripts/publish-test-stream.ts';
import { createOrigin, type Origin } from '../origin/origin.ts';
import type { RenditionPackager } from '../origin/packager.ts';
import { createHlsEdge, type HlsEdge } from './hls-edge.ts';
import { waitFor } from '../test/support/wait-for.ts';

const EV = 'edgeLlEvent1';
const config = configSchema.parse({
  x264Preset: 'ultrafast',
  // The encoded ladder below, without the source rendition the default preset (standard) adds.
  defaultLadderPreset: 'custom',
  ladder: [
    { name: '360p', height: 360, fps: 30, videoKbps: 600 },
    { name: '180p', height: 180, fps: 30, videoKbps: 200 },
  ],
});
const N = 40;

let origin: Origin;
let publisher: ChildProcess | undefined;
let proxy: Server;
let edgeServer: Server;
let edge: HlsEdge;
let edgeBase = '';
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
/** Requests the edge made upstream, by path+query. */
const upstream = new Map<string, number>();
const partSeen = new Map<string, number>();

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** performance.now() when the response head arrived. */
  at: number;
  ms: number;
}

/** GET through the edge on a pool of keep-alive sockets (so that N requests really are concurrent). */
function get(path: string): Promise<Got> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${edgeBase}${path}`, { agent }, (res) => {
      const at = performance.now();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), at, ms: at - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function packager(name: string): RenditionPackager {
  return origin.stream(EV)!.packagers.get(name)!;
}

function hintOf(text: string): { msn: number; index: number; uri: string } {
  const m = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(part-(\d+)\.(\d+)\.m4s)"/.exec(text);
  assert.ok(m, 'a preload hint');
  return { uri: m[1]!, msn: Number(m[2]), index: Number(m[3]) };
}

const upstreamCount = (pathAndQuery: string) => upstream.get(pathAndQuery) ?? 0;

before(async () => {
  origin = createOrigin({
    config,
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    bindHost: '127.0.0.1',
    parent: { onStatus: () => {}, latencyMode: async () => 'low' },
  });
  await origin.start();
  // A transparent, streaming proxy in front of the origin that counts what the edge asks for.
  const originUrl = new URL(origin.url);
  proxy = createServer((req, res) => {
    upstream.set(req.url!, upstreamCount(req.url!) + 1);
    const up = httpRequest(
      { host: originUrl.hostname, port: originUrl.port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.end();
  });
  const proxyPort = await listen(proxy, 0, '127.0.0.1');
  edge = createHlsEdge({
    config,
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    upstreams: [`http://127.0.0.1:${proxyPort}`],
  });
  await edge.start();
  edgeServer = createServer((req, res) => edge.handle(req, res));
  edgeBase = `http://127.0.0.1:${await listen(edgeServer, 0, '127.0.0.1')}`;

  const feed = origin.feeds.open(EV, { protocol: 'rtmp', sessionId: 'edge-ll', remoteAddress: '127.0.0.1' });
  publisher = spawn('ffmpeg', testStreamArgs({ url: 'pipe:1', width: 640, height: 360, videoKbps: 800 }), {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  publisher.stdout!.on('data', (c: Buffer) => feed.write(c));
  publisher.on('close', () => feed.end());
  await waitFor('packagers', () => (origin.stream(EV)?.packagers.size === 2 ? true : undefined), 30_000);
  for (const name of ['360p', '180p']) packager(name).on('part', (p) => partSeen.set(`${name} ${p.msn}.${p.index}`, performance.now()));
  await waitFor('a complete segment', () => (packager('360p').playlistSegments.some((s) => s.complete) ? true : undefined), 30_000);
});

after(async () => {
  if (publisher && publisher.exitCode === null && publisher.signalCode === null) {
    const closed = new Promise((r) => publisher!.once('close', r));
    publisher.kill('SIGKILL');
    await closed;
  }
  agent.destroy();
  await edge?.stop();
  if (edgeServer) await closeServer(edgeServer, 200);
  if (proxy) await closeServer(proxy, 200);
  await origin?.stop();
});

describe('LL-HLS through the edge', () => {
  const L = `/live/${EV}`;

  it(`coalesces ${N} held blocking playlist requests into one upstream request`, async () => {
    const pl = await get(`${L}/360p/index.m3u8`);
    assert.equal(pl.status, 200);
    assert.match(pl.body.toString(), /#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES/);
    const hint = hintOf(pl.body.toString());
    const query = `?_HLS_msn=${hint.msn}&_HLS_part=${hint.index}`;
    const all = await Promise.all(Array.from({ length: N }, () => get(`${L}/360p/index.m3u8${query}`)));
    const seen = partSeen.get(`360p ${hint.msn}.${hint.index}`);
    assert.ok(seen !== undefined, 'the part appeared');
    assert.equal(upstreamCount(`${L}/360p/index.m3u8${query}`), 1, 'exactly one upstream request');
    for (const r of all) {
      assert.equal(r.status, 200);
      assert.equal(Buffer.compare(r.body, all[0]!.body), 0, 'every waiter gets the same playlist');
      assert.ok(r.at >= seen, 'none answered before the part existed');
      assert.ok(r.body.toString().includes(`URI="${hint.uri}"`), 'the requested part is listed');
      assert.ok(r.headers.age !== undefined, 'Age header');
      assert.match(String(r.headers['cache-control']), /max-age=\d+/);
    }
    // Asked again later: a cache hit with an Age, still no second upstream request.
    const again = await get(`${L}/360p/index.m3u8?_HLS_part=${hint.index}&_HLS_msn=${hint.msn}&other=1`);
    assert.equal(again.status, 200);
    assert.equal(Buffer.compare(again.body, all[0]!.body), 0, 'parameter order and foreign parameters do not matter');
    assert.ok(Number(again.headers.age) >= 0);
    assert.equal(upstreamCount(`${L}/360p/index.m3u8${query}`), 1);
    // Non-blocking playlists are short-lived (LL profile); blocking responses name one version and may live longer.
    const ccPlain = String(pl.headers['cache-control']);
    const ccBlocking = String(all[0]!.headers['cache-control']);
    const maxAge = (cc: string) => Number(/max-age=(\d+)/.exec(cc)?.[1]);
    assert.ok(maxAge(ccPlain) <= 1, `plain playlist ${ccPlain}`);
    assert.ok(maxAge(ccBlocking) >= maxAge(ccPlain), `blocking playlist ${ccBlocking}`);
  });

  it(`coalesces ${N} requests for the preload-hinted part into one upstream request, bytes to every waiter`, async () => {
    const hint = hintOf((await get(`${L}/180p/index.m3u8`)).body.toString());
    const path = `${L}/180p/${hint.uri}`;
    const all = await Promise.all(Array.from({ length: N }, () => get(path)));
    const bytes = packager('180p').part(hint.msn, hint.index)?.bytes;
    assert.ok(bytes, 'the hinted part exists now');
    const seen = partSeen.get(`180p ${hint.msn}.${hint.index}`)!;
    for (const r of all) {
      assert.equal(r.status, 200);
      assert.equal(Buffer.compare(r.body, bytes), 0, 'the part bytes');
      assert.ok(r.at >= seen && r.at - seen < 1000, `answered ${Math.round(r.at - seen)} ms after the part appeared`);
      assert.match(String(r.headers['cache-control']), /immutable/);
    }
    assert.equal(upstreamCount(path), 1, 'exactly one upstream request');
  });

  it('keys blocking requests by (rendition, msn, part, skip)', async () => {
    const hint = hintOf((await get(`${L}/360p/index.m3u8`)).body.toString());
    const q = `?_HLS_msn=${hint.msn}&_HLS_part=${hint.index}`;
    const variants = [`${L}/360p/index.m3u8${q}`, `${L}/360p/index.m3u8${q}&_HLS_skip=YES`, `${L}/180p/index.m3u8${q}`];
    const answers = await Promise.all(variants.flatMap((v) => Array.from({ length: 10 }, () => get(v))));
    assert.ok(answers.every((r) => r.status === 200));
    for (const v of variants) assert.equal(upstreamCount(v), 1, `one upstream request for ${v}`);
    assert.ok(answers[20]!.body.toString().includes('URI="../360p/index.m3u8"'), 'the 180p playlist reports 360p');
  });

  it('passes the origin 400s through and refuses malformed directives itself', async () => {
    const last = packager('360p').lastMsn!;
    const far = await get(`${L}/360p/index.m3u8?_HLS_msn=${last + 3}`);
    assert.equal(far.status, 400);
    const beyond = await get(`${L}/360p/index.m3u8?_HLS_msn=${last + 2}&_HLS_part=3`);
    assert.equal(beyond.status, 400);
    const noMsn = await get(`${L}/360p/index.m3u8?_HLS_part=2`);
    assert.equal(noMsn.status, 400);
    assert.equal(upstreamCount(`${L}/360p/index.m3u8?_HLS_part=2`), 0, 'refused at the edge');
  });

  it('passes the origin 503 through when a blocking request times out', async () => {
    const closed = new Promise((r) => publisher!.once('close', r));
    publisher!.kill('SIGKILL');
    await closed;
    const p = packager('360p');
    await waitFor('the last segment to close', () => (p.playlistSegments.at(-1)?.complete ? true : undefined), 10_000);
    const path = `${L}/360p/index.m3u8?_HLS_msn=${p.lastMsn! + 1}`;
    const all = await Promise.all(Array.from({ length: 5 }, () => get(path)));
    for (const r of all) {
      assert.equal(r.status, 503);
      assert.ok(r.ms >= 3 * config.segmentTargetSec * 1000 - 200, `after ${Math.round(r.ms)} ms`);
      assert.equal(r.headers['cache-control'], 'no-store');
    }
    assert.equal(upstreamCount(path), 1, 'one upstream request for the five waiters');
  });
});
