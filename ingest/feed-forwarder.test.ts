// The cluster feed forwarder against real local HTTP servers standing in for origins (they record what arrives):
// bytes intact at R origins, failover on a reset, a refusal (503 origin_full) or a slow origin, fencing, the
// reconnect window, and refusals of the publish when no placement can be made. No ffmpeg.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import { sendError, sendJson } from '../lib/http.ts';
import { FeedHeader, readFeedRequest } from '../lib/cluster-auth.ts';
import { MemoryPlacements } from '../test/support/memory-placements.ts';
import { describeTags, parseFlv, synthStream } from '../test/support/flv-synth.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createFeedForwarder, type FeedForwarder, type FeedForwarderDeps } from './feed-forwarder.ts';
import { FeedRefusal, type LiveFeed } from './feed.ts';

const SECRET = 'test-cluster-secret-0123456789-abcdefghij';
const SOURCE = { protocol: 'rtmp' as const, sessionId: 'pub1', remoteAddress: '192.0.2.10' };

/** What a stand-in origin does with a feed request. */
type Mode =
  | { kind: 'record' }
  | { kind: 'drop'; afterBytes: number }
  | { kind: 'refuse'; status: number; code: string; before?: () => Promise<void> }
  | { kind: 'stall' };

interface Received {
  headers: IncomingHttpHeaders;
  chunks: Buffer[];
  bytes: number;
  ended: boolean;
  closed: boolean;
}

interface FakeOrigin {
  id: string;
  url: string;
  mode: Mode;
  received: Received[];
  server: Server;
}

const servers: Server[] = [];

async function fakeOrigin(id: string, mode: Mode = { kind: 'record' }): Promise<FakeOrigin> {
  const o: FakeOrigin = { id, url: '', mode, received: [], server: undefined as unknown as Server };
  o.server = createServer((req, res) => {
    const rec: Received = { headers: req.headers, chunks: [], bytes: 0, ended: false, closed: false };
    o.received.push(rec);
    req.on('close', () => (rec.closed = true));
    const m = o.mode;
    if (m.kind === 'refuse') {
      void (async () => {
        await m.before?.();
        sendError(res, m.status, m.code, 'refused by the test', { connection: 'close' });
        req.resume();
      })();
      return;
    }
    if (m.kind === 'stall') {
      req.pause();
      return;
    }
    req.on('data', (c: Buffer) => {
      rec.chunks.push(c);
      rec.bytes += c.length;
      if (m.kind === 'drop' && rec.bytes >= m.afterBytes) req.socket.destroy();
    });
    req.on('end', () => {
      rec.ended = true;
      sendJson(res, 200, { ok: true });
    });
  });
  servers.push(o.server);
  await new Promise<void>((r) => o.server.listen(0, '127.0.0.1', r));
  o.url = `http://127.0.0.1:${(o.server.address() as AddressInfo).port}`;
  return o;
}

const bytesOf = (r: Received) => Buffer.concat(r.chunks);

/** Writes the pieces, yielding to the event loop every `every` pieces (sockets flush, failures surface). */
async function pump(feed: LiveFeed, pieces: Buffer[], every = 8): Promise<void> {
  for (let i = 0; i < pieces.length; i++) {
    feed.write(pieces[i]!);
    if (i % every === every - 1) await new Promise((r) => setImmediate(r));
  }
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((a, v) => a + v.value, 0);
}

let logText = '';
let registry: Registry;
let forwarder: FeedForwarder | undefined;

function forwarderFor(placements: MemoryPlacements, over: Partial<FeedForwarderDeps> = {}): FeedForwarder {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logText += chunk.toString();
      cb();
    },
  });
  forwarder = createFeedForwarder({
    placements,
    nodeId: 'ingest-1',
    replicas: () => 1,
    secret: SECRET,
    logger: createLogger('debug', sink),
    registry,
    reconnectWindowSec: 60,
    renewIntervalMs: 100,
    ...over,
  });
  return forwarder;
}

/** The log lines (JSON) whose msg includes `text`. */
const logLines = (text: string) =>
  logText
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => String(l.msg).includes(text));

beforeEach(() => {
  logText = '';
  registry = createMetricsRegistry();
});

afterEach(async () => {
  await forwarder?.stop();
  forwarder = undefined;
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  // Whatever happened, the secret and the MACs never reach the log.
  assert.ok(!logText.includes(SECRET), 'the secret is not logged');
  assert.ok(!logText.includes('mac='), 'no MAC is logged');
});

describe('feed forwarder', () => {
  it('forwards the bytes intact to R origins, signed, and ends the requests when the publisher leaves', async () => {
    const a = await fakeOrigin('origin-a');
    const b = await fakeOrigin('origin-b');
    const c = await fakeOrigin('origin-c');
    const placements = new MemoryPlacements([a, b, c].map((o) => ({ id: o.id, url: o.url })));
    const fwd = forwarderFor(placements, { replicas: () => 2 });
    const feed = await fwd.open('ev-intact', SOURCE);
    const placement = fwd.placement('ev-intact')!;
    assert.deepEqual(
      placement.origins.map((o) => o.id),
      ['origin-a', 'origin-b'],
    );
    const stream = synthStream({ frames: 120 });
    await pump(feed, stream);
    await waitFor('both origins connected', () => fwd.connectedOrigins('ev-intact').length === 2);
    feed.end();
    await waitFor('both requests ended', () => a.received[0]?.ended && b.received[0]?.ended);
    const sent = Buffer.concat(stream);
    for (const o of [a, b]) {
      assert.equal(o.received.length, 1);
      assert.ok(bytesOf(o.received[0]!).equals(sent), `${o.id} got every byte in order`);
      const h = o.received[0]!.headers;
      assert.equal(h[FeedHeader.epoch], String(placement.epoch));
      assert.equal(h[FeedHeader.session], '1');
      assert.equal(h[FeedHeader.timelineZero], String(placement.timelineZeroMs));
      assert.equal(h[FeedHeader.ingest], 'ingest-1');
      const auth = readFeedRequest(SECRET, 'ev-intact', h);
      assert.equal(auth.ok && auth.meta.origin, o.id, 'signed for this origin');
      assert.equal(readFeedRequest(SECRET, 'ev-other', h).ok, false);
    }
    assert.equal(c.received.length, 0);
    assert.equal(await metric(registry, 'onair_ingest_forward_feeds_total'), 1);
    assert.equal(await metric(registry, 'onair_ingest_forward_bytes_total'), 2 * sent.length);
    assert.equal(await metric(registry, 'onair_ingest_forward_origin_failures_total'), 0);
    // Renewed while live; kept (not released) within the reconnect window.
    await waitFor('renewed', () => placements.calls.some((x) => x.op === 'renew' && x.epoch === placement.epoch && x.ok));
    assert.ok(!placements.calls.some((x) => x.op === 'release'));
    assert.equal(placements.current('ev-intact')?.epoch, placement.epoch);
  });

  it('replaces an origin that drops mid-stream; the new one starts with header, metadata, configs and a keyframe', async () => {
    const a = await fakeOrigin('origin-a', { kind: 'drop', afterBytes: 60_000 });
    const b = await fakeOrigin('origin-b');
    const placements = new MemoryPlacements([a, b].map((o) => ({ id: o.id, url: o.url })));
    const fwd = forwarderFor(placements);
    const feed = await fwd.open('ev-drop', SOURCE);
    const first = fwd.placement('ev-drop')!;
    assert.deepEqual(
      first.origins.map((o) => o.id),
      ['origin-a'],
    );
    const stream = synthStream({ frames: 240, gopFrames: 30 });
    await pump(feed, stream);
    await waitFor('origin b connected', () => fwd.connectedOrigins('ev-drop').includes('origin-b'));
    feed.end();
    await waitFor('origin b got the end', () => b.received[0]?.ended);

    assert.ok(placements.calls.some((x) => x.op === 'replace' && x.epoch === first.epoch && x.failed.join() === 'origin-a'));
    const second = fwd.placement('ev-drop')!;
    assert.ok(second.epoch > first.epoch);
    assert.equal(b.received.length, 1);
    const h = b.received[0]!.headers;
    assert.equal(h[FeedHeader.epoch], String(second.epoch));
    assert.equal(h[FeedHeader.session], '1', 'same session');
    assert.equal(h[FeedHeader.timelineZero], String(first.timelineZeroMs), 'same timeline');

    const got = parseFlv(bytesOf(b.received[0]!));
    const names = describeTags(got.tags);
    assert.deepEqual(names.slice(0, 3), ['meta', 'avc-config', 'aac-config']);
    assert.match(names[3]!, /^key@\d+$/);
    const keyTs = got.tags[3]!.timestamp;
    assert.ok(keyTs > 0, 'joined mid-stream, not from the start');
    // From that keyframe on, the tags are exactly the publisher's, none missing.
    const all = parseFlv(Buffer.concat(stream)).tags;
    const from = all.findIndex((t) => describeTags([t])[0] === `key@${keyTs}`);
    assert.ok(from > 0);
    assert.ok(Buffer.concat(all.slice(from).map((t) => t.raw)).equals(Buffer.concat(got.tags.slice(3).map((t) => t.raw))));
    assert.equal(await metric(registry, 'onair_ingest_forward_origin_failures_total', { reason: 'reset' }), 1);
    assert.equal(await metric(registry, 'onair_ingest_forward_failovers_total'), 1);
    assert.equal(logLines('origin feed failed').length, 1);
  });

  it('replaces an origin that cannot be reached (its process is gone)', async () => {
    const dead = await fakeOrigin('origin-a');
    await new Promise((r) => dead.server.close(r)); // the port now refuses connections
    const b = await fakeOrigin('origin-b');
    const placements = new MemoryPlacements([dead, b].map((o) => ({ id: o.id, url: o.url })));
    const fwd = forwarderFor(placements);
    const feed = await fwd.open('ev-dead', SOURCE);
    assert.equal(fwd.placement('ev-dead')!.origins[0]!.id, 'origin-a');
    const stream = synthStream({ frames: 60 });
    await pump(feed, stream);
    await waitFor('origin b connected', () => fwd.connectedOrigins('ev-dead').includes('origin-b'));
    feed.end();
    await waitFor('origin b got the end', () => b.received[0]?.ended);
    assert.equal(await metric(registry, 'onair_ingest_forward_origin_failures_total', { reason: 'connect_error' }), 1);
    const names = describeTags(parseFlv(bytesOf(b.received[0]!)).tags);
    assert.deepEqual(names.slice(0, 3), ['meta', 'avc-config', 'aac-config']);
    assert.match(names[3]!, /^key@/);
  });

  it('replaces an origin that answers 503 origin_full', async () => {
    const a = await fakeOrigin('origin-a', { kind: 'refuse', status: 503, code: 'origin_full' });
    const b = await fakeOrigin('origin-b');
    const placements = new MemoryPlacements([a, b].map((o) => ({ id: o.id, url: o.url })));
    const fwd = forwarderFor(placements);
    const feed = await fwd.open('ev-full', SOURCE);
    const stream = synthStream({ frames: 60 });
    feed.write(stream[0]!); // the header goes out; the origin refuses before the rest
    await waitFor('origin b placed', () => fwd.placement('ev-full')?.origins[0]?.id === 'origin-b');
    await pump(feed, stream.slice(1));
    feed.end();
    await waitFor('origin b got the end', () => b.received[0]?.ended);
    assert.ok(bytesOf(b.received[0]!).equals(Buffer.concat(stream)), 'b got the whole stream (it started before the first keyframe)');
    assert.equal(await metric(registry, 'onair_ingest_forward_origin_failures_total', { reason: 'origin_full' }), 1);
    assert.equal(a.received.length, 1);
  });

  it('stops and ends the publish when an origin answers 409 fenced and the event moved to another ingest', async () => {
    const placements = new MemoryPlacements();
    const a = await fakeOrigin('origin-a', {
      kind: 'refuse',
      status: 409,
      code: 'fenced',
      // Another ingest took the event over before this origin looked.
      before: async () => void (await placements.place('ev-fenced', { ingest: 'ingest-2', replicas: 1 })),
    });
    const b = await fakeOrigin('origin-b');
    for (const o of [a, b]) placements.addOrigin({ id: o.id, url: o.url });
    const fwd = forwarderFor(placements, { renewIntervalMs: 60_000 });
    const feed = await fwd.open('ev-fenced', SOURCE);
    const mine = fwd.placement('ev-fenced')!;
    await waitFor('fenced', () => {
      try {
        feed.write(synthStream({ frames: 1 })[0]!);
        return false;
      } catch (err) {
        return err instanceof FeedRefusal && err.code === 'fenced';
      }
    });
    assert.ok(placements.calls.some((x) => x.op === 'replace' && x.epoch === mine.epoch));
    assert.equal(placements.current('ev-fenced')?.ingest, 'ingest-2', 'the other ingest keeps the event');
    assert.ok(!placements.calls.some((x) => x.op === 'release'));
    assert.equal(fwd.placement('ev-fenced'), undefined);
    assert.equal(logLines('placement fenced').length, 1);
    feed.end(); // the ingest ends the publish: nothing else happens
    assert.ok(!placements.calls.some((x) => x.op === 'release'));
  });

  it('stops when a renew finds another ingest owns the event', async () => {
    const a = await fakeOrigin('origin-a');
    const placements = new MemoryPlacements([{ id: a.id, url: a.url }]);
    const fwd = forwarderFor(placements);
    const feed = await fwd.open('ev-renew', SOURCE);
    await pump(feed, synthStream({ frames: 30 }));
    await waitFor('connected', () => fwd.connectedOrigins('ev-renew').length === 1);
    await placements.place('ev-renew', { ingest: 'ingest-2', replicas: 1 });
    await waitFor('origin request dropped', () => a.received[0]?.closed);
    assert.equal(a.received[0]!.ended, false, 'aborted, not ended');
    assert.throws(
      () => feed.write(synthStream({ frames: 1 })[4]!),
      (err: Error) => err instanceof FeedRefusal && err.code === 'fenced',
    );
  });

  it('gives up an origin that takes bytes too slowly (bounded queue) and places another', async () => {
    const a = await fakeOrigin('origin-a');
    const b = await fakeOrigin('origin-b', { kind: 'stall' });
    const c = await fakeOrigin('origin-c');
    const placements = new MemoryPlacements([a, b, c].map((o, i) => ({ id: o.id, url: o.url, capacity: 10 - i })));
    const fwd = forwarderFor(placements, { replicas: () => 2, maxQueuedBytes: 512 * 1024 });
    const feed = await fwd.open('ev-slow', SOURCE);
    assert.deepEqual(
      fwd.placement('ev-slow')!.origins.map((o) => o.id),
      ['origin-a', 'origin-b'],
    );
    // 600 frames of 40 kB: 24 MB, more than loopback's socket buffers hold.
    const stream = synthStream({ frames: 600, gopFrames: 60, frameBytes: 40_000 });
    await pump(feed, stream, 4);
    await waitFor('origin c placed', () => fwd.connectedOrigins('ev-slow').includes('origin-c'));
    feed.end();
    await waitFor('a and c got the end', () => a.received[0]?.ended && c.received[0]?.ended, 30_000);
    assert.equal(await metric(registry, 'onair_ingest_forward_origin_failures_total', { reason: 'overflow' }), 1);
    assert.equal(await metric(registry, 'onair_ingest_forward_origin_failures_total'), 1, 'the fast origin never failed');
    assert.ok(bytesOf(a.received[0]!).equals(Buffer.concat(stream)));
    const names = describeTags(parseFlv(bytesOf(c.received[0]!)).tags);
    assert.deepEqual(names.slice(0, 3), ['meta', 'avc-config', 'aac-config']);
    assert.match(names[3]!, /^key@/);
  });

  it('gives up an origin whose connection takes no byte for stallMs, though its queue is under the bound', async () => {
    const a = await fakeOrigin('origin-a', { kind: 'stall' });
    const b = await fakeOrigin('origin-b');
    const placements = new MemoryPlacements([a, b].map((o) => ({ id: o.id, url: o.url })));
    const fwd = forwarderFor(placements, { maxQueuedBytes: 512 * 1024 * 1024, stallMs: 300 });
    const feed = await fwd.open('ev-stall', SOURCE);
    // 32 MB: more than loopback's socket buffers take, so bytes wait in the process.
    await pump(feed, synthStream({ frames: 800, gopFrames: 60, frameBytes: 40_000 }), 4);
    await waitFor('origin b placed', () => fwd.connectedOrigins('ev-stall').includes('origin-b'));
    assert.equal(await metric(registry, 'onair_ingest_forward_origin_failures_total', { reason: 'stalled' }), 1);
    assert.deepEqual(fwd.connectedOrigins('ev-stall'), ['origin-b']);
    assert.deepEqual(
      fwd.placement('ev-stall')!.origins.map((o) => o.id),
      ['origin-b'],
    );
  });

  it('releases the placement when no publisher returns within the reconnect window', async () => {
    const a = await fakeOrigin('origin-a');
    const placements = new MemoryPlacements([{ id: a.id, url: a.url }]);
    const fwd = forwarderFor(placements, { reconnectWindowSec: 0.3 });
    const feed = await fwd.open('ev-gone', SOURCE);
    const p = fwd.placement('ev-gone')!;
    await pump(feed, synthStream({ frames: 30 }));
    const leftAt = Date.now();
    feed.end();
    await waitFor('released', () => placements.calls.find((x) => x.op === 'release'));
    const elapsed = Date.now() - leftAt;
    assert.ok(elapsed >= 250, `released after the window (${elapsed} ms)`);
    assert.deepEqual(
      placements.calls.filter((x) => x.op === 'release'),
      [{ op: 'release', eventId: 'ev-gone', epoch: p.epoch, released: true }],
    );
    assert.equal(placements.current('ev-gone'), undefined);
    assert.equal(fwd.placement('ev-gone'), undefined);
  });

  it('keeps the event for a publisher back within the window: a new epoch, session + 1, the same timeline, no release', async () => {
    const a = await fakeOrigin('origin-a');
    const b = await fakeOrigin('origin-b');
    const placements = new MemoryPlacements([a, b].map((o) => ({ id: o.id, url: o.url })));
    const fwd = forwarderFor(placements, { reconnectWindowSec: 0.3 });
    const feed1 = await fwd.open('ev-back', SOURCE);
    const p1 = fwd.placement('ev-back')!;
    await pump(feed1, synthStream({ frames: 30 }));
    feed1.end();
    await new Promise((r) => setTimeout(r, 100));
    const feed2 = await fwd.open('ev-back', { ...SOURCE, sessionId: 'pub2' });
    const p2 = fwd.placement('ev-back')!;
    assert.ok(p2.epoch > p1.epoch);
    assert.equal(p2.session, 2);
    assert.equal(p2.timelineZeroMs, p1.timelineZeroMs);
    assert.deepEqual(
      p2.origins.map((o) => o.id),
      ['origin-a'],
      'the same origin, preferred',
    );
    await pump(feed2, synthStream({ frames: 30 }));
    await new Promise((r) => setTimeout(r, 500)); // past the first window
    assert.ok(!placements.calls.some((x) => x.op === 'release'));
    assert.equal(placements.current('ev-back')?.epoch, p2.epoch);
    await waitFor('second request', () => a.received.length === 2);
    assert.equal(a.received[1]!.headers[FeedHeader.session], '2');
    feed2.end();
    await waitFor('released', () => placements.calls.some((x) => x.op === 'release' && x.epoch === p2.epoch));
  });

  it('refuses the publish with the reason when no placement can be made', async () => {
    const placements = new MemoryPlacements();
    const fwd = forwarderFor(placements);
    await assert.rejects(fwd.open('ev-none', SOURCE), (err: Error) => err instanceof FeedRefusal && err.code === 'no_origins');
    placements.addOrigin({ id: 'origin-a', url: 'http://127.0.0.1:9', capacity: 0 });
    await assert.rejects(
      fwd.open('ev-none', SOURCE),
      (err: Error) => err instanceof FeedRefusal && err.code === 'pool_full' && /capacity/.test(err.message),
    );
    assert.equal(await metric(registry, 'onair_ingest_placement_refusals_total', { reason: 'no_origins' }), 1);
    assert.equal(await metric(registry, 'onair_ingest_placement_refusals_total', { reason: 'pool_full' }), 1);
    assert.equal(logLines('publish refused').length, 2);
  });

  it('hands the bytes to the timeline hook before everything else', async () => {
    const a = await fakeOrigin('origin-a');
    const placements = new MemoryPlacements([{ id: a.id, url: a.url }]);
    const seen: { timelineZeroMs: number; session: number }[] = [];
    const fwd = forwarderFor(placements, {
      shifter: (ctx) => {
        seen.push({ timelineZeroMs: ctx.timelineZeroMs, session: ctx.session });
        // Splits every piece in two: the reader must cope with any chunking.
        return (chunk) => [chunk.subarray(0, 5), chunk.subarray(5)];
      },
    });
    const feed = await fwd.open('ev-shift', SOURCE);
    const stream = synthStream({ frames: 30 });
    await pump(feed, stream);
    feed.end();
    await waitFor('ended', () => a.received[0]?.ended);
    assert.deepEqual(seen, [{ timelineZeroMs: fwd.placement('ev-shift')!.timelineZeroMs, session: 1 }]);
    assert.ok(bytesOf(a.received[0]!).equals(Buffer.concat(stream)));
  });
});
