// End to end through the real CLI: operator created by `onair operator create` (password on stdin), login,
// event + reveal-once key over the API, a real ffmpeg publish → signed webhooks (a failing receiver retried),
// live ingest health (GET and SSE), news flash and ad break reaching WebSocket viewers (and late joiners' welcome),
// viewer history from the gateway's counts, ad break DATERANGE in every rendition, operator moderation hiding a
// comment for every viewer, key rotation disconnecting the publisher, end stream (signalled to viewers).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import HLS from 'hls-parser';
import { runCli, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { verifyWebhookSignature } from '../../control/webhooks.ts';
import { listen, closeServer } from '../../lib/http.ts';
import { connectClient, type ServerMessage, type TestClient } from '../support/ws-test-client.ts';

let server: ServerUnderTest;
let receiver: Server;
let receiverUrl: string;
const hooks: { path: string; body: string; signature?: string; type?: string }[] = [];
let failNext = 1;
let publisher: ReturnType<typeof publishTestStream> | undefined;
let token: string;
let eventId: string;
let streamKey: string;
let secret: string;
const wsClients: TestClient[] = [];
/** A WebSocket viewer connected before the operator acts. */
let watcher: TestClient;

/** Joins the event's chat WebSocket as a new viewer (token from POST /api/v1/viewers). */
async function joinWs(displayName: string): Promise<TestClient> {
  const v = await fetch(server.base + '/api/v1/viewers', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ displayName }),
  });
  assert.equal(v.status, 201);
  const c = await connectClient(`ws://127.0.0.1:${server.httpPort}/ws?event=${eventId}`, {
    token: ((await v.json()) as { token: string }).token,
  });
  wsClients.push(c);
  return c;
}

/** The signals a client received in batches. */
const signalsOf = (c: TestClient, from = 0) =>
  c.messages
    .slice(from)
    .flatMap((m: ServerMessage) =>
      m.type === 'batch' && Array.isArray(m.signals) ? (m.signals as { signal: string; [k: string]: unknown }[]) : [],
    );

async function api(method: string, path: string, body?: unknown, auth: Record<string, string> = { authorization: `Bearer ${token}` }) {
  const res = await fetch(server.base + '/api/v1' + path, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: (text ? JSON.parse(text) : {}) as Record<string, unknown> & { error?: { code: string } },
    headers: res.headers,
  };
}

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push({
        path: req.url ?? '',
        body,
        signature: req.headers['x-onair-signature'] as string,
        type: req.headers['x-onair-event'] as string,
      });
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end();
      } else res.writeHead(200).end('ok');
    });
  });
  receiverUrl = `http://127.0.0.1:${await listen(receiver, 0, '127.0.0.1')}`;
  // The webhook receiver is on loopback, which webhooks refuse unless allowed.
  server = await startServer({
    ONAIR_HEALTH_INTERVAL_SEC: '1',
    ONAIR_WEBHOOK_RETRY_BASE_MS: '300',
    ONAIR_RECONNECT_WINDOW_SEC: '2',
    ONAIR_WEBHOOK_ALLOW_CIDRS: '127.0.0.0/8',
  });
});

after(async () => {
  for (const c of wsClients) await c.close().catch(() => undefined);
  publisher?.child.kill('SIGKILL');
  await server?.stop();
  await closeServer(receiver);
});

test('operator create (password on stdin), login with cookie + CSRF, bearer token', async () => {
  const made = await runCli(server, ['operator', 'create', '--email', 'ops@example.com', '--role', 'admin'], 'correct horse battery\n');
  assert.equal(made.code, 0, made.out);
  assert.ok(!server.log().includes('correct horse battery'));
  const bad = await runCli(server, ['operator', 'create', '--email', 'x@example.com', '--role', 'janitor'], 'whatever-long\n');
  assert.equal(bad.code, 2);

  const login = await api('POST', '/auth/login', { email: 'ops@example.com', password: 'correct horse battery' }, {});
  assert.equal(login.status, 200);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const csrf = login.json.csrfToken as string;
  assert.equal((await api('POST', '/auth/tokens', { name: 'e2e' }, { cookie })).status, 403, 'CSRF header required');
  const tok = await api('POST', '/auth/tokens', { name: 'e2e' }, { cookie, 'x-csrf-token': csrf });
  assert.equal(tok.status, 201);
  token = tok.json.token as string;
  assert.ok(!server.log().includes(token), 'token not logged');
});

test('webhook + event + reveal-once key, then a real publish: event.live is delivered signed (after a retry)', async () => {
  const hook = await api('POST', '/webhooks', { url: `${receiverUrl}/hook` });
  assert.equal(hook.status, 201);
  secret = hook.json.secret as string;
  const made = await api('POST', '/events', { title: 'Control e2e', description: 'ops' });
  assert.equal(made.status, 201);
  eventId = (made.json.event as { id: string }).id;
  const reveal = await api('POST', `/events/${eventId}/stream-key/reveal`);
  assert.equal(reveal.status, 200);
  streamKey = reveal.json.streamKey as string;
  assert.equal((await api('POST', `/events/${eventId}/stream-key/reveal`)).json.error?.code, 'key_already_revealed');

  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${streamKey}`,
    durationSec: 150,
    width: 854,
    height: 480,
  });
  const live = await waitFor(
    'signed event.live delivered after a failed attempt',
    () => {
      const got = hooks.filter((h) => h.type === 'event.live');
      return got.length >= 2 ? got : undefined;
    },
    40_000,
    200,
  );
  assert.equal(live[0]!.body, live[1]!.body, 'the retry carries the same delivery');
  for (const h of live) assert.ok(verifyWebhookSignature(secret, h.signature, h.body));
  const payload = JSON.parse(live[1]!.body) as { type: string; data: { event: { id: string; status: string } } };
  assert.equal(payload.data.event.id, eventId);
  assert.equal(payload.data.event.status, 'live');
  const hookId = (hook.json.webhook as { id: string }).id;
  const log = await waitFor('delivery log', async () => {
    const d = (await api('GET', `/webhooks/${hookId}/deliveries`)).json.deliveries as { status: string; attempts: number }[];
    return d[0]?.status === 'delivered' ? d : undefined;
  });
  assert.equal(log[0]!.attempts, 2);
});

test('ingest health arrives every second (GET and SSE) with bitrate, fps, resolution, codecs and ffmpeg speed', async () => {
  const sample = await waitFor(
    'health sample with ffmpeg speed',
    async () => {
      const s = ((await api('GET', `/events/${eventId}/health`)).json.samples as Record<string, unknown>[]).at(-1);
      return s && s.transcodeSpeed !== null && (s.bitrateKbps as number) > 0 ? s : undefined;
    },
    30_000,
    500,
  );
  assert.equal(sample.width, 854);
  assert.equal(sample.height, 480);
  assert.equal(sample.videoCodec, 'h264');
  assert.equal(sample.audioCodec, 'aac');
  assert.ok((sample.fps as number) > 15, `fps ${String(sample.fps)}`);
  assert.ok((sample.transcodeSpeed as number) > 0);

  const ctrl = new AbortController();
  const res = await fetch(`${server.base}/api/v1/events/${eventId}/health/stream`, {
    headers: { authorization: `Bearer ${token}` },
    signal: ctrl.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  const started = Date.now();
  const countEvents = () => (text.match(/event: health\n/g) ?? []).length;
  const initial = await waitFor('history on connect', async () => {
    text += new TextDecoder().decode((await reader.read()).value);
    return countEvents() > 0 ? countEvents() : undefined;
  });
  await waitFor(
    'a live sample after connecting',
    async () => {
      text += new TextDecoder().decode((await reader.read()).value);
      return countEvents() > initial ? true : undefined;
    },
    10_000,
  );
  assert.ok(Date.now() - started < 10_000);
  ctrl.abort();
});

test('news flash: a connected WebSocket viewer gets it at once; late joiners get it in welcome and through the overlays GET', async () => {
  watcher = await joinWs('Watcher');
  const from = watcher.messages.length;
  const nf = await api('POST', `/events/${eventId}/news-flashes`, { text: 'Breaking news', severity: 'warning', durationSec: 60 });
  assert.equal(nf.status, 201);
  const id = (nf.json.newsFlash as { id: string }).id;
  // One flush window (200 ms) plus the bus hop; bounded generously for a shared machine.
  await waitFor('news flash on the WebSocket', () => signalsOf(watcher, from).find((s) => s.signal === 'news_flash'), 2_000, 20);
  const got = signalsOf(watcher, from).find((s) => s.signal === 'news_flash') as unknown as {
    flash: { id: string; text: string; severity: string; remainingSec: number };
  };
  assert.equal(got.flash.id, id);
  assert.equal(got.flash.text, 'Breaking news');
  assert.equal(got.flash.severity, 'warning');
  assert.ok(got.flash.remainingSec > 50 && got.flash.remainingSec <= 60, `remainingSec ${got.flash.remainingSec}`);
  const late = await joinWs('Late');
  const welcome = late.messages.find((m) => m.type === 'welcome') as {
    overlays?: { newsFlashes: { id: string }[]; eventStatus: string; adBreak: unknown };
  };
  assert.deepEqual(
    welcome.overlays?.newsFlashes.map((f) => f.id),
    [id],
  );
  assert.equal(welcome.overlays?.eventStatus, 'live');
  assert.equal(welcome.overlays?.adBreak, null);
  const overlays = await fetch(`${server.base}/api/v1/events/${eventId}/overlays`).then(
    (r) => r.json() as Promise<{ newsFlashes: { text: string }[] }>,
  );
  assert.deepEqual(
    overlays.newsFlashes.map((f) => f.text),
    ['Breaking news'],
  );
});

test('viewer counts from the WebSocket gateway appear in the viewer history', async () => {
  const history = await waitFor(
    'viewer history with the connected viewers',
    async () => {
      const samples = (await api('GET', `/events/${eventId}/viewers`)).json.samples as { at: number; viewers: number }[];
      return samples.some((s) => s.viewers >= 2) ? samples : undefined;
    },
    15_000,
    250,
  );
  assert.ok(history.every((s) => Number.isInteger(s.viewers) && s.at > 0));
  const listed = (await api('GET', '/console/events')).json.events as { id: string; viewers: number | null }[];
  assert.ok((listed.find((e) => e.id === eventId)?.viewers ?? 0) >= 2, 'console events list shows the live count');
  assert.ok(((await api('GET', `/events/${eventId}/status`)).json.viewers as number) >= 2, 'event status shows it too');
});

test('ad break: DATERANGE with CLASS, START-DATE, PLANNED-DURATION and SCTE35-OUT in every rendition, same instant', async () => {
  const master = HLS.parse(await (await fetch(`${server.base}/live/${eventId}/master.m3u8`)).text()) as HLS.types.MasterPlaylist;
  const uris = master.variants.map((v) => new URL(v.uri, `${server.base}/live/${eventId}/master.m3u8`).href);
  assert.ok(uris.length >= 2, `${uris.length} renditions`);
  const from = watcher.messages.length;
  const ad = await api('POST', `/events/${eventId}/ad-breaks`, { durationSec: 15 });
  assert.equal(ad.status, 201);
  const start = (await waitFor(
    'ad break start on the WebSocket',
    () => signalsOf(watcher, from).find((s) => s.signal === 'ad_break_start'),
    2_000,
    20,
  )) as unknown as {
    adBreak: { id: string; durationSec: number; remainingSec: number; creativeUrl: string | null };
  };
  assert.equal(start.adBreak.id, (ad.json.adBreak as { id: string }).id);
  assert.equal(start.adBreak.durationSec, 15);
  assert.ok(start.adBreak.remainingSec > 10 && start.adBreak.remainingSec <= 15, `remainingSec ${start.adBreak.remainingSec}`);
  const midBreak = await joinWs('MidBreak');
  const snapshot = (
    midBreak.messages.find((m) => m.type === 'welcome') as { overlays?: { adBreak: { id: string; remainingSec: number } | null } }
  ).overlays;
  assert.equal(snapshot?.adBreak?.id, start.adBreak.id, 'a viewer joining mid-break gets the rest of it');
  assert.ok(snapshot!.adBreak!.remainingSec <= start.adBreak.remainingSec);
  const seq = (ad.json.adBreak as { seq: number }).seq;
  const lines = await Promise.all(
    uris.map((u) =>
      waitFor(
        `DATERANGE in ${u}`,
        async () => {
          const text = await (await fetch(u)).text();
          return text.split('\n').find((l) => l.startsWith('#EXT-X-DATERANGE:') && l.includes(`ID="ad-${seq}"`));
        },
        10_000,
        200,
      ),
    ),
  );
  for (const l of lines) {
    assert.match(l, /CLASS="com\.onair\.ad-break"/);
    assert.match(l, /START-DATE="[^"]+"/);
    assert.match(l, /PLANNED-DURATION=15\.000/);
    assert.match(l, /SCTE35-OUT=0xFC[0-9A-F]+/);
  }
  assert.equal(new Set(lines).size, 1, 'identical DATERANGE (same START-DATE) in every rendition');
  const active = await fetch(`${server.base}/api/v1/events/${eventId}/ad-breaks/active`).then(
    (r) => r.json() as Promise<{ adBreak: { seq: number } | null; remainingSec: number }>,
  );
  assert.equal(active.adBreak?.seq, seq);
  assert.ok(active.remainingSec > 0);
  const list = (await api('GET', `/events/${eventId}/ad-breaks`)).json.adBreaks as { viewersAtStart: number | null; durationSec: number }[];
  assert.equal(list[0]!.durationSec, 15);
  assert.ok((list[0]!.viewersAtStart ?? 0) >= 2, `viewersAtStart ${list[0]!.viewersAtStart}`);
});

test('moderation with an operator token hides a comment for every viewer; chat off reaches them too', async () => {
  const poster = await joinWs('Poster');
  poster.send({ type: 'comment', text: 'buy cheap stuff', ref: 'spam' });
  const ack = (await poster.waitFor((m) => m.type === 'ack' && m.ref === 'spam', 'ack')) as unknown as { id: string };
  await waitFor('comment delivered', () => watcher.comments().find((c) => c.id === ack.id), 5_000, 20);
  const fromW = watcher.messages.length;
  const fromP = poster.messages.length;
  const hide = await api('POST', `/events/${eventId}/moderation`, { action: 'hide', commentId: ack.id });
  assert.equal(hide.status, 200);
  for (const [c, from] of [
    [watcher, fromW],
    [poster, fromP],
  ] as const) {
    await c.waitFor(
      (m) => m.type === 'batch' && Array.isArray(m.removed) && (m.removed as string[]).includes(ack.id),
      'removed',
      5_000,
      from,
    );
  }
  const pub = (await fetch(`${server.base}/api/v1/events/${eventId}/comments`).then((r) => r.json())) as { comments: { id: string }[] };
  assert.ok(!pub.comments.some((c) => c.id === ack.id), 'gone from the public history');
  const feed = (await api('GET', `/events/${eventId}/moderation/comments`)).json.comments as { id: string; hidden: boolean }[];
  assert.equal(feed.find((c) => c.id === ack.id)?.hidden, true, 'still in the moderators feed, flagged');
  assert.equal((await api('POST', `/events/${eventId}/moderation`, { action: 'chat', enabled: false })).status, 200);
  await watcher.waitFor(
    (m) => m.type === 'batch' && (m.settings as { chatEnabled?: boolean } | undefined)?.chatEnabled === false,
    'chat off',
    5_000,
    fromW,
  );
  assert.equal((await api('POST', `/events/${eventId}/moderation`, { action: 'chat', enabled: true })).status, 200);
  assert.equal((await api('POST', `/events/${eventId}/moderation`, { action: 'hide', commentId: ack.id }, {})).status, 401);
});

test('key rotation disconnects the publisher and the old key is refused; end stream ends the event', async () => {
  const rotated = await api('POST', `/events/${eventId}/stream-key/rotate`);
  assert.equal(rotated.status, 200);
  assert.equal(rotated.json.disconnected, true);
  const code = await Promise.race([publisher!.done, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
  assert.notEqual(code, 'still running', 'publisher was disconnected');
  const old = await publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${streamKey}`,
    durationSec: 5,
    width: 320,
    height: 180,
  }).done;
  assert.notEqual(old, 0, 'old key refused');

  const ended = await api('POST', `/events/${eventId}/end`);
  assert.equal(ended.status, 200);
  assert.equal((ended.json.event as { status: string }).status, 'ended');
  await waitFor(
    'ended signalled to the WebSocket viewer',
    () => signalsOf(watcher).find((s) => s.signal === 'event_status' && s.status === 'ended'),
    5_000,
    20,
  );
  const again = await publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${rotated.json.streamKey as string}`,
    durationSec: 5,
    width: 320,
    height: 180,
  }).done;
  assert.notEqual(again, 0, 'the new key no longer works either');
  const endedHook = await waitFor('event.ended webhook', () => hooks.find((h) => h.type === 'event.ended'), 15_000);
  assert.ok(verifyWebhookSignature(secret, endedHook.signature, endedHook.body));
  assert.equal((await api('GET', `/events/${eventId}/status`)).json.status, 'ended');
  assert.ok(!server.log().includes(streamKey), 'stream key never logged');
});
