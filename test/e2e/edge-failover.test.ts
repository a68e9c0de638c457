// Edge role against real origin processes: failover between two origins, stale-if-error, 502/504, recovery, worker
// restart, metrics of every worker on one scrape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { get as httpGet, type ClientRequest } from 'node:http';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { freePort } from '../support/free-port.ts';
import { waitFor } from '../support/wait-for.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

/** One cheap rung so that two origins transcoding at once stay light on a shared machine. */
const LADDER = JSON.stringify([{ name: '240p', height: 240, fps: 15, videoKbps: 300 }]);
const UPSTREAM_TIMEOUT_MS = 1_500;
const STALE_MS = 3_000;
const PLAYLIST_TTL_MS = 100; // edge/failover-fetch.ts PLAYLIST_TTL_MS
/** No answer may take longer than the edge's longest timeout chain plus generous slack for a loaded machine. */
const NEVER_HANG_MS = 2 * (UPSTREAM_TIMEOUT_MS + 3 * 2_000) + 5_000;

let dataDir: string;
let originA: ServerUnderTest;
let originB: ServerUnderTest;
let edge: ServerUnderTest;
const publishers: ChildProcess[] = [];
let playlist = '';
let event: { id: string; streamKey: string };

interface Answer {
  status: number;
  ms: number;
  body: string;
  cacheStatus: string;
  age: number;
}

async function get(path: string): Promise<Answer> {
  const started = Date.now();
  const r = await fetch(edge.base + path, { signal: AbortSignal.timeout(NEVER_HANG_MS + 10_000) });
  const body = await r.text();
  return {
    status: r.status,
    ms: Date.now() - started,
    body,
    cacheStatus: r.headers.get('cache-status') ?? '',
    age: Number(r.headers.get('age') ?? -1),
  };
}

async function startOrigin(): Promise<ServerUnderTest> {
  const originPort = await freePort();
  return startServer({
    ONAIR_ROLE: 'ingest,origin',
    ONAIR_DATA_DIR: dataDir,
    ONAIR_ORIGIN_PORT: String(originPort),
    ONAIR_LADDER: LADDER,
    ONAIR_X264_PRESET: 'ultrafast',
    ONAIR_LOG_LEVEL: 'warn',
  });
}

function originUrl(s: ServerUnderTest): string {
  return `http://127.0.0.1:${s.env.ONAIR_ORIGIN_PORT}`;
}

function signal(s: ServerUnderTest, sig: NodeJS.Signals): void {
  s.child.kill(sig);
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'onair-failover-'));
  originA = await startOrigin();
  originB = await startOrigin();
  const ev = (event = JSON.parse(await originA.cli(['event', 'create', '--title', 'Failover', '--json'])) as {
    id: string;
    streamKey: string;
  });
  for (const o of [originA, originB]) {
    const { child } = publishTestStream({
      url: `rtmp://127.0.0.1:${o.rtmpPort}/live/${ev.streamKey}`,
      width: 320,
      height: 240,
      fps: 15,
      videoKbps: 300,
    });
    publishers.push(child);
  }
  edge = await startServer({
    ONAIR_ROLE: 'edge',
    ONAIR_ORIGIN_URLS: `${originUrl(originA)},${originUrl(originB)}`,
    ONAIR_EDGE_WORKERS: '2',
    ONAIR_EDGE_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
    ONAIR_EDGE_STALE_IF_ERROR_MS: String(STALE_MS),
    ONAIR_LOG_LEVEL: 'warn',
  });
  playlist = `/live/${ev.id}/240p/index.m3u8`;
  for (const o of [originA, originB]) {
    await waitFor(
      'the origin to serve the stream',
      async () => ((await fetch(`${originUrl(o)}${playlist}`)).ok ? true : undefined),
      60_000,
      250,
    );
  }
  await waitFor('the edge to serve the stream', async () => ((await get(playlist)).status === 200 ? true : undefined), 30_000, 250);
});

after(async () => {
  for (const o of [originA, originB]) if (o) signal(o, 'SIGCONT');
  for (const p of publishers) p.kill('SIGKILL');
  await Promise.all([edge?.stop(), originA?.stop(), originB?.stop()]);
  rmSync(dataDir, { recursive: true, force: true });
});

test('an origin node takes WHIP publishers on its public port, one publisher per event across protocols', async () => {
  // A well-formed offer (ICE credentials, DTLS fingerprint, H.264), so that only the event's owner can refuse it.
  const offer = [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=ice-ufrag:abcd',
    'a=ice-pwd:0123456789abcdefghijkl',
    'a=fingerprint:sha-256 AB:CD:EF',
    'm=video 9 UDP/TLS/RTP/SAVPF 102',
    'a=rtpmap:102 H264/90000',
    '',
  ].join('\r\n');
  const whip = (key: string) =>
    fetch(`${originA.base}/whip/${event.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${key}` },
      body: offer,
    });
  assert.equal((await whip('sk_wrong')).status, 401);
  const busy = await whip(event.streamKey);
  assert.equal(busy.status, 409, 'the RTMP publisher holds the event');
  assert.equal(((await busy.json()) as { error: { code: string } }).error.code, 'already_live');
});

test('the edge runs its workers and restarts one that dies', async () => {
  // A new connection each time: a keep-alive connection stays with the worker that accepted it.
  const health = () =>
    new Promise<{ role: string; pid: number; worker: number }>((resolve, reject) => {
      // Bounded: on a loaded machine this subtest once hung for minutes, and this was its only unbounded wait.
      httpGet(`${edge.base}/healthz`, { agent: false, timeout: 5_000 }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          try {
            resolve(JSON.parse(text) as { role: string; pid: number; worker: number });
          } catch (err) {
            reject(err as Error);
          }
        });
      })
        .on('timeout', function (this: ClientRequest) {
          this.destroy(new Error('healthz did not answer within 5 s'));
        })
        .on('error', reject);
    });
  const seen = new Map<number, number>();
  await waitFor(
    'both workers to answer',
    async () => {
      const h = await health();
      seen.set(h.worker, h.pid);
      return seen.size === 2 ? true : undefined;
    },
    60_000,
    50,
  );
  const first = await health();
  assert.equal(first.role, 'edge');
  assert.notEqual(first.pid, edge.child.pid, 'requests are served by a worker, not the primary');
  process.kill(first.pid, 'SIGKILL');
  await waitFor(
    'a replacement worker',
    async () => {
      const h = await health();
      return h.pid !== first.pid && h.worker > 2 ? h : undefined;
    },
    60_000,
    100,
  );
  assert.equal((await get(playlist)).status, 200);
});

test('/metrics on the edge answers for every worker, each series labelled with its worker', async () => {
  const text = await (await fetch(`${edge.base}/metrics`)).text();
  const workers = new Set([...text.matchAll(/^process_cpu_user_seconds_total\{worker="(\d+)"\}/gm)].map((m) => m[1]));
  assert.equal(workers.size, 2, `worker labels seen: ${[...workers].join(', ')}`);
  assert.match(text, /^onair_edge_requests_total\{[^}]*worker="\d+"/m);
});

test('with the first origin frozen, the edge moves to the one that answers', async () => {
  signal(originA, 'SIGSTOP');
  try {
    const bodies = new Set<string>();
    await waitFor(
      'fresh playlists from the second origin',
      async () => {
        const a = await get(playlist);
        assert.ok(a.ms < NEVER_HANG_MS, `answered in ${a.ms} ms`);
        assert.equal(a.status, 200, a.body);
        if (!a.cacheStatus.includes('stale')) bodies.add(a.body);
        return bodies.size >= 3 ? true : undefined;
      },
      40_000,
      300,
    );
    // Fresh playlists can come from the second origin before the frozen one's requests have timed out (non-blocking
    // playlists are kept only 100 ms): the frozen origin is marked down soon after.
    const text = await waitFor(
      'the frozen origin marked down',
      async () => {
        const t = await (await fetch(`${edge.base}/healthz`)).text();
        return (JSON.parse(t) as { origins: { up: number } }).origins.up === 1 ? t : undefined;
      },
      15_000,
      200,
    );
    assert.doesNotMatch(text, /http:\/\//, 'an open endpoint shows no origin URL');
    assert.deepEqual((JSON.parse(text) as { origins: unknown }).origins, { total: 2, up: 1 });
  } finally {
    signal(originA, 'SIGCONT');
  }
});

test('with every origin frozen: stale playlist within its bound, then a clear 502/504, never a hang; then recovery', async () => {
  await waitFor(
    'both origins up again',
    async () => {
      const h = (await (await fetch(`${edge.base}/healthz`)).json()) as { origins: { total: number; up: number } };
      return h.origins.up === h.origins.total ? true : undefined;
    },
    30_000,
    200,
  );
  const warm = await get(playlist);
  assert.equal(warm.status, 200);
  const lastMsn = Math.max(...[...warm.body.matchAll(/^seg-(\d+)\.m4s$/gm)].map((m) => Number(m[1])));

  signal(originA, 'SIGSTOP');
  signal(originB, 'SIGSTOP');
  try {
    const answers: Answer[] = [];
    await waitFor(
      'a 502 or 504 from the edge',
      async () => {
        const a = await get(playlist);
        answers.push(a);
        return a.status === 502 || a.status === 504 ? a : undefined;
      },
      60_000,
      250,
    );
    for (const a of answers) {
      assert.ok(a.ms < NEVER_HANG_MS, `answered in ${a.ms} ms`);
      assert.ok([200, 502, 504].includes(a.status), `status ${a.status}`);
      if (a.cacheStatus.includes('stale-if-error')) {
        assert.equal(a.status, 200);
        assert.ok(a.age <= (PLAYLIST_TTL_MS + STALE_MS) / 1000, `stale playlist ${a.age} s old is past its bound`);
      }
    }
    const failure = answers.at(-1)!;
    const err = JSON.parse(failure.body) as { error: { code: string; message: string } };
    assert.match(err.error.code, /^(bad_gateway|gateway_timeout)$/);

    // A blocking reload for a part the stale playlist does not hold must never get that playlist.
    const blocking = await get(`${playlist}?_HLS_msn=${lastMsn + 2}&_HLS_part=0`);
    assert.ok(blocking.ms < NEVER_HANG_MS, `blocking reload answered in ${blocking.ms} ms`);
    assert.ok([502, 503, 504].includes(blocking.status), `blocking reload got ${blocking.status}`);
  } finally {
    signal(originA, 'SIGCONT');
    signal(originB, 'SIGCONT');
  }

  const recovered = await waitFor(
    'fresh playlists again',
    async () => {
      const a = await get(playlist);
      return a.status === 200 && !a.cacheStatus.includes('stale') ? a : undefined;
    },
    40_000,
    250,
  );
  assert.match(recovered.body, /^#EXTM3U/);
});
