// k6 load test of onair viewers: master → variant → (LL-HLS) blocking playlist reloads + parts, or (classic HLS)
// playlist reloads + segments, every request tagged with its type; and chat users on the WebSocket (hello, a
// comment every COMMENT_SEC, reactions, their own comments' ack and delivery times). Run through `npm run loadtest:k6`.
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e EVENT_ID=<id> [-e VUS=20 -e DURATION=30s -e SESSION_SEC=20]
//          [-e CHAT_VUS=5 -e COMMENT_SEC=2 -e VIEWER_TOKEN_SECRET=<the server's ONAIR_VIEWER_TOKEN_SECRET>] scripts/k6/viewers.js
// Without VIEWER_TOKEN_SECRET each chat VU gets its token once from POST /api/v1/viewers, which allows a burst of 10
// per address; with it, the VUs sign their own (as many as needed). Chat limits are per viewer and per address:
// from one load machine, raise ONAIR_CHAT_IP_FACTOR and ONAIR_WS_MAX_CONNECTIONS_PER_IP on the server under test.
/* global __ENV, __VU */
import http from 'k6/http';
import ws from 'k6/ws';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { check, sleep } from 'k6';
import { Trend, Counter, Rate } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const EVENT_ID = __ENV.EVENT_ID;
const VUS = Number(__ENV.VUS || 20);
const DURATION = __ENV.DURATION || '30s';
/** How long one viewer session lasts before the viewer "leaves" and a new one starts at the master playlist. */
const SESSION_SEC = Number(__ENV.SESSION_SEC || 20);
/** Share of viewers in low-latency mode (parts); the rest play classic HLS (segments). */
const LL_SHARE = Number(__ENV.LL_SHARE || 0.5);
/** Chat users (WebSocket), besides the HLS viewers; 0 for none. */
const CHAT_VUS = __ENV.CHAT_VUS === undefined ? Math.ceil(VUS / 4) : Number(__ENV.CHAT_VUS);
/** Seconds between two comments of one chat user (the server's default allows 1/s per viewer). */
const COMMENT_SEC = Number(__ENV.COMMENT_SEC || 2);
const VIEWER_TOKEN_SECRET = __ENV.VIEWER_TOKEN_SECRET;
const REACTIONS = ['heart', 'clap', 'laugh', 'wow', 'fire', 'party'];

if (!EVENT_ID) throw new Error('EVENT_ID is required (-e EVENT_ID=<event id>)');

const llVus = Math.max(1, Math.round(VUS * LL_SHARE));
const classicVus = Math.max(1, VUS - llVus);

/** Segment download time as a share of the segment's duration (threshold: p95 < 0.5). */
const segmentRatio = new Trend('segment_download_ratio');
/** Part download time as a share of the part's duration (held hinted parts excluded). */
const partRatio = new Trend('part_download_ratio');
/** Blocking reloads that came back without the part asked for. */
const blockingMisses = new Counter('blocking_reload_misses');
/** From sending a comment to its ack (stored, with its seq). */
const chatAck = new Trend('chat_ack_ms', true);
/** From sending a comment to seeing it come back in a batch (the fan-out every viewer waits for). */
const chatDelivery = new Trend('chat_delivery_ms', true);
/** Comments answered with an error (rate limited, chat unavailable, …) rather than an ack. */
const chatRefused = new Rate('chat_comments_refused');
/** Own comments seen back in a batch (the delivery threshold means nothing without some). */
const chatDelivered = new Counter('chat_comments_delivered');

export const options = {
  scenarios: {
    ll_viewers: { executor: 'constant-vus', exec: 'llViewer', vus: llVus, duration: DURATION, gracefulStop: '10s' },
    classic_viewers: { executor: 'constant-vus', exec: 'classicViewer', vus: classicVus, duration: DURATION, gracefulStop: '10s' },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    segment_download_ratio: ['p(95)<0.5'],
    'http_req_duration{type:segment}': ['p(95)<1000'],
    'http_req_duration{type:part}': ['p(95)<1000'],
    'http_req_duration{type:playlist_blocking}': ['p(95)<6000'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

if (CHAT_VUS > 0) {
  options.scenarios.chat_users = { executor: 'constant-vus', exec: 'chatUser', vus: CHAT_VUS, duration: DURATION, gracefulStop: '10s' };
  options.thresholds.chat_delivery_ms = ['p(95)<1000'];
  options.thresholds.chat_comments_delivered = ['count>0'];
  options.thresholds.chat_comments_refused = ['rate<0.01'];
}

const live = `${BASE_URL}/live/${EVENT_ID}`;

function get(url, type) {
  return http.get(url, { tags: { type: type, name: type }, timeout: '20s' });
}

/** The variants of a master playlist, lowest bandwidth first. */
function variants(text) {
  const out = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^#EXT-X-STREAM-INF:.*BANDWIDTH=(\d+)/.exec(lines[i]);
    if (m && lines[i + 1]) out.push({ bandwidth: Number(m[1]), uri: lines[i + 1].trim() });
  }
  return out.sort((a, b) => a.bandwidth - b.bandwidth);
}

/** What the viewer needs from a media playlist. */
function parseMedia(text) {
  const target = Number((/#EXT-X-TARGETDURATION:(\d+)/.exec(text) || [])[1] || 2);
  const partTarget = Number((/PART-TARGET=([\d.]+)/.exec(text) || [])[1] || 0);
  const map = (/#EXT-X-MAP:URI="([^"]+)"/.exec(text) || [])[1];
  const segments = [];
  const re = /#EXTINF:([\d.]+),?[^\n]*\n(?:#[^\n]*\n)*([^#\s][^\n]*)/g;
  let m;
  while ((m = re.exec(text)) !== null) segments.push({ duration: Number(m[1]), uri: m[2].trim() });
  const parts = [];
  const pre = /#EXT-X-PART:DURATION=([\d.]+),URI="([^"]+)"/g;
  while ((m = pre.exec(text)) !== null) parts.push({ duration: Number(m[1]), uri: m[2] });
  const hint = (/#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.(\d+)\.m4s"/.exec(text) || []).slice(1).map(Number);
  return { target, partTarget, map, segments, parts, hint: hint.length === 2 ? { msn: hint[0], part: hint[1] } : undefined };
}

/** Picks a variant like a player would at start-up: a random one, so that every rendition is exercised. */
function startSession() {
  const master = get(`${live}/master.m3u8`, 'master');
  if (!check(master, { 'master 200': (r) => r.status === 200 })) return undefined;
  const vs = variants(master.body);
  if (vs.length === 0) return undefined;
  const v = vs[Math.floor(Math.random() * vs.length)];
  const dir = `${live}/${v.uri.replace(/index\.m3u8$/, '')}`;
  const first = get(`${dir}index.m3u8`, 'playlist');
  if (!check(first, { 'playlist 200': (r) => r.status === 200 })) return undefined;
  const media = parseMedia(first.body);
  if (media.map) get(dir + media.map, 'init');
  return { dir, media };
}

/** Low-latency viewer (hls.js lowLatencyMode): blocking reload for the next part, then fetch the new parts. */
export function llViewer() {
  const s = startSession();
  if (!s) return sleep(1);
  const seen = new Set(s.media.parts.map((p) => p.uri));
  let media = s.media;
  const until = Date.now() + SESSION_SEC * 1000;
  while (Date.now() < until) {
    if (!media.hint) {
      sleep(0.5);
      media = parseMedia(get(`${s.dir}index.m3u8`, 'playlist').body || '');
      continue;
    }
    // Like hls.js: block on the playlist that lists the hinted part, then fetch the parts it lists that are new.
    const hinted = `part-${media.hint.msn}.${media.hint.part}.m4s`;
    const r = get(`${s.dir}index.m3u8?_HLS_msn=${media.hint.msn}&_HLS_part=${media.hint.part}`, 'playlist_blocking');
    if (r.status !== 200) {
      sleep(0.5);
      continue;
    }
    const next = parseMedia(r.body);
    if (!next.parts.some((p) => p.uri === hinted) && !next.segments.some((x) => x.uri === `seg-${media.hint.msn}.m4s`))
      blockingMisses.add(1);
    for (const p of next.parts) {
      if (seen.has(p.uri)) continue;
      seen.add(p.uri);
      const pr = get(s.dir + p.uri, 'part');
      if (pr.status === 200 && p.duration > 0) partRatio.add(pr.timings.duration / (p.duration * 1000));
    }
    media = next;
  }
}

/** Classic HLS viewer: reload the playlist every half target duration, download each new complete segment. */
export function classicViewer() {
  const s = startSession();
  if (!s) return sleep(1);
  const seen = new Set();
  // Start three segments from the end, like a player's live edge.
  for (const seg of s.media.segments.slice(0, -3)) seen.add(seg.uri);
  let media = s.media;
  const until = Date.now() + SESSION_SEC * 1000;
  while (Date.now() < until) {
    for (const seg of media.segments) {
      if (seen.has(seg.uri)) continue;
      seen.add(seg.uri);
      const r = get(s.dir + seg.uri, 'segment');
      if (r.status === 200 && seg.duration > 0) segmentRatio.add(r.timings.duration / (seg.duration * 1000));
    }
    sleep(Math.max(0.5, media.target / 2));
    const r = get(`${s.dir}index.m3u8`, 'playlist');
    if (r.status === 200) media = parseMedia(r.body);
  }
}

/** This VU's viewer token: signed here with the server's secret when given, else issued once by the API. */
let token;
function viewerToken() {
  if (token) return token;
  if (VIEWER_TOKEN_SECRET) {
    const claims = { v: 1, sub: `v_k6_${__VU}_${Date.now()}`, name: `k6 ${__VU}#0000`, role: 'viewer', exp: Date.now() + 3600000 };
    const payload = encoding.b64encode(JSON.stringify(claims), 'rawurl');
    token = `${payload}.${crypto.hmac('sha256', VIEWER_TOKEN_SECRET, payload, 'base64rawurl')}`;
    return token;
  }
  const r = http.post(`${BASE_URL}/api/v1/viewers`, JSON.stringify({ displayName: `k6 ${__VU}` }), {
    headers: { 'content-type': 'application/json' },
    tags: { type: 'viewer_token', name: 'viewer_token' },
  });
  if (check(r, { 'viewer token 201': (x) => x.status === 201 })) token = r.json('token');
  return token;
}

/** A chat user for one session: joins with its token, comments every COMMENT_SEC, taps reactions, then leaves. */
export function chatUser() {
  const t = viewerToken();
  if (!t) return sleep(5);
  const sentAt = {};
  let n = 0;
  const url = `${BASE_URL.replace(/^http/, 'ws')}/ws?event=${encodeURIComponent(EVENT_ID)}`;
  const res = ws.connect(url, { tags: { type: 'chat_ws', name: 'chat_ws' } }, (socket) => {
    socket.on('open', () => {
      socket.send(JSON.stringify({ type: 'hello', v: 1, token: t }));
      socket.setInterval(() => {
        const ref = `k6-${__VU}-${n++}`;
        sentAt[ref] = Date.now();
        socket.send(JSON.stringify({ type: 'comment', text: ref, ref }));
      }, COMMENT_SEC * 1000);
      socket.setInterval(
        () => socket.send(JSON.stringify({ type: 'react', reaction: REACTIONS[Math.floor(Math.random() * REACTIONS.length)] })),
        500,
      );
      socket.setTimeout(() => socket.close(), SESSION_SEC * 1000);
    });
    socket.on('message', (data) => {
      const m = JSON.parse(data);
      if (m.type === 'ack' && sentAt[m.ref] !== undefined) {
        chatAck.add(Date.now() - sentAt[m.ref]);
        chatRefused.add(false);
      } else if (m.type === 'error' && m.ref !== undefined && sentAt[m.ref] !== undefined) {
        chatRefused.add(true, { code: String(m.code) });
        delete sentAt[m.ref];
      } else if (m.type === 'batch' && m.comments) {
        for (const c of m.comments) {
          if (sentAt[c.text] === undefined) continue;
          chatDelivery.add(Date.now() - sentAt[c.text]);
          chatDelivered.add(1);
          delete sentAt[c.text];
        }
      }
    });
  });
  check(res, { 'chat websocket 101': (r) => r && r.status === 101 });
}
