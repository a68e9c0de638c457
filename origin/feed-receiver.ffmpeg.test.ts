// End to end in one process: an ffmpeg publish (lavfi, 360p) written into the cluster feed forwarder, carried over
// the signed HTTP feed transport to the feed receiver on a real port, into a real origin, which serves a playable
// LL-HLS playlist with parts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { sendError } from '../lib/http.ts';
import { testStreamArgs } from '../scripts/publish-test-stream.ts';
import { createFeedForwarder, type FeedForwarder } from '../ingest/feed-forwarder.ts';
import { MemoryPlacements } from '../test/support/memory-placements.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createOrigin, type Origin } from './origin.ts';
import { createFeedReceiver, type FeedReceiver } from './feed-receiver.ts';
import { parseMoof } from './mp4.ts';

const EV = 'clusterFeed01';
const SECRET = 'test-cluster-secret-0123456789-abcdefghij';
const config = configSchema.parse({
  x264Preset: 'ultrafast',
  // The encoded ladder below, without the source rendition the default preset (standard) adds.
  defaultLadderPreset: 'custom',
  ladder: [
    { name: '360p', height: 360, fps: 30, videoKbps: 600 },
    { name: '180p', height: 180, fps: 30, videoKbps: 200 },
  ],
});

let origin: Origin;
let receiver: FeedReceiver;
let forwarder: FeedForwarder;
let server: Server;
let publisher: ChildProcess | undefined;
const placements = new MemoryPlacements();
const logger = createLogger('silent');

before(async () => {
  const registry = createMetricsRegistry();
  origin = createOrigin({
    config,
    logger,
    registry,
    bindHost: '127.0.0.1',
    parent: { onStatus: () => {}, latencyMode: async () => 'low' },
  });
  await origin.start();
  receiver = createFeedReceiver({ placements, nodeId: 'origin-a', secret: SECRET, capacity: 4, feeds: origin.feeds, logger, registry });
  await receiver.start(new AbortController().signal);
  server = createServer((req, res) => {
    if (!receiver.handle(req, res)) sendError(res, 404, 'not_found', 'no such path');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  placements.addOrigin({ id: 'origin-a', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  forwarder = createFeedForwarder({
    placements,
    nodeId: 'ingest-1',
    replicas: () => 1,
    secret: SECRET,
    logger,
    registry,
    reconnectWindowSec: 5,
  });
});

after(async () => {
  if (publisher && publisher.exitCode === null && publisher.signalCode === null) {
    const closed = new Promise((r) => publisher!.once('close', r));
    publisher.kill('SIGKILL');
    await closed;
  }
  await forwarder?.stop();
  await receiver?.stop();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await origin?.stop();
});

describe('cluster feed transport with ffmpeg', () => {
  it('carries an ffmpeg publish from the forwarder to a real origin, which serves LL-HLS with parts', async () => {
    const feed = await forwarder.open(EV, { protocol: 'rtmp', sessionId: 'ffpub1', remoteAddress: '127.0.0.1' });
    publisher = spawn('ffmpeg', testStreamArgs({ url: 'pipe:1', width: 640, height: 360, videoKbps: 600, durationSec: 8 }), {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    publisher.stdout!.on('data', (c: Buffer) => feed.write(c));
    publisher.on('close', () => feed.end());

    const playlistUrl = `${origin.url}/live/${EV}/360p/index.m3u8`;
    const text = await waitFor(
      'a 360p playlist with a complete segment and parts',
      async () => {
        const r = await fetch(playlistUrl);
        if (r.status !== 200) return undefined;
        const t = await r.text();
        return /#EXTINF:/.test(t) && /#EXT-X-PART:/.test(t) ? t : undefined;
      },
      30_000,
      200,
    );
    assert.equal(receiver.carries(EV), true);
    assert.ok(text.startsWith('#EXTM3U\n'));
    assert.match(text, /#EXT-X-PART-INF:PART-TARGET=/);
    assert.match(text, /#EXT-X-PRELOAD-HINT:TYPE=PART/);

    const master = await fetch(`${origin.url}/live/${EV}/master.m3u8`);
    assert.equal(master.status, 200);
    assert.match(await master.text(), /360p\/index\.m3u8/);

    // The init segment and a listed part are real fMP4.
    const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(text)![1]!;
    const initBytes = Buffer.from(await (await fetch(`${origin.url}/live/${EV}/360p/${init}`)).arrayBuffer());
    assert.equal(initBytes.toString('latin1', 4, 8), 'ftyp');
    const part = /#EXT-X-PART:[^\n]*URI="([^"]+)"/.exec(text)![1]!;
    const partRes = await fetch(`${origin.url}/live/${EV}/360p/${part}`);
    assert.equal(partRes.status, 200);
    const partBytes = Buffer.from(await partRes.arrayBuffer());
    assert.ok(parseMoof(partBytes.subarray(0, partBytes.readUInt32BE(0))), 'the part starts with a moof');

    assert.deepEqual(forwarder.connectedOrigins(EV), ['origin-a']);
    assert.equal(placements.current(EV)?.ingest, 'ingest-1');
  });
});
