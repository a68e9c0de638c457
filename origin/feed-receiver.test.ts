// The origin's feed endpoint on a real HTTP server, with placements in memory and a FeedSink that records:
// authentication, fencing, capacity, piping, replacement, and feeds closed by a placement change.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type ClientRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { sendError } from '../lib/http.ts';
import { CLUSTER_AUTH_HEADER, feedPath, feedRequestHeaders, type FeedRequestMeta } from '../lib/cluster-auth.ts';
import type { FeedSource, LiveFeed } from '../ingest/feed.ts';
import { MemoryPlacements } from '../test/support/memory-placements.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createFeedReceiver, type FeedReceiver } from './feed-receiver.ts';

const SECRET = 'test-cluster-secret-0123456789-abcdefghij';
const ME = 'origin-a';

interface SeenFeed {
  eventId: string;
  source: FeedSource;
  chunks: Buffer[];
  ended: number;
}

let server: Server;
let base: string;
let receiver: FeedReceiver;
let placements: MemoryPlacements;
let seen: SeenFeed[];
let capacity: number;
const clients: ClientRequest[] = [];

beforeEach(async () => {
  seen = [];
  capacity = 5;
  placements = new MemoryPlacements([
    { id: ME, url: 'http://127.0.0.1:1', capacity: 100 }, // most free: placed first
    { id: 'origin-b', url: 'http://127.0.0.1:2' },
    { id: 'origin-c', url: 'http://127.0.0.1:3' },
  ]);
  receiver = createFeedReceiver({
    placements,
    nodeId: ME,
    secret: SECRET,
    capacity: () => capacity,
    feeds: {
      open(eventId, source): LiveFeed {
        const f: SeenFeed = { eventId, source, chunks: [], ended: 0 };
        seen.push(f);
        return { write: (c) => void f.chunks.push(c), end: () => void f.ended++ };
      },
    },
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
  });
  await receiver.start(new AbortController().signal);
  server = createServer((req, res) => {
    if (!receiver.handle(req, res)) sendError(res, 404, 'not_found', 'not here');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await receiver.stop();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** Places `eventId` with this origin first (R = 2); returns the request meta for it. */
async function placed(eventId: string): Promise<FeedRequestMeta> {
  const p = await placements.place(eventId, { ingest: 'ingest-1', replicas: 2 });
  assert.equal(p.origins[0]!.id, ME);
  return metaFor(eventId, p.epoch, p.session, p.timelineZeroMs);
}

function metaFor(eventId: string, epoch: number, session = 1, timelineZeroMs = 1_700_000_000_000): FeedRequestMeta {
  return { eventId, epoch, session, timelineZeroMs, ingest: 'ingest-1', origin: ME, protocol: 'rtmp', publish: 'pub1' };
}

interface Answer {
  status: number;
  body: { error?: { code: string; message: string }; bytes?: number; epoch?: number; eventId?: string };
}

/** A streaming feed request: write() body bytes, end() it; `answer` settles with the response. */
function feedRequest(
  eventId: string,
  headers: Record<string, string>,
  method = 'PUT',
): { req: ClientRequest; answer: Promise<Answer>; write(b: Buffer): void; end(): void } {
  const req = request(`${base}${feedPath(eventId)}`, { method, headers, agent: false });
  clients.push(req);
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Answer['body'] }),
      );
    });
    req.on('error', reject);
  });
  answer.catch(() => {});
  req.flushHeaders();
  return { req, answer, write: (b) => void req.write(b), end: () => void req.end() };
}

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('feed receiver', () => {
  it('pipes an authenticated feed into the FeedSink with its timeline, and answers 200 with a summary at the end', async () => {
    const meta = await placed('ev-pipe');
    const f = feedRequest('ev-pipe', feedRequestHeaders(SECRET, meta));
    f.write(bytes(1000, 1));
    await waitFor('feed open', () => seen.length === 1);
    assert.deepEqual(seen[0]!.source, {
      protocol: 'rtmp',
      sessionId: 'pub1',
      remoteAddress: '127.0.0.1',
      timeline: { zeroMs: meta.timelineZeroMs, session: meta.session },
    });
    assert.equal(receiver.carries('ev-pipe'), true);
    assert.equal(receiver.liveEvents(), 1);
    f.write(bytes(2000, 2));
    f.end();
    const a = await f.answer;
    assert.equal(a.status, 200);
    assert.deepEqual(
      { eventId: a.body.eventId, epoch: a.body.epoch, bytes: a.body.bytes },
      { eventId: 'ev-pipe', epoch: meta.epoch, bytes: 3000 },
    );
    assert.ok(Buffer.concat(seen[0]!.chunks).equals(Buffer.concat([bytes(1000, 1), bytes(2000, 2)])));
    assert.equal(seen[0]!.ended, 1);
    assert.equal(receiver.liveEvents(), 0);
  });

  it('refuses requests that are not authenticated (401) or malformed (400), and other methods (405)', async () => {
    const meta = await placed('ev-auth');
    const good = feedRequestHeaders(SECRET, meta);
    const cases: [Record<string, string>, number, string][] = [
      [{ ...good, [CLUSTER_AUTH_HEADER]: '' }, 401, 'unauthorized'],
      [feedRequestHeaders('another-secret-that-is-long-enough-000000', meta), 401, 'unauthorized'],
      [feedRequestHeaders(SECRET, meta, Date.now() - 120_000), 401, 'unauthorized'],
      [{ ...good, 'x-onair-session': '9' }, 401, 'unauthorized'],
      [{ ...good, 'x-onair-epoch': 'one' }, 400, 'bad_request'],
    ];
    for (const [headers, status, code] of cases) {
      const a = await feedRequest('ev-auth', headers).answer;
      assert.equal(a.status, status, JSON.stringify(a.body));
      assert.equal(a.body.error?.code, code);
      assert.ok(!JSON.stringify(a.body).includes(SECRET));
    }
    // Signed for another event.
    assert.equal((await feedRequest('ev-other', feedRequestHeaders(SECRET, meta)).answer).status, 401);
    const get = await feedRequest('ev-auth', good, 'GET').answer;
    assert.equal(get.status, 405);
    assert.equal(seen.length, 0);
  });

  it('accepts a signed header once', async () => {
    const meta = await placed('ev-replay');
    const headers = feedRequestHeaders(SECRET, meta);
    const first = feedRequest('ev-replay', headers);
    first.end();
    assert.equal((await first.answer).status, 200);
    const again = await feedRequest('ev-replay', headers).answer;
    assert.equal(again.status, 401);
    assert.match(again.body.error!.message, /already used/);
  });

  it('refuses with 409 fenced an old epoch, an event without placement, another origin, or one not listing this origin', async () => {
    const meta = await placed('ev-fence');
    const newer = await placements.replace('ev-fence', meta.epoch, ['origin-b']);
    assert.ok(newer.origins.some((o) => o.id === ME));
    const cases: FeedRequestMeta[] = [
      meta, // the epoch before the replace
      metaFor('ev-nowhere', newer.epoch),
      { ...metaFor('ev-fence', newer.epoch), origin: 'origin-c' },
    ];
    const elsewhere = await placements.place('ev-elsewhere', { ingest: 'ingest-1', replicas: 1 });
    placements.setUp(ME, false);
    const moved = await placements.replace('ev-elsewhere', elsewhere.epoch, [ME]);
    placements.setUp(ME, true);
    assert.ok(!moved.origins.some((o) => o.id === ME));
    cases.push(metaFor('ev-elsewhere', moved.epoch));
    for (const m of cases) {
      const a = await feedRequest(m.eventId, feedRequestHeaders(SECRET, m)).answer;
      assert.equal(a.status, 409, `${m.eventId}@${m.epoch}`);
      assert.equal(a.body.error?.code, 'fenced');
    }
    assert.equal(seen.length, 0);
    // The current epoch is accepted.
    const ok = feedRequest('ev-fence', feedRequestHeaders(SECRET, metaFor('ev-fence', newer.epoch)));
    ok.end();
    assert.equal((await ok.answer).status, 200);
  });

  it('answers 503 origin_full at capacity; a new feed of an event it carries replaces the old one', async () => {
    capacity = 1;
    const m1 = await placed('ev-one');
    const f1 = feedRequest('ev-one', feedRequestHeaders(SECRET, m1));
    f1.write(bytes(100, 1));
    await waitFor('first feed', () => seen.length === 1);
    const m2 = await placed('ev-two');
    const full = await feedRequest('ev-two', feedRequestHeaders(SECRET, m2)).answer;
    assert.equal(full.status, 503);
    assert.equal(full.body.error?.code, 'origin_full');
    // The same event again (a republish placed anew): the old feed ends, the new one runs.
    const m1b = await placed('ev-one');
    const f1b = feedRequest('ev-one', feedRequestHeaders(SECRET, m1b));
    f1b.write(bytes(100, 2));
    const old = await f1.answer;
    assert.equal(old.status, 409);
    assert.equal(old.body.error?.code, 'fenced');
    await waitFor('second feed', () => seen.length === 2);
    assert.equal(seen[0]!.ended, 1);
    assert.equal(seen[1]!.ended, 0);
    assert.equal(receiver.liveEvents(), 1);
    f1b.end();
    assert.equal((await f1b.answer).status, 200);
  });

  it('closes a running feed (409) when the placement moves on without this origin, and keeps it when it stays', async () => {
    const meta = await placed('ev-move');
    const f = feedRequest('ev-move', feedRequestHeaders(SECRET, meta));
    f.write(bytes(100, 1));
    await waitFor('feed', () => seen.length === 1);
    // origin-b is swapped: a newer epoch that still lists this origin.
    const kept = await placements.replace('ev-move', meta.epoch, ['origin-b']);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(seen[0]!.ended, 0);
    f.write(bytes(100, 2));
    await waitFor('bytes', () => Buffer.concat(seen[0]!.chunks).length === 200);
    // Now this origin is swapped out.
    await placements.replace('ev-move', kept.epoch, [ME]);
    const a = await f.answer;
    assert.equal(a.status, 409);
    assert.equal(a.body.error?.code, 'fenced');
    assert.equal(seen[0]!.ended, 1);
    assert.equal(receiver.carries('ev-move'), false);
  });

  it('ends the feed when the ingest connection is lost', async () => {
    const meta = await placed('ev-lost');
    const f = feedRequest('ev-lost', feedRequestHeaders(SECRET, meta));
    f.write(bytes(100, 1));
    await waitFor('feed', () => seen.length === 1);
    f.req.destroy();
    await waitFor('ended', () => seen[0]!.ended === 1);
    assert.equal(receiver.liveEvents(), 0);
  });

  it('leaves other paths to the next handler', async () => {
    const r = await fetch(`${base}/live/ev/master.m3u8`);
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as { error: { message: string } }).error.message, 'not here');
  });
});
