// The /api/v1 control routes over a real store and HTTP server: every route's auth (401 / 403 role / 403 CSRF),
// unknown-field validation, happy paths, and the OpenAPI document (valid, covering every route of the router).
// Over SQLite; control-plane.postgres.test.ts runs the same over PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import express from 'express';
import { Validator } from '@seriousme/openapi-schema-validator';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import type { Db } from '../lib/store/db.ts';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { listen, closeServer } from '../lib/http.ts';
import { createMemoryBus } from '../lib/bus/memory-bus.ts';
import { EventService } from './events.ts';
import { randomBytes } from 'node:crypto';
import { createKeySealer } from '../lib/key-seal.ts';
import { createApiRouter } from './api.ts';
import { createControlPlane, type ControlPlane } from './control-plane.ts';
import { openApiPath } from './api-routes.ts';
import { signalsChannel, decodeViewerSignal, type ViewerSignal } from '../chat/viewer-signals.ts';
import type { DateRange } from '../origin/playlist.ts';
import { CommentStore } from '../chat/comments.ts';
import { ModerationService } from '../chat/moderation.ts';
import { ViewerTokens } from '../chat/viewer-tokens.ts';
import { createMemoryRateLimiter } from '../lib/rate-limit/token-bucket.ts';
import { chatChannel, decodeChatMessage, type ChatBusMessage } from '../chat/channel.ts';
import type { Service } from '../lib/lifecycle.ts';
import { createIngestCommandReceiver } from '../ingest/command-receiver.ts';
import { createOriginCommandReceiver } from '../origin/command-receiver.ts';
import type { DateRangeTarget } from '../origin/ad-breaks.ts';

let testStore: TestStore;
let db: Db;
let server: Server;
let base: string;
let control: ControlPlane;
let events: EventService;
const disconnected: string[] = [];
const receivers: Service[] = [];
const live = new Set<string>();
const packagers = new Map<string, { setDateRange(d: DateRange): void; ranges: DateRange[] }>();
const signals: ViewerSignal[] = [];
let eventId: string;
let adminToken: string;
let moderatorToken: string;
let adminCookie: string;
let adminCsrf: string;
let comments: CommentStore;
const viewerTokens = new ViewerTokens(Buffer.alloc(32, 3), 3600);
const chatMessages: ChatBusMessage[] = [];

async function call(method: string, path: string, opts: { token?: string; cookie?: string; csrf?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.csrf) headers['x-csrf-token'] = opts.csrf;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method: method.toUpperCase(),
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let json: { error?: { code: string; message: string } } & Record<string, unknown> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, headers: res.headers };
}

before(async () => {
  testStore = await createTestStore('control');
  db = await testStore.open();
  // Webhook receivers here are on loopback, refused unless allowed.
  const config = configSchema.parse({
    dataDir: testStore.dir,
    loginMaxFailures: 3,
    webhookRetryBaseMs: 50,
    webhookAllowCidrs: ['127.0.0.0/8'],
  });
  const logger = createLogger('silent');
  events = new EventService(db, { sealer: createKeySealer(randomBytes(32)) });
  const bus = createMemoryBus();
  await bus.start();
  control = createControlPlane({
    config,
    logger,
    registry: createMetricsRegistry(),
    db,
    events,
    bus,
    origin: { stream: (id) => (live.has(id) ? { publishing: true, transcodeStats: undefined } : undefined) },
    viewerCount: () => 42,
    chat: {
      tokens: viewerTokens,
      comments: (comments = new CommentStore(db)),
      moderation: new ModerationService(comments, bus),
      limiter: createMemoryRateLimiter(),
    },
  });
  // The ingest and origin of this "process": they get the operator's commands over the same in-process bus.
  receivers.push(
    createIngestCommandReceiver({
      bus,
      logger,
      nodeId: 'ingest-a',
      publishers: { holderProtocol: (id) => (live.has(id) ? 'rtmp' : undefined) },
      disconnect: (id) => (disconnected.push(id), true),
    }),
    createOriginCommandReceiver({
      bus,
      logger,
      nodeId: 'origin-a',
      stream: (id) => (live.has(id) ? { packagers: packagers as unknown as Map<string, DateRangeTarget> } : undefined),
    }),
  );
  for (const r of receivers) await r.start(new AbortController().signal);
  await control.start();
  const app = express();
  app.use('/api/v1', createApiRouter(control.router));
  server = createServer(app);
  base = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;

  await control.operators.create({ email: 'admin@example.com', role: 'admin', password: 'admin-password-1' });
  const mod = await control.operators.create({ email: 'mod@example.com', role: 'moderator', password: 'moderator-pass-1' });
  const login = await call('post', '/api/v1/auth/login', { body: { email: 'admin@example.com', password: 'admin-password-1' } });
  assert.equal(login.status, 200);
  adminCookie = login.headers.get('set-cookie')!.split(';')[0]!;
  adminCsrf = login.json.csrfToken as string;
  const tok = await call('post', '/api/v1/auth/tokens', { cookie: adminCookie, csrf: adminCsrf, body: { name: 'tests' } });
  assert.equal(tok.status, 201);
  adminToken = tok.json.token as string;
  moderatorToken = (await control.auth.createToken(mod.id, 'mod')).token;
  const created = await call('post', '/api/v1/events', { token: adminToken, body: { title: 'Control test' } });
  assert.equal(created.status, 201);
  eventId = (created.json.event as { id: string }).id;
  for (const r of ['720p', '480p', '360p']) {
    const ranges: DateRange[] = [];
    packagers.set(r, { ranges, setDateRange: (d) => void ranges.splice(0, ranges.length, ...ranges.filter((x) => x.id !== d.id), d) });
  }
  await bus.subscribe(chatChannel(eventId), (m) => {
    const c = decodeChatMessage(m);
    if (c) chatMessages.push(c);
  });
  await bus.subscribe(signalsChannel(eventId), (m) => {
    const s = decodeViewerSignal(m);
    if (s) signals.push(s);
  });
});

after(async () => {
  await control?.stop();
  for (const r of receivers) await r.stop();
  await closeServer(server);
  await testStore?.cleanup();
});

/** A concrete URL for an express path. */
function urlOf(path: string): string {
  return '/api/v1' + path.replace(':id', eventId).replace(/:[A-Za-z]+/g, 'nope');
}

test('every non-public route answers 401 without a session or token, and with a bad token', async () => {
  const guarded = control.routes.filter((r) => r.access !== 'public');
  assert.ok(guarded.length >= 25, `${guarded.length} guarded routes`);
  for (const r of guarded) {
    const none = await call(r.method, urlOf(r.path), { body: r.hasBody ? {} : undefined });
    assert.equal(none.status, 401, `${r.method} ${r.path}`);
    assert.equal(none.json.error?.code, 'unauthenticated');
    const bad = await call(r.method, urlOf(r.path), { token: 'oat_' + 'x'.repeat(43), body: r.hasBody ? {} : undefined });
    assert.equal(bad.status, 401, `${r.method} ${r.path} bad token`);
  }
});

test('every admin route refuses a moderator with 403', async () => {
  const adminOnly = control.routes.filter((r) => r.access === 'admin');
  assert.ok(adminOnly.length >= 15);
  for (const r of adminOnly) {
    const res = await call(r.method, urlOf(r.path), { token: moderatorToken, body: r.hasBody ? {} : undefined });
    assert.equal(res.status, 403, `${r.method} ${r.path}`);
    assert.equal(res.json.error?.code, 'forbidden');
  }
  // …while operator routes let a moderator read.
  assert.equal((await call('get', `/api/v1/events/${eventId}/status`, { token: moderatorToken })).status, 200);
});

test('every unsafe route refuses a cookie session without the CSRF header (403 csrf_failed)', async () => {
  const unsafe = control.routes.filter((r) => r.access !== 'public' && r.method !== 'get');
  for (const r of unsafe) {
    const res = await call(r.method, urlOf(r.path), { cookie: adminCookie, body: r.hasBody ? {} : undefined });
    assert.equal(res.status, 403, `${r.method} ${r.path}`);
    assert.equal(res.json.error?.code, 'csrf_failed');
    const wrong = await call(r.method, urlOf(r.path), { cookie: adminCookie, csrf: 'wrong', body: r.hasBody ? {} : undefined });
    assert.equal(wrong.status, 403, `${r.method} ${r.path} wrong csrf`);
  }
  // GETs need no CSRF token with a cookie session.
  assert.equal((await call('get', '/api/v1/auth/me', { cookie: adminCookie })).json.csrfToken, adminCsrf);
});

test('every route with a body rejects unknown fields, and bad JSON, with 400', async () => {
  for (const r of control.routes.filter((x) => x.hasBody)) {
    const res = await call(r.method, urlOf(r.path), { token: adminToken, body: { surprise: true } });
    assert.equal(res.status, 400, `${r.method} ${r.path}`);
    assert.equal(res.json.error?.code, 'invalid_request');
    assert.match(res.json.error!.message, /surprise|Unrecognized|expected/i);
  }
  const raw = await fetch(`${base}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: '{"title":',
  });
  assert.equal(raw.status, 400);
  assert.equal(((await raw.json()) as { error: { code: string } }).error.code, 'invalid_json');
  const badStatus = await call('get', '/api/v1/events?status=bogus');
  assert.equal(badStatus.status, 400);
  const badDuration = await call('post', `/api/v1/events/${eventId}/news-flashes`, {
    token: adminToken,
    body: { text: 'x', durationSec: 0 },
  });
  assert.equal(badDuration.status, 400);
  assert.match(badDuration.json.error!.message, /durationSec/);
});

test('login: wrong password 401, then rate limited (429 with Retry-After); logout ends the session', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await call('post', '/api/v1/auth/login', { body: { email: 'mod@example.com', password: 'wrong-password' } });
    assert.equal(r.status, 401);
    assert.equal(r.json.error?.code, 'invalid_credentials');
  }
  const limited = await call('post', '/api/v1/auth/login', { body: { email: 'mod@example.com', password: 'moderator-pass-1' } });
  assert.equal(limited.status, 429);
  assert.equal(limited.json.error?.code, 'rate_limited');
  assert.ok(Number(limited.headers.get('retry-after')) > 0);
  // Another account from the same address still works.
  const other = await call('post', '/api/v1/auth/login', { body: { email: 'admin@example.com', password: 'admin-password-1' } });
  assert.equal(other.status, 200);
  const cookieHeader = other.headers.get('set-cookie')!;
  assert.match(cookieHeader, /HttpOnly/i);
  assert.match(cookieHeader, /SameSite=Strict/i);
  const cookie = cookieHeader.split(';')[0]!;
  assert.equal((await call('post', '/api/v1/auth/logout', { cookie, csrf: other.json.csrfToken as string })).status, 204);
  assert.equal((await call('get', '/api/v1/auth/me', { cookie })).status, 401);
});

test('events: CRUD, visibility, reveal-once, rotate (disconnects), end', async () => {
  const made = await call('post', '/api/v1/events', {
    cookie: adminCookie,
    csrf: adminCsrf,
    body: { title: 'Hidden show', description: 'd', slug: 'hidden-show', visibility: 'unlisted', scheduledStart: Date.now() + 3600_000 },
  });
  assert.equal(made.status, 201);
  const e = made.json.event as { id: string; slug: string; visibility: string };
  assert.equal(e.slug, 'hidden-show');
  assert.equal(
    (await call('post', '/api/v1/events', { token: adminToken, body: { title: 'Dup', slug: 'hidden-show' } })).json.error?.code,
    'slug_taken',
  );
  const pub = (await call('get', '/api/v1/events')).json.events as { id: string }[];
  assert.ok(!pub.some((x) => x.id === e.id), 'unlisted is not listed publicly');
  assert.equal((await call('get', `/api/v1/events/by-slug/hidden-show`)).status, 200, 'but reachable by URL');
  const byId = (await call('get', `/api/v1/events/${e.id}`)).json.event as Record<string, unknown>;
  assert.ok(!('placement' in byId), 'no placement field without a placement source (all-in-one)');
  const consoleList = (await call('get', '/api/v1/console/events', { token: moderatorToken })).json.events as { id: string }[];
  assert.ok(consoleList.some((x) => x.id === e.id));
  const patched = await call('patch', `/api/v1/events/${e.id}`, { token: adminToken, body: { visibility: 'public', title: 'Shown' } });
  assert.equal(patched.status, 200);
  assert.equal((patched.json.event as { title: string }).title, 'Shown');

  const reveal = await call('post', `/api/v1/events/${e.id}/stream-key/reveal`, { token: adminToken });
  assert.equal(reveal.status, 200);
  const key = reveal.json.streamKey as string;
  assert.equal(await events.authorize(key), e.id);
  // The SRT URL carries the key in its stream id (default port 8890).
  assert.equal(reveal.json.srtUrl, `srt://localhost:8890?streamid=publish:${key}`);
  const again = await call('post', `/api/v1/events/${e.id}/stream-key/reveal`, { token: adminToken });
  assert.equal(again.status, 409);
  assert.equal(again.json.error?.code, 'key_already_revealed');

  live.add(e.id);
  const rotated = await call('post', `/api/v1/events/${e.id}/stream-key/rotate`, { token: adminToken });
  assert.equal(rotated.status, 200);
  assert.equal(rotated.json.disconnected, true);
  assert.ok(disconnected.includes(e.id));
  assert.equal(await events.authorize(key), undefined, 'old key revoked');
  const newKey = rotated.json.streamKey as string;
  assert.equal(await events.authorize(newKey), e.id);
  assert.equal(rotated.json.srtUrl, `srt://localhost:8890?streamid=publish:${newKey}`);

  assert.equal((await call('delete', `/api/v1/events/${e.id}`, { token: adminToken })).status, 409, 'live event cannot be deleted');
  const ended = await call('post', `/api/v1/events/${e.id}/end`, { token: adminToken });
  assert.equal(ended.status, 200);
  assert.equal((ended.json.event as { status: string }).status, 'ended');
  assert.equal(await events.authorize(newKey), undefined, 'no key works after the end');
  assert.equal((await call('post', `/api/v1/events/${e.id}/end`, { token: adminToken })).status, 409);
  live.delete(e.id);
  await control.setStatus(e.id, 'offline');
  assert.equal((await events.byId(e.id))!.status, 'ended', 'ended stays ended');
  assert.equal((await call('delete', `/api/v1/events/${e.id}`, { token: adminToken })).status, 204);
  assert.equal((await call('get', `/api/v1/events/${e.id}`)).status, 404);
});

test('events: the ladder preset is chosen at creation, changed by PATCH, and a bad one is refused with 400', async () => {
  const made = await call('post', '/api/v1/events', { token: adminToken, body: { title: 'Radio hour', ladderPreset: 'audio' } });
  assert.equal(made.status, 201);
  const e = made.json.event as { id: string; ladderPreset: string | null };
  assert.equal(e.ladderPreset, 'audio');
  const plain = await call('post', '/api/v1/events', { token: adminToken, body: { title: 'No preset given' } });
  assert.equal((plain.json.event as { ladderPreset: string | null }).ladderPreset, null, 'no server default set here: null follows it');
  const patched = await call('patch', `/api/v1/events/${e.id}`, { token: adminToken, body: { ladderPreset: 'passthrough' } });
  assert.equal(patched.status, 200);
  assert.equal((patched.json.event as { ladderPreset: string }).ladderPreset, 'passthrough');
  assert.equal((await events.byId(e.id))!.ladderPreset, 'passthrough');
  for (const body of [{ ladderPreset: 'ultra' }, { ladderPreset: null }]) {
    const bad = await call('patch', `/api/v1/events/${e.id}`, { token: adminToken, body });
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.equal(bad.json.error?.code, 'invalid_request');
  }
  assert.equal((await events.byId(e.id))!.ladderPreset, 'passthrough', 'a refused change leaves the preset as it was');
  const badCreate = await call('post', '/api/v1/events', { token: adminToken, body: { title: 'x', ladderPreset: 'source' } });
  assert.equal(badCreate.status, 400);
});

test('events: part target and GOP are set at creation and by PATCH; values that break the timing rules get a 400 saying why', async () => {
  const made = await call('post', '/api/v1/events', {
    token: adminToken,
    body: { title: 'Relaxed latency', partTargetSec: 0.5, gopSec: 2 },
  });
  assert.equal(made.status, 201);
  const e = made.json.event as { id: string; partTargetSec: number | null; gopSec: number | null };
  assert.deepEqual([e.partTargetSec, e.gopSec], [0.5, 2]);
  const plain = await call('post', '/api/v1/events', { token: adminToken, body: { title: 'Node timing' } });
  const p = plain.json.event as { id: string; partTargetSec: number | null; gopSec: number | null };
  assert.deepEqual([p.partTargetSec, p.gopSec], [null, null], 'null follows the node settings');
  const patched = await call('patch', `/api/v1/events/${e.id}`, { token: adminToken, body: { gopSec: 1 } });
  assert.equal(patched.status, 200);
  assert.deepEqual([(patched.json.event as typeof e).partTargetSec, (patched.json.event as typeof e).gopSec], [0.5, 1]);
  const cases: [string, unknown, RegExp][] = [
    [
      'post',
      { title: 'x', partTargetSec: 0.3 },
      /partTargetSec: 0\.3 s must split the segment target ONAIR_SEGMENT_TARGET_SEC \(2 s\) into 2 or more whole parts; write e\.g\. 1 or 0\.5/,
    ],
    ['post', { title: 'x', partTargetSec: 0.5, gopSec: 0.75 }, /gopSec: 0\.75 s must be a whole number of the part target \(0\.5 s\)/],
    ['post', { title: 'x', partTargetSec: 0.05 }, /body\.partTargetSec: .*0\.1/],
    ['post', { title: 'x', gopSec: '2' }, /body\.gopSec/],
    ['patch', { partTargetSec: 0.4 }, /gopSec: 1 s must be a whole number of the part target \(0\.4 s\)/],
    ['patch', { gopSec: 11 }, /body\.gopSec: .*10/],
  ];
  for (const [method, body, message] of cases) {
    const bad = await call(method, method === 'post' ? '/api/v1/events' : `/api/v1/events/${e.id}`, { token: adminToken, body });
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.equal(bad.json.error?.code, 'invalid_request');
    assert.match(String(bad.json.error?.message), message, JSON.stringify(body));
  }
  const after = await events.byId(e.id);
  assert.deepEqual([after?.partTargetSec, after?.gopSec], [0.5, 1], 'a refused change leaves the event as it was');
});

test('news flashes and disclaimers reach the bus and the overlays GET; clearing works', async () => {
  signals.length = 0;
  const nf = await call('post', `/api/v1/events/${eventId}/news-flashes`, {
    token: adminToken,
    body: { text: 'Breaking', severity: 'critical', durationSec: 30 },
  });
  assert.equal(nf.status, 201);
  const flash = nf.json.newsFlash as { id: string; expiresAt: number; at: number };
  assert.equal(flash.expiresAt - flash.at, 30_000);
  const dc = await call('put', `/api/v1/events/${eventId}/disclaimer`, { token: adminToken, body: { text: 'Contains flashing lights' } });
  assert.equal(dc.status, 200);
  const overlays = (await call('get', `/api/v1/events/${eventId}/overlays`)).json as {
    newsFlashes: { text: string }[];
    disclaimer: { text: string } | null;
  };
  assert.deepEqual(
    overlays.newsFlashes.map((f) => f.text),
    ['Breaking'],
  );
  assert.equal(overlays.disclaimer?.text, 'Contains flashing lights');
  assert.deepEqual(
    signals.map((s) => s.signal),
    ['news_flash', 'disclaimer'],
  );
  assert.equal((await call('delete', `/api/v1/events/${eventId}/news-flashes/${flash.id}`, { token: adminToken })).status, 204);
  assert.equal((await call('delete', `/api/v1/events/${eventId}/disclaimer`, { token: adminToken })).status, 204);
  assert.equal((await call('delete', `/api/v1/events/${eventId}/disclaimer`, { token: adminToken })).status, 404);
  const after = (await call('get', `/api/v1/events/${eventId}/overlays`)).json as { newsFlashes: unknown[]; disclaimer: unknown };
  assert.deepEqual(after.newsFlashes, []);
  assert.equal(after.disclaimer, null);
});

test('ad breaks: not live → 409; live → DATERANGE in every rendition, recorded with viewers, active for late joiners, ended early', async () => {
  assert.equal(
    (await call('post', `/api/v1/events/${eventId}/ad-breaks`, { token: adminToken, body: { durationSec: 30 } })).json.error?.code,
    'not_live',
  );
  await events.setStatus(eventId, 'live');
  live.add(eventId);
  const started = await call('post', `/api/v1/events/${eventId}/ad-breaks`, { token: adminToken, body: { durationSec: 30 } });
  assert.equal(started.status, 201);
  const ad = started.json.adBreak as { id: string; status: string; viewersAtStart: number };
  assert.equal(ad.status, 'active');
  assert.equal(ad.viewersAtStart, 42);
  assert.equal((started.json.adBreak as { markedRenditions?: number }).markedRenditions, 3, 'the origin acked its 3 renditions');
  const starts = [...packagers.values()].map((p) => p.ranges[0]?.startDateMs);
  assert.equal(new Set(starts).size, 1, 'same START-DATE in every rendition');
  assert.ok(starts[0]);
  assert.equal(
    (await call('post', `/api/v1/events/${eventId}/ad-breaks`, { token: adminToken, body: { durationSec: 10 } })).json.error?.code,
    'ad_break_overlap',
  );
  const active = (await call('get', `/api/v1/events/${eventId}/ad-breaks/active`)).json as {
    adBreak: { id: string };
    remainingSec: number;
  };
  assert.equal(active.adBreak.id, ad.id);
  assert.ok(active.remainingSec > 25 && active.remainingSec <= 30);
  const stopped = await call('delete', `/api/v1/events/${eventId}/ad-breaks/${ad.id}`, { token: adminToken });
  assert.equal(stopped.status, 200);
  assert.equal((stopped.json.adBreak as { status: string }).status, 'done');
  assert.equal((stopped.json.adBreak as { markedRenditions?: number }).markedRenditions, 3);
  for (const p of packagers.values()) assert.ok(p.ranges[0]?.scte35In, 'cue-in added everywhere');
  const scheduled = await call('post', `/api/v1/events/${eventId}/ad-breaks`, {
    token: adminToken,
    body: { durationSec: 20, startAt: Date.now() + 3600_000 },
  });
  assert.equal((scheduled.json.adBreak as { status: string }).status, 'scheduled');
  const list = (await call('get', `/api/v1/events/${eventId}/ad-breaks`, { token: moderatorToken })).json.adBreaks as { status: string }[];
  assert.deepEqual(
    list.map((x) => x.status),
    ['scheduled', 'done'],
  );
  assert.equal(
    (await call('delete', `/api/v1/events/${eventId}/ad-breaks/${(scheduled.json.adBreak as { id: string }).id}`, { token: adminToken }))
      .json.adBreak && true,
    true,
  );
  assert.ok(signals.some((s) => s.signal === 'ad_break_start') && signals.some((s) => s.signal === 'ad_break_end'));
  live.delete(eventId);
});

test('health: reports become samples with warnings, readable by GET', async () => {
  const report = {
    protocol: 'rtmp',
    bitrateKbps: 3000,
    fps: 30,
    keyframeIntervalSec: 4,
    width: 1280,
    height: 720,
    videoCodec: 'h264',
    audioCodec: 'aac',
    lateFrames: 0,
  };
  for (let i = 0; i < 3; i++) control.onIngestHealth(eventId, report);
  control.onIngestHealth(eventId, { ...report, bitrateKbps: 200 });
  const { samples } = (await call('get', `/api/v1/events/${eventId}/health`, { token: moderatorToken })).json as {
    samples: { warnings: { code: string }[] }[];
  };
  assert.equal(samples.length, 4);
  assert.deepEqual(
    samples[0]!.warnings.map((w) => w.code),
    ['keyframe_interval'],
  );
  assert.deepEqual(samples[3]!.warnings.map((w) => w.code).sort(), ['bitrate_collapse', 'keyframe_interval']);
  const viewers = (await call('get', `/api/v1/events/${eventId}/viewers`, { token: moderatorToken })).json as {
    samples: { viewers: number }[];
  };
  assert.equal(viewers.samples.at(-1)?.viewers, 42);
  const status = (await call('get', `/api/v1/events/${eventId}/status`, { token: moderatorToken })).json as {
    health: { bitrateKbps: number };
  };
  assert.equal(status.health.bitrateKbps, 200);
});

test('webhooks: admin CRUD and delivery log', async () => {
  const made = await call('post', '/api/v1/webhooks', {
    token: adminToken,
    body: { url: 'http://127.0.0.1:9/hook', events: ['event.ended'] },
  });
  assert.equal(made.status, 201);
  assert.match(made.json.secret as string, /^whsec_/);
  const id = (made.json.webhook as { id: string }).id;
  assert.equal(((await call('get', '/api/v1/webhooks', { token: adminToken })).json.webhooks as unknown[]).length, 1);
  assert.deepEqual((await call('get', `/api/v1/webhooks/${id}/deliveries`, { token: adminToken })).json.deliveries, []);
  assert.equal((await call('post', '/api/v1/webhooks', { token: adminToken, body: { url: 'ftp://x/y' } })).status, 400);
  for (const url of [
    'http://169.254.169.254/latest',
    'http://10.0.0.1/h',
    'http://[::1]:8080/h',
    'http://[fd00::1]/h',
    'http://192.168.0.10/h',
  ]) {
    const refused = await call('post', '/api/v1/webhooks', { token: adminToken, body: { url } });
    assert.equal(refused.status, 400, url);
    assert.equal(refused.json.error?.code, 'forbidden_destination', url);
    assert.match(refused.json.error!.message, /ONAIR_WEBHOOK_ALLOW_CIDRS/);
  }
  assert.equal((await call('delete', `/api/v1/webhooks/${id}`, { token: adminToken })).status, 204);
  assert.equal((await call('get', `/api/v1/webhooks/${id}/deliveries`, { token: adminToken })).status, 404);
});

test('operators: admins create and disable; disabled operators lose their tokens', async () => {
  const made = await call('post', '/api/v1/operators', {
    token: adminToken,
    body: { email: 'temp@example.com', role: 'moderator', password: 'temporary-pass' },
  });
  assert.equal(made.status, 201);
  const op = made.json.operator as { id: string };
  assert.equal(
    (
      await call('post', '/api/v1/operators', {
        token: adminToken,
        body: { email: 'temp@example.com', role: 'moderator', password: 'temporary-pass' },
      })
    ).status,
    409,
  );
  const { token } = await control.auth.createToken(op.id, 't');
  assert.equal((await call('get', '/api/v1/auth/me', { token })).status, 200);
  assert.equal((await call('delete', `/api/v1/operators/${op.id}`, { token: adminToken })).status, 204);
  assert.equal((await call('get', '/api/v1/auth/me', { token })).status, 401);
});

test('the OpenAPI document is valid and covers every route of the /api/v1 router', async () => {
  const res = await call('get', '/api/v1/openapi.json');
  assert.equal(res.status, 200);
  const doc = res.json as unknown as { paths: Record<string, Record<string, { security?: unknown[]; 'x-onair-role'?: string }>> };
  const result = await new Validator().validate(doc as unknown as Parameters<Validator['validate']>[0]);
  assert.equal(result.valid, true, JSON.stringify(result.errors)?.slice(0, 2000));

  // Walk the real router stack (createApiRouter with the control plane mounted) and check each route is documented.
  const api = createApiRouter(control.router);
  const found: { method: string; path: string }[] = [];
  const walk = (stack: { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[]) => {
    for (const layer of stack) {
      if (layer.route) for (const m of Object.keys(layer.route.methods)) found.push({ method: m, path: layer.route.path });
      else if (layer.handle?.stack) walk(layer.handle.stack as never);
    }
  };
  walk((api as unknown as { stack: never[] }).stack);
  assert.ok(found.length >= 30, `${found.length} routes found`);
  const missing = found.filter((r) => !doc.paths[openApiPath(r.path)]?.[r.method]);
  assert.deepEqual(missing, [], 'undocumented routes');
  // Body errors are documented where a body is taken, and the generic 500 everywhere.
  const loginOp = doc.paths['/api/v1/auth/login']!.post! as unknown as { responses: Record<string, { description: string }> };
  assert.match(loginOp.responses['400']!.description, /invalid_json/);
  assert.match(loginOp.responses['413']!.description, /too_large/);
  assert.match(loginOp.responses['415']!.description, /unsupported_charset/);
  assert.match(loginOp.responses['500']!.description, /internal/);
  assert.match(
    (doc.paths['/api/v1/webhooks']!.post! as unknown as { responses: Record<string, { description: string }> }).responses['400']!
      .description,
    /forbidden_destination/,
  );
  // Access is documented: public routes have no security requirement, the others do.
  for (const r of control.routes) {
    const op = doc.paths[openApiPath(r.path)]![r.method]!;
    assert.equal((op.security ?? []).length > 0, r.access !== 'public', `${r.method} ${r.path} security`);
    assert.equal(op['x-onair-role'], r.access, `${r.method} ${r.path} x-onair-role`);
  }
});

test('chat routes: operator-only moderator tokens, public history, operator moderation reaching the bus, full feed with hidden comments', async () => {
  // Viewer tokens are public; moderator tokens need an operator, admin tokens an admin.
  const v = await call('post', '/api/v1/viewers', { body: { displayName: 'Ada' } });
  assert.equal(v.status, 201);
  assert.equal((v.json.viewer as { role: string }).role, 'viewer');
  assert.equal((await call('post', '/api/v1/viewers', { body: { displayName: 'Mod', role: 'moderator' } })).status, 401);
  const modTok = await call('post', '/api/v1/viewers', { token: moderatorToken, body: { displayName: 'Mod', role: 'moderator' } });
  assert.equal(modTok.status, 201);
  assert.equal((modTok.json.viewer as { role: string }).role, 'moderator');
  assert.equal(
    (await call('post', '/api/v1/viewers', { token: moderatorToken, body: { displayName: 'Mod', role: 'admin' } })).json.error?.code,
    'forbidden',
  );
  assert.equal(
    (await call('post', '/api/v1/viewers', { cookie: adminCookie, body: { displayName: 'Adm', role: 'admin' } })).json.error?.code,
    'csrf_failed',
  );
  assert.equal(
    (await call('post', '/api/v1/viewers', { cookie: adminCookie, csrf: adminCsrf, body: { displayName: 'Adm', role: 'admin' } })).status,
    201,
  );
  assert.equal((await call('post', '/api/v1/viewers', { body: { displayName: '<b>' } })).json.error?.code, 'invalid_display_name');

  const viewer = viewerTokens.verify(v.json.token)!;
  const c1 = await comments.append(eventId, viewer, 'first');
  const c2 = await comments.append(eventId, viewer, 'spam');
  chatMessages.length = 0;
  const hide = await call('post', `/api/v1/events/${eventId}/moderation`, {
    token: moderatorToken,
    body: { action: 'hide', commentId: c2.id },
  });
  assert.equal(hide.status, 200);
  assert.deepEqual(hide.json, { ok: true });
  assert.equal(
    (await call('post', `/api/v1/events/${eventId}/moderation`, { token: moderatorToken, body: { action: 'hide', commentId: 'c_nope' } }))
      .status,
    404,
  );
  assert.equal(
    (await call('post', `/api/v1/events/${eventId}/moderation`, { token: moderatorToken, body: { action: 'slow_mode', seconds: -1 } }))
      .status,
    400,
  );
  assert.equal(
    (await call('post', `/api/v1/events/${eventId}/moderation`, { token: moderatorToken, body: { action: 'explode' } })).status,
    400,
  );
  const slow = await call('post', `/api/v1/events/${eventId}/moderation`, {
    cookie: adminCookie,
    csrf: adminCsrf,
    body: { action: 'slow_mode', seconds: 10 },
  });
  assert.deepEqual(slow.json, { ok: true, settings: { chatEnabled: true, slowModeSec: 10 } });
  assert.equal(
    (
      await call('post', `/api/v1/events/${eventId}/moderation`, {
        token: adminToken,
        body: { action: 'ban', viewerId: viewer.id, reason: 'spam' },
      })
    ).status,
    200,
  );
  const bans = (await call('get', `/api/v1/events/${eventId}/moderation/bans`, { token: moderatorToken })).json.bans as {
    viewerId: string;
    reason: string;
  }[];
  assert.deepEqual(
    bans.map((b) => [b.viewerId, b.reason]),
    [[viewer.id, 'spam']],
  );
  assert.equal(
    (await call('post', `/api/v1/events/${eventId}/moderation`, { token: adminToken, body: { action: 'unban', viewerId: viewer.id } }))
      .status,
    200,
  );
  assert.equal(await comments.isBanned(eventId, viewer.id), false);
  await new Promise((r) => setImmediate(r)); // the memory bus delivers on a microtask
  assert.deepEqual(
    chatMessages.map((m) => m.t),
    ['remove', 'settings', 'ban', 'unban'],
    'every action, unban included, reaches the bus',
  );

  // Public history leaves the hidden comment out; the moderators' feed has it, flagged, paged by seq.
  const pub = (await call('get', `/api/v1/events/${eventId}/comments`)).json as { comments: { id: string }[] };
  assert.deepEqual(
    pub.comments.map((c) => c.id),
    [c1.id],
  );
  assert.equal((await call('get', `/api/v1/events/${eventId}/comments?limit=0`)).status, 400);
  const page1 = (await call('get', `/api/v1/events/${eventId}/moderation/comments?limit=1`, { token: moderatorToken })).json as {
    comments: { id: string; hidden: boolean }[];
    hasMore: boolean;
    nextAfter: number;
    settings: { slowModeSec: number };
  };
  assert.deepEqual(
    page1.comments.map((c) => [c.id, c.hidden]),
    [[c1.id, false]],
  );
  assert.equal(page1.hasMore, true);
  assert.equal(page1.settings.slowModeSec, 10);
  const page2 = (await call('get', `/api/v1/events/${eventId}/moderation/comments?after=${page1.nextAfter}`, { token: moderatorToken }))
    .json as typeof page1;
  assert.deepEqual(
    page2.comments.map((c) => [c.id, c.hidden]),
    [[c2.id, true]],
  );
  assert.equal(page2.hasMore, false);
  assert.equal((await call('get', `/api/v1/events/${eventId}/moderation/comments`)).status, 401);
});

test('viewer totals from the gateway become viewer history; joiners overlays come from the same services', async () => {
  control.onViewerCount(eventId, 7);
  control.onViewerCount(eventId, 7); // unchanged within the sampling period: one sample
  control.onViewerCount(eventId, 9);
  const samples = (await call('get', `/api/v1/events/${eventId}/viewers`, { token: moderatorToken })).json.samples as { viewers: number }[];
  assert.deepEqual(
    samples.slice(-2).map((x) => x.viewers),
    [7, 9],
  );
  assert.equal(samples.filter((x) => x.viewers === 7).length, 1);
  const nf = await call('post', `/api/v1/events/${eventId}/news-flashes`, {
    token: adminToken,
    body: { text: 'Snapshot', durationSec: 60 },
  });
  const o = (await control.viewerOverlays(eventId))!;
  assert.deepEqual(
    o.newsFlashes.map((f) => f.id),
    [(nf.json.newsFlash as { id: string }).id],
  );
  assert.ok(o.newsFlashes[0]!.remainingSec > 50 && o.newsFlashes[0]!.remainingSec <= 60);
  assert.equal(o.adBreak, null);
  assert.equal(typeof o.eventStatus, 'string');
  assert.equal(await control.viewerOverlays('nosuchevent'), undefined);
});
