// bench:edge — one onair edge process vs one nginx worker (proxy_cache + proxy_cache_lock), side by side in front of
// the same live origin: cache-hit playlist req/s, segment bytes/s, p99 (wrk), then 1,000 concurrent first requests for
// a new part and for a held blocking playlist, counting the upstream requests each makes. It also measures Node's
// bare http server answering the same playlist and segment bytes (the ceiling for any Node edge). Prints one JSON line.
// --workers N compares N nginx workers with an onair edge of N worker processes (ONAIR_EDGE_WORKERS), wrk with N threads.
//   npm run bench:edge [-- --duration 10 --connections 64 --storm 1000 --workers 1]
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Agent, request } from 'undici';
import { childrenNamed, cpuSeconds, machineMeter } from './proc.ts';
import { freePort, publishLive, startCountingProxy, startOnair, waitFor, type CountingProxy, type OnairProcess } from './edge-fixtures.ts';

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    storm: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '1' },
  },
});
const durationSec = Number(flags.duration);
const connections = Number(flags.connections);
const stormClients = Number(flags.storm);
const workers = Number(flags.workers);
if (!Number.isInteger(workers) || workers < 1 || workers > 16) {
  console.error('bench:edge: --workers takes 1–16');
  process.exit(2);
}
const RENDITION = '720p';
const LADDER = JSON.stringify([{ name: RENDITION, height: 720, fps: 30, videoKbps: 2800 }]);

/** nginx as the caching reverse proxy the issue names: `workers` workers (1 by default), proxy_cache + proxy_cache_lock, TTLs like the edge's. */
function nginxConfig(dir: string, port: number, upstream: string): string {
  const up = new URL(upstream);
  // As root, nginx's worker would switch to www-data, which cannot write the private temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}worker_processes ${workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  sendfile on;
  tcp_nopush on;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=hls:16m max_size=256m inactive=10m use_temp_path=off;
  upstream origin { server ${up.hostname}:${up.port}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location /live/ {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache hls;
      proxy_cache_key $uri$is_args$args;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_cache_lock_age 10s;
      proxy_ignore_headers Cache-Control Expires;
      proxy_read_timeout 15s;
      add_header Age $upstream_http_age;
      location ~ \\.m3u8$ {
        proxy_pass http://origin;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_cache hls;
        proxy_cache_key $uri$is_args$args;
        proxy_cache_lock on;
        proxy_cache_lock_timeout 10s;
        proxy_cache_lock_age 10s;
        proxy_ignore_headers Cache-Control Expires;
        proxy_cache_valid 200 1s;
        proxy_read_timeout 15s;
      }
      proxy_cache_valid 200 1h;
    }
  }
}
`;
}

/** Runs nginx with a generated config in a temp prefix; stopped by its pid. */
async function startNginx(upstream: string): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'onair-bench-nginx-'));
  for (const d of ['cache', 'body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port, upstream));
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGQUIT');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  await waitFor(
    'nginx',
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
      await fetch(url);
      return true;
    },
    15_000,
  ).catch(async (e: unknown) => {
    await stop();
    throw e;
  });
  return { url, child, stop };
}

/** A bare Node http server (one process) answering every request with `body`: what Node itself costs per request. */
async function startNodeBaseline(body: Buffer): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  // The body comes on stdin (a segment is too big for an argument).
  const code = `const c = []; process.stdin.on('data', (d) => c.push(d)).on('end', () => { const b = Buffer.concat(c);
require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length, 'cache-control': 'max-age=1' }); r.end(b); }).listen(${port}, '127.0.0.1'); });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin!.end(body);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('the Node baseline', async () => ((await fetch(url)).ok ? true : undefined), 10_000);
  return {
    url,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('close', () => r()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** wrk's figures for one run. */
interface WrkResult {
  rps: number;
  bytesPerSec: number;
  p99ms: number;
  p50ms: number;
  errors: number;
  /** Server CPU time per request (µs): the efficiency figure, less sensitive to other load than req/s. */
  cpuUsPerRequest: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

function toBytes(v: string): number {
  const m = /^([\d.]+)(B|KB|MB|GB)$/.exec(v.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] as 'B'];
}

/** CPU time (user + system) the processes have used together, in µs. */
function cpuUs(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0) * 1e6, 0);
}

/** wrk against `url`; `pids` are the server processes whose CPU per request is reported (robust on a shared machine). */
async function wrk(url: string, pids: number[]): Promise<WrkResult> {
  const cpuBefore = cpuUs(pids);
  const { stdout } = await promisify(execFile)(
    'wrk',
    [`-t${workers}`, `-c${connections}`, `-d${durationSec}s`, '--latency', '--timeout', '5s', url],
    {
      timeout: (durationSec + 30) * 1000,
    },
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const bytesPerSec = toBytes(/Transfer\/sec:\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const p99ms = toMs(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const p50ms = toMs(/\s50%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
  const cpuUsPerRequest = requests > 0 ? Math.round(((cpuUs(pids) - cpuBefore) / requests) * 10) / 10 : Number.NaN;
  return { rps: Math.round(rps), bytesPerSec: Math.round(bytesPerSec), p99ms, p50ms, errors, cpuUsPerRequest };
}

/** What a storm of first requests did: how many succeeded, upstream requests, delivery times. */
interface StormResult {
  ok: number;
  upstream: number;
  p50ms: number;
  p99ms: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** `clients` concurrent GETs of one not-yet-existing object through `base`; counts what reached the origin. */
async function storm(base: string, path: string, proxy: CountingProxy): Promise<StormResult> {
  const agent = new Agent({ connections: stormClients, pipelining: 0, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const times: number[] = [];
  let ok = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: stormClients }, async () => {
      try {
        const r = await request(base + path, { dispatcher: agent });
        const body = await r.body.arrayBuffer();
        if (r.statusCode === 200 && body.byteLength > 0) ok++;
        times.push(performance.now() - started);
      } catch {
        // counted as not ok
      }
    }),
  );
  await agent.close();
  times.sort((a, b) => a - b);
  return { ok, upstream: proxy.count(path), p50ms: Math.round(percentile(times, 50)), p99ms: Math.round(percentile(times, 99)) };
}

/** The next hinted part and the blocking reload that waits for it, from a playlist fetched through `base`. */
async function nextObjects(base: string, eventId: string): Promise<{ part: string; blocking: string }> {
  const dir = `/live/${eventId}/${RENDITION}/`;
  void base;
  const fresh = await (await fetch(`${originDirect}${dir}index.m3u8`)).text();
  const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.(\d+)\.m4s"/.exec(fresh);
  if (!hint) throw new Error('no preload hint in the playlist (is LL-HLS on?)');
  const msn = Number(hint[1]);
  const idx = Number(hint[2]);
  // The part after the hinted one: nobody has asked for it yet, through either proxy.
  return { part: `${dir}part-${msn}.${idx}.m4s`, blocking: `${dir}index.m3u8?_HLS_msn=${msn}&_HLS_part=${idx + 1}` };
}

let originDirect = '';

async function main(): Promise<void> {
  const cleanup: (() => Promise<void> | void)[] = [];
  const hardStop = setTimeout(() => {
    console.error('bench:edge: time limit reached');
    process.exit(1);
  }, 20 * 60_000);
  hardStop.unref();
  try {
    const origin: OnairProcess = await startOnair({ ONAIR_ROLE: 'ingest,origin', ONAIR_LADDER: LADDER });
    cleanup.push(() => origin.stop());
    originDirect = `http://127.0.0.1:${origin.originPort}`;
    const live = await publishLive(origin, originDirect, { width: 1280, height: 720, fps: 30, videoKbps: 3000, rendition: RENDITION });
    cleanup.push(() => live.stop());

    const nginxProxy = await startCountingProxy(originDirect);
    cleanup.push(() => nginxProxy.stop());
    const onairProxy = await startCountingProxy(originDirect);
    cleanup.push(() => onairProxy.stop());
    const nginx = await startNginx(nginxProxy.url);
    cleanup.push(() => nginx.stop());
    const edge = await startOnair({ ONAIR_ROLE: 'edge', ONAIR_EDGE_WORKERS: String(workers), ONAIR_ORIGIN_URLS: onairProxy.url });
    cleanup.push(() => edge.stop());

    const dir = `/live/${live.id}/${RENDITION}/`;
    const playlist = `${dir}index.m3u8`;
    const text = await (await fetch(originDirect + playlist)).text();
    const segs = [...text.matchAll(/^seg-(\d+)\.m4s$/gm)].map((m) => m[0]);
    const segment = dir + segs[segs.length - 1]!;
    const setups = { nginx: nginx.url, onair: edge.base };
    for (const base of Object.values(setups)) {
      for (const p of [playlist, segment]) if (!(await fetch(base + p)).ok) throw new Error(`warm-up failed: ${base}${p}`);
    }
    // Kept for the Node baseline: by the time it runs, these objects may have left the origin's window.
    const bodies = {
      playlist: Buffer.from(await (await fetch(originDirect + playlist)).arrayBuffer()),
      segment: Buffer.from(await (await fetch(originDirect + segment)).arrayBuffer()),
    };
    const segmentBytes = bodies.segment.length;

    // The processes doing the work: nginx's workers; the onair edge process, or its primary and workers.
    // (nginx also runs a cache manager and a cache loader.)
    const nginxWorkers = childrenNamed(nginx.child.pid!, 'nginx').filter((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker process'),
    );
    const edgePids = [edge.child.pid!, ...childrenNamed(edge.child.pid!, 'node')];
    if (nginxWorkers.length !== workers || edgePids.length !== (workers > 1 ? workers + 1 : 1)) {
      throw new Error(`expected ${workers} worker(s) each, found nginx ${nginxWorkers.length}, onair ${edgePids.length}`);
    }
    const machine = machineMeter();
    const playlistRuns = { nginx: await wrk(nginx.url + playlist, nginxWorkers), onair: await wrk(edge.base + playlist, edgePids) };
    // The ceiling for any Node edge: Node's bare http server answering the same bytes from memory.
    const nodeBaselineFor = async (body: Buffer): Promise<WrkResult> => {
      const baseline = await startNodeBaseline(body);
      try {
        return await wrk(baseline.url, [baseline.pid]);
      } finally {
        await baseline.stop();
      }
    };
    const nodeBaseline = await nodeBaselineFor(bodies.playlist);
    const segmentRuns = { nginx: await wrk(nginx.url + segment, nginxWorkers), onair: await wrk(edge.base + segment, edgePids) };
    const nodeSegmentBaseline = await nodeBaselineFor(bodies.segment);

    const stormPart = { nginx: await storm(nginx.url, (await nextObjects(nginx.url, live.id)).part, nginxProxy) };
    const onairPart = await storm(edge.base, (await nextObjects(edge.base, live.id)).part, onairProxy);
    const stormBlocking = { nginx: await storm(nginx.url, (await nextObjects(nginx.url, live.id)).blocking, nginxProxy) };
    const onairBlocking = await storm(edge.base, (await nextObjects(edge.base, live.id)).blocking, onairProxy);

    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    const result = {
      bench: 'edge',
      note: `rough: 2 shared cores, wrk and both servers on the same machine; ${workers} nginx worker(s) vs an onair edge of ${workers} process(es)`,
      workers,
      machine: machine.read(),
      connections,
      durationSec,
      segmentBytes,
      playlistHits: {
        nginx: playlistRuns.nginx,
        onair: playlistRuns.onair,
        ratio: ratio(playlistRuns.onair.rps, playlistRuns.nginx.rps),
        cpuEfficiencyRatio: ratio(playlistRuns.nginx.cpuUsPerRequest, playlistRuns.onair.cpuUsPerRequest),
        nodeBaseline: {
          ...nodeBaseline,
          ratio: ratio(nodeBaseline.rps, playlistRuns.nginx.rps),
          note: "Node's http server alone, one process, same bytes: the ceiling",
        },
        target: 0.8,
      },
      segmentHits: {
        nginx: segmentRuns.nginx,
        onair: segmentRuns.onair,
        ratio: ratio(segmentRuns.onair.bytesPerSec, segmentRuns.nginx.bytesPerSec),
        cpuEfficiencyRatio: ratio(segmentRuns.nginx.cpuUsPerRequest, segmentRuns.onair.cpuUsPerRequest),
        nodeBaseline: { ...nodeSegmentBaseline, ratio: ratio(nodeSegmentBaseline.bytesPerSec, segmentRuns.nginx.bytesPerSec) },
        target: 0.95,
      },
      firstRequests: {
        clients: stormClients,
        hintedPart: { nginx: stormPart.nginx, onair: onairPart },
        blockingPlaylist: { nginx: stormBlocking.nginx, onair: onairBlocking },
        target: 'upstream = 1 per object',
      },
    };
    console.log(JSON.stringify(result));
  } finally {
    for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
    clearTimeout(hardStop);
  }
}

await main();
