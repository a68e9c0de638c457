// bench:ws — one edge process with N WebSocket viewers on one event (clients in separate processes), C comments/s and
// R reactions/s for D seconds: comment delivery latency (post → last viewer), lost messages, edge CPU and memory per
// connection; then the same for a Socket.IO + @socket.io/redis-adapter server doing plain broadcast. Both use a
// redis-server started here. --edge-workers N adds a cluster edge (`--role edge`, N worker processes on the same
// Redis and a private PostgreSQL) under the same load. Prints one JSON object as the last line.
//   npm run bench:ws -- [--viewers 10000] [--duration 60] [--comments 100] [--reactions 1000] [--procs 4]
//                       [--peer both|onair|socketio] [--edge-workers 0]
import { fork, spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createRedisTestServer } from '../../test/support/redis-test-server.ts';
import type { ClientArgs } from './ws-client.ts';
import { startPostgresTestServer } from '../../test/support/postgres-test-server.ts';
import { childrenNamed, cpuSeconds, machineMeter, rssBytes } from './proc.ts';
import { histogram, meanMs } from './prom.ts';
import { freePort } from '../../test/support/free-port.ts';

const { values } = parseArgs({
  options: {
    viewers: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '60' },
    comments: { type: 'string', default: '100' },
    reactions: { type: 'string', default: '1000' },
    procs: { type: 'string', default: '4' },
    posters: { type: 'string', default: '200' },
    peer: { type: 'string', default: 'both' },
    'edge-workers': { type: 'string', default: '0' },
  },
});
const viewers = Number(values.viewers);
const durationSec = Number(values.duration);
const commentsPerSec = Number(values.comments);
const reactionsPerSec = Number(values.reactions);
const procs = Math.max(1, Number(values.procs));
const posters = Math.max(1, Number(values.posters));
const root = join(import.meta.dirname, '..', '..');
const clientScript = join(import.meta.dirname, 'ws-client.ts');
const log = (...a: unknown[]) => console.error('[bench:ws]', ...a);

/** utime+stime in seconds and RSS in bytes of a server's processes together, from /proc. */
function procStats(pids: number[]): { cpuSec: number; rss: number } {
  return pids.reduce((t, pid) => ({ cpuSec: t.cpuSec + (cpuSeconds(pid) ?? 0), rss: t.rss + (rssBytes(pid) ?? 0) }), { cpuSec: 0, rss: 0 });
}

function pct(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function forkClient(a: ClientArgs): ChildProcess {
  return fork(clientScript, [JSON.stringify(a)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function nextMessage<T>(child: ChildProcess, key: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`client ${child.pid}: no ${key} within ${timeoutMs} ms`)), timeoutMs);
    const on = (m: Record<string, unknown>) => {
      if (m.warn) log(`client ${child.pid}:`, m.warn);
      if (!(key in m)) return;
      clearTimeout(t);
      child.off('message', on);
      resolve(m[key] as T);
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`client ${child.pid} exited (${code}) before ${key}`)));
  });
}

interface Target {
  /** The server's processes (a cluster edge: its primary and workers). */
  pids(): number[];
  url: string;
  secret?: string;
  /** Prometheus endpoint (onair): the gateway's own flush timings. */
  metricsUrl?: string;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** An all-in-one onair, or with `cluster` an edge role of `workers` processes on the shared Redis and PostgreSQL. */
async function startOnair(redisUrl: string, dataDir: string, cluster?: { databaseUrl: string; workers: number }): Promise<Target> {
  const port = await freePort();
  const secret = randomBytes(24).toString('hex');
  const env = {
    ...process.env,
    ...(cluster
      ? {
          DATABASE_URL: cluster.databaseUrl,
          ONAIR_ROLE: 'edge',
          ONAIR_EDGE_WORKERS: String(cluster.workers),
          ONAIR_ORIGIN_URLS: 'http://127.0.0.1:9',
        }
      : {}),
    REDIS_URL: redisUrl,
    ONAIR_HTTP_PORT: String(port),
    ONAIR_RTMP_PORT: String(await freePort()),
    ONAIR_SRT_PORT: '0',
    ONAIR_HOST: '127.0.0.1',
    ONAIR_DATA_DIR: dataDir,
    ONAIR_LOG_LEVEL: 'warn',
    ONAIR_VIEWER_TOKEN_SECRET: secret,
    // Every client is 127.0.0.1 here: lift the per-IP and per-viewer limits out of the way of the measured load.
    ONAIR_WS_MAX_CONNECTIONS_PER_IP: String(viewers + posters + 100),
    ONAIR_CHAT_COMMENTS_PER_SEC: '1000',
    ONAIR_CHAT_COMMENT_BURST: '1000',
    ONAIR_CHAT_REACTIONS_PER_SEC: '10000',
    ONAIR_CHAT_REACTION_BURST: '10000',
    ONAIR_CHAT_IP_FACTOR: '1000',
  };
  const cli = join(root, 'cli', 'onair.ts');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', cli, 'event', 'create', '--title', 'bench ws', '--json'],
    { env, cwd: root },
  );
  const eventId = (JSON.parse(stdout) as { id: string }).id;
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start'], { env, cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error('onair exited during start-up');
    if (Date.now() > deadline) throw new Error('onair did not start');
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    pids: () => [child.pid!, ...childrenNamed(child.pid!, 'node')],
    url: `ws://127.0.0.1:${port}/ws?event=${eventId}`,
    secret,
    // A cluster edge's /metrics holds one flush series per worker; one worker's mean is not the edge's.
    ...(cluster ? {} : { metricsUrl: `http://127.0.0.1:${port}/metrics` }),
    stop: () => stopChild(child),
  };
}

async function startSocketIo(redisUrl: string): Promise<Target> {
  const port = await freePort();
  const child = fork(join(import.meta.dirname, 'ws-socketio-peer.ts'), [String(port), redisUrl], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await nextMessage(child, 'listening', 60_000);
  return { pids: () => [child.pid!], url: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

async function measure(kind: 'onair' | 'socketio', target: Target): Promise<Record<string, unknown>> {
  const base = procStats(target.pids()).rss;
  const per = Math.ceil(viewers / procs);
  const children: ChildProcess[] = [];
  let connected: number;
  try {
    const readies: Promise<number>[] = [];
    for (let i = 0; i < procs; i++) {
      const count = Math.min(per, viewers - i * per);
      if (count <= 0) break;
      const c = forkClient({ role: 'viewers', target: kind, url: target.url, count, secret: target.secret });
      children.push(c);
      readies.push(nextMessage<number>(c, 'ready', 300_000));
    }
    connected = (await Promise.all(readies)).reduce((a, b) => a + b, 0);
    const loader = forkClient({
      role: 'loader',
      target: kind,
      url: target.url,
      count: posters,
      secret: target.secret,
      commentsPerSec,
      reactionsPerSec,
      durationSec,
    });
    children.push(loader);
    await nextMessage(loader, 'ready', 120_000);
    await new Promise((r) => setTimeout(r, 2_000)); // let the connection burst settle before measuring memory
    const before = procStats(target.pids());
    const flushBefore = target.metricsUrl ? await histogram(target.metricsUrl, 'onair_ws_flush_seconds') : undefined;
    log(kind, `${connected} viewers connected; loading for ${durationSec} s`);
    const t0 = Date.now();
    const machine = machineMeter();
    loader.send({ cmd: 'go' });
    const loaded = await nextMessage<{ comments: number; reactions: number; errors: number; closedEarly: number }>(
      loader,
      'loaded',
      durationSec * 1000 + 60_000,
    );
    const after = procStats(target.pids());
    const { stealPct } = machine.read();
    const elapsed = (Date.now() - t0) / 1000;
    const flushAfter = target.metricsUrl ? await histogram(target.metricsUrl, 'onair_ws_flush_seconds') : undefined;
    // Mean time the gateway spends writing one flush to every viewer: the spread between the first and the last viewer.
    const flushMeanMs = flushBefore && flushAfter ? meanMs(flushBefore, flushAfter) : undefined;
    await new Promise((r) => setTimeout(r, 3_000)); // drain: late deliveries count as late, not lost
    const reports = await Promise.all(
      children.slice(0, -1).map((c) => {
        const p = nextMessage<{ got: [number, { count: number; maxLat: number }][]; closedEarly: number }>(c, 'report', 60_000);
        c.send({ cmd: 'report' });
        return p;
      }),
    );
    const perComment = new Map<number, { count: number; maxLat: number }>();
    let closedEarly = 0;
    for (const r of reports) {
      closedEarly += r.closedEarly;
      for (const [n, g] of r.got) {
        const cur = perComment.get(n);
        if (cur) {
          cur.count += g.count;
          cur.maxLat = Math.max(cur.maxLat, g.maxLat);
        } else perComment.set(n, { ...g });
      }
    }
    const lats: number[] = [];
    let lost = 0;
    for (let n = 0; n < loaded.comments; n++) {
      const g = perComment.get(n);
      lost += connected - (g?.count ?? 0);
      if (g && g.count === connected) lats.push(g.maxLat);
    }
    lats.sort((a, b) => a - b);
    return {
      viewers: connected,
      comments: loaded.comments,
      reactions: loaded.reactions,
      refused: loaded.errors,
      posterDisconnects: loaded.closedEarly,
      p50Ms: pct(lats, 50),
      p95Ms: pct(lats, 95),
      p99Ms: pct(lats, 99),
      lost,
      disconnected: closedEarly,
      ...(flushMeanMs !== undefined ? { flushMeanMs } : {}),
      cpuPct: Math.round(((after.cpuSec - before.cpuSec) / elapsed) * 1000) / 10,
      kbPerConn: connected ? Math.round((before.rss - base) / (connected + posters) / 102.4) / 10 : null,
      rssMb: Math.round(after.rss / 1048576),
      stealPct,
    };
  } finally {
    for (const c of children) {
      if (c.connected) c.send({ cmd: 'exit' });
      await stopChild(c);
    }
  }
}

const redis = await createRedisTestServer();
const dataDir = mkdtempSync(join(tmpdir(), 'onair-bench-ws-'));
const result: Record<string, unknown> = { bench: 'ws', viewers, durationSec, commentsPerSec, reactionsPerSec, clientProcs: procs };
try {
  await redis.start();
  if (values.peer !== 'socketio') {
    const t = await startOnair(redis.url, dataDir);
    try {
      result.onair = await measure('onair', t);
    } finally {
      await t.stop();
    }
  }
  const edgeWorkers = Number(values['edge-workers']);
  if (edgeWorkers > 0) {
    const postgres = await startPostgresTestServer();
    try {
      const t = await startOnair(redis.url, dataDir, { databaseUrl: await postgres.createDatabase('bench_ws'), workers: edgeWorkers });
      try {
        result.onairEdgeWorkers = { workers: edgeWorkers, ...(await measure('onair', t)) };
      } finally {
        await t.stop();
      }
    } finally {
      await postgres.stop();
    }
  }
  if (values.peer !== 'onair') {
    const t = await startSocketIo(redis.url);
    try {
      result.socketio = await measure('socketio', t);
    } finally {
      await t.stop();
    }
  }
} catch (err) {
  result.error = (err as Error).message;
  process.exitCode = 1;
} finally {
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
