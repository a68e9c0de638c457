// k6 load test of onair viewers: master → variant → (LL-HLS) blocking playlist reloads + parts, or (classic HLS)
// playlist reloads + segments. Every request is tagged with its type. Run through `npm run loadtest:k6`.
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e EVENT_ID=<id> [-e VUS=20 -e DURATION=30s -e SESSION_SEC=20] scripts/k6/viewers.js
/* global __ENV */
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Trend, Counter } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const EVENT_ID = __ENV.EVENT_ID;
const VUS = Number(__ENV.VUS || 20);
const DURATION = __ENV.DURATION || '30s';
/** How long one viewer session lasts before the viewer "leaves" and a new one starts at the master playlist. */
const SESSION_SEC = Number(__ENV.SESSION_SEC || 20);
/** Share of viewers in low-latency mode (parts); the rest play classic HLS (segments). */
const LL_SHARE = Number(__ENV.LL_SHARE || 0.5);

if (!EVENT_ID) throw new Error('EVENT_ID is required (-e EVENT_ID=<event id>)');

const llVus = Math.max(1, Math.round(VUS * LL_SHARE));
const classicVus = Math.max(1, VUS - llVus);

/** Segment download time as a share of the segment's duration (threshold: p95 < 0.5). */
const segmentRatio = new Trend('segment_download_ratio');
/** Part download time as a share of the part's duration (held hinted parts excluded). */
const partRatio = new Trend('part_download_ratio');
/** Blocking reloads that came back without the part asked for. */
const blockingMisses = new Counter('blocking_reload_misses');

export const options = {
  scenarios: {
    ll_viewers: { executor: 'constant-vus', exec: 'llViewer', vus: llVus, duration: DURATION, gracefulStop: '10s' },
    classic_viewers: { executor: 'constant-vus', exec: 'classicViewer', vus: classicVus, duration: DURATION, gracefulStop: '10s' },
    // CHAT HOOK: when the WebSocket gateway exists (issue 5), add a `chat_users` scenario here
    // (executor 'constant-vus', exec: 'chatUser') and implement chatUser() below with k6/websockets.
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
    if (!next.parts.some((p) => p.uri === hinted) && !next.segments.some((x) => x.uri === `seg-${media.hint.msn}.m4s`)) blockingMisses.add(1);
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
