// A real onair cluster on this machine, on loopback and free ports: Redis and PostgreSQL (Debian's binaries, in temp
// dirs), the role processes (each `onair start --role …` in its own process, with its own data dir) and HAProxy in
// front of them running deploy/haproxy.cfg. `npm run cluster` (scripts/cluster.ts) is a thin wrapper; tests and the
// fault suite drive it in-process: kill a process, restart it, stop everything.
//
// Every child runs in its own process group, so a terminal's Ctrl-C reaches only the parent, which stops them by pid
// in reverse start order. A role process that exits without being asked to is reported (onEvent) and the others keep
// running. Not a service of onair itself: nothing here is built into dist/ (tsconfig.build.json).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRedisTestServer, type RedisTestServer } from '../../test/support/redis-test-server.ts';
import { startPostgresTestServer, type PostgresTestServer } from '../../test/support/postgres-test-server.ts';
import { freePort } from '../../test/support/free-port.ts';
import { makeTempDir } from '../../test/support/temp-dir.ts';
import { waitFor } from '../../test/support/wait-for.ts';

const root = join(import.meta.dirname, '..', '..');

/** The file HAProxy runs: the same one deploy/compose.yaml mounts. */
export const haproxyConfigPath = join(root, 'deploy', 'haproxy.cfg');

/** Servers deploy/haproxy.cfg has slots for, per backend. */
export const haproxySlots = 8;

/** The HAProxy backends a role process joins: `ingest` (RTMP and /whip/*), `edge` (/live/*, /whep/* and /ws), `control` (the rest). */
export type LbBackend = 'ingest' | 'edge' | 'control';

/** What the layout's per-group environment may depend on: known before any process starts. */
export interface LayoutContext {
  /** Advertised URLs of the processes of groups with `origin: true`, in start order. */
  originUrls: string[];
}

/** One kind of role process and how many of it run. */
export interface RoleGroup {
  /** Process names are `<name>-<n>` (also their ONAIR_NODE_ID). */
  name: string;
  /** The `--role` value: `ingest`, `ingest,origin`, `all`, … */
  role: string;
  count: number;
  /** The HAProxy backends each process joins. */
  backends: LbBackend[];
  /** Runs an origin: gets ONAIR_ORIGIN_ADVERTISE_URL, and its URL is in `LayoutContext.originUrls`. */
  origin?: boolean;
  /** Extra environment for this group's processes (settings only: ONAIR_* or the allowed externals). */
  env?: (ctx: LayoutContext) => Record<string, string>;
}

/** How many processes of each final role. */
export interface ClusterCounts {
  ingests: number;
  origins: number;
  edges: number;
  controls: number;
}

/** The default counts of `npm run cluster`. */
export const defaultCounts: ClusterCounts = { ingests: 2, origins: 3, edges: 2, controls: 1 };

/** The cluster of issue 12: origins first (ingests place events on them), then ingests, edges and control nodes. */
export function clusterLayout(counts: ClusterCounts = defaultCounts): RoleGroup[] {
  return [
    { name: 'origin', role: 'origin', count: counts.origins, backends: [], origin: true },
    { name: 'ingest', role: 'ingest', count: counts.ingests, backends: ['ingest'] },
    { name: 'edge', role: 'edge', count: counts.edges, backends: ['edge'] },
    { name: 'control', role: 'control', count: counts.controls, backends: ['control'] },
  ];
}

/** Options of startCluster. */
export interface ClusterOptions {
  /** The role processes, started in this order (the first process alone: it creates the schema). Default clusterLayout(). */
  layout?: RoleGroup[];
  /** ONAIR_LOG_LEVEL of the role processes. Default `info`. */
  logLevel?: string;
  /** Run the built CLI (dist/cli/onair.js) instead of the sources through tsx. */
  dist?: boolean;
  /** Extra environment for every role process (after the cluster's own; a group's env comes last). */
  env?: Record<string, string>;
  /** Each output line of a child (role processes and HAProxy), by process name. */
  onLog?: (name: string, line: string) => void;
  /** Lifecycle notes: a process exited unexpectedly, was killed, restarted. */
  onEvent?: (message: string) => void;
  /** How long one process may take to answer /healthz. Default 90 s (many processes start on few cores). */
  startTimeoutMs?: number;
  /** The HAProxy executable. Default /usr/sbin/haproxy. */
  haproxy?: string;
}

/** One process of the cluster, as `--json` and `Cluster.processes` describe it. */
export interface ClusterProcessInfo {
  /** The `--role` value, or `haproxy`, `redis`, `postgres`. */
  role: string;
  name: string;
  /** Its pid, undefined while it does not run. */
  pid: number | undefined;
  /** Its base URL: HTTP for role processes and HAProxy, redis:// and postgres:// for those. */
  url: string;
  /** The RTMP URL of a role process in the `ingest` backend. */
  rtmp?: string;
  /** The advertised origin URL of an origin. */
  originUrl?: string;
  /** Its data dir (role processes). */
  dataDir?: string;
}

/** What `npm run cluster -- --json` prints (one line). */
export interface ClusterInfo {
  /** The balancer's HTTP URL: player, console, API, /live/*, /whep/*, /ws, /whip/*. */
  http: string;
  /** The balancer's RTMP URL (OBS server field). */
  rtmp: string;
  redis: string;
  database: string;
  processes: ClusterProcessInfo[];
}

/** A running local cluster. */
export interface Cluster extends ClusterInfo {
  /** The processes now: role processes in start order, then haproxy, redis, postgres. */
  readonly processes: ClusterProcessInfo[];
  /** The shared secrets of this run (ONAIR_CLUSTER_SECRET, ONAIR_VIEWER_TOKEN_SECRET). */
  readonly secrets: { cluster: string; viewerToken: string };
  /** The environment a role process got (to run `onair event create` etc. against the cluster's store). */
  envOf(name: string): Record<string, string>;
  /** The last output lines of a process. */
  logOf(name: string): string;
  /** Sends `signal` (default SIGKILL) to a process by pid and waits for it to exit. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a process again (stopping it first if it runs) on the same ports and data, and waits until it is up. */
  restart(name: string): Promise<void>;
  /** Stops everything it started, by pid, in reverse start order, and removes its temp dirs. Safe to call twice. */
  stop(): Promise<void>;
}

/** A child process this module spawns and watches (role processes and HAProxy). */
interface Child {
  name: string;
  /** The layout group of a role process. */
  group?: RoleGroup;
  role: string;
  url: string;
  argv: string[];
  env: Record<string, string>;
  /** Resolves when the child is up. */
  ready: (child: ChildProcess) => Promise<void>;
  process?: ChildProcess;
  exited?: Promise<void>;
  /** Set while this module stops or kills it: its exit is then no news. */
  expectExit: boolean;
  lines: string[];
  info: Omit<ClusterProcessInfo, 'pid' | 'role' | 'name' | 'url'>;
}

const isRunning = (c: ChildProcess | undefined): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null;

/** Output lines kept per process for error messages and logOf(). */
const KEPT_LINES = 200;

/** Starts the cluster and resolves once every process answers /healthz and HAProxy routes to them. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const layout = options.layout ?? clusterLayout();
  const onEvent = options.onEvent ?? (() => undefined);
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const haproxyBin = options.haproxy ?? '/usr/sbin/haproxy';
  for (const backend of ['ingest', 'edge', 'control'] as const) {
    const n = layout.filter((g) => g.backends.includes(backend)).reduce((sum, g) => sum + g.count, 0);
    if (n > haproxySlots) throw new Error(`${n} ${backend} servers: deploy/haproxy.cfg has ${haproxySlots} slots per backend`);
  }
  const tmp = makeTempDir('cluster');
  const children: Child[] = [];
  let redis: RedisTestServer | undefined;
  let postgres: PostgresTestServer | undefined;
  let stopped = false;

  // Last resort if the parent exits without stop(): no child outlives it.
  const killAllNow = () => {
    for (const c of children) if (isRunning(c.process)) c.process.kill('SIGKILL');
    for (const pid of [redis?.pid, postgres?.pid]) if (pid !== undefined) tryKill(pid, 'SIGKILL');
  };
  process.on('exit', killAllNow);

  const stopChild = async (c: Child, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const p = c.process;
    if (!isRunning(p)) return;
    c.expectExit = true;
    p.kill(signal);
    const t = setTimeout(() => isRunning(p) && p.kill('SIGKILL'), 10_000);
    await c.exited;
    clearTimeout(t);
  };

  const spawnChild = async (c: Child): Promise<void> => {
    c.expectExit = false;
    const p = spawn(c.argv[0]!, c.argv.slice(1), { cwd: root, env: c.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    c.process = p;
    c.exited = new Promise((resolve) => p.once('close', () => resolve()));
    let partial = '';
    const onData = (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        c.lines.push(line);
        if (c.lines.length > KEPT_LINES) c.lines.shift();
        options.onLog?.(c.name, line);
      }
    };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    p.once('exit', (code, signal) => {
      if (!c.expectExit) onEvent(`${c.name} (pid ${p.pid}) exited unexpectedly (code ${code}, signal ${signal}); the others keep running`);
    });
    try {
      await c.ready(p);
    } catch (err) {
      await stopChild(c);
      throw new Error(`${c.name} did not start: ${(err as Error).message}\n${c.lines.slice(-30).join('\n')}`, { cause: err });
    }
  };

  /** Polls `url` until it answers 200; fails at once when the process exits. */
  const httpUp = async (p: ChildProcess, url: string): Promise<void> => {
    const deadline = Date.now() + startTimeoutMs;
    let last: string;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`exited (code ${p.exitCode}, signal ${p.signalCode})`);
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        await r.body?.cancel();
        if (r.status === 200) return;
        last = `HTTP ${r.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${startTimeoutMs} ms (${last})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // HAProxy first, then the role processes group by group in reverse start order, then the store and the bus.
    const lb = children.find((c) => c.name === 'haproxy');
    if (lb) await stopChild(lb);
    for (const group of [...layout].reverse()) await Promise.all(children.filter((c) => c.group === group).map((c) => stopChild(c)));
    await postgres?.stop();
    await redis?.stop();
    process.off('exit', killAllNow);
    tmp.remove();
  };

  try {
    const usedPorts = new Set<number>();
    const port = async (): Promise<number> => {
      for (;;) {
        const p = await freePort();
        if (!usedPorts.has(p)) return (usedPorts.add(p), p);
      }
    };
    const bus = (redis = await createRedisTestServer('redis-server', { detached: true }));
    await Promise.all([bus.start(), startPostgresTestServer({ detached: true }).then((pg) => (postgres = pg))]);
    if (!postgres) throw new Error('unreachable: postgres did not start');
    const database = await postgres.createDatabase('onair');
    const lbHttpPort = await port();
    const lbRtmpPort = await port();
    const http = `http://127.0.0.1:${lbHttpPort}`;
    const secrets = { cluster: randomBytes(32).toString('base64url'), viewerToken: randomBytes(32).toString('base64url') };

    const processCount = layout.reduce((sum, g) => sum + g.count, 0);
    const ports: number[] = [];
    for (let i = 0; i < 3 * processCount; i++) ports.push(await port());
    const plan = planCluster({
      layout,
      redisUrl: redis.url,
      databaseUrl: database,
      secrets,
      http,
      lbRtmpPort,
      dir: tmp.path,
      logLevel: options.logLevel ?? 'info',
      env: options.env ?? {},
      port: () => ports.shift()!,
    });
    const command = options.dist
      ? [process.execPath, join(root, 'dist', 'cli', 'onair.js')]
      : [process.execPath, '--import', 'tsx', join(root, 'cli', 'onair.ts')];
    for (const p of plan.processes) {
      mkdirSync(p.dataDir);
      children.push({
        name: p.name,
        group: p.group,
        role: p.group.role,
        url: p.url,
        argv: [...command, 'start', '--role', p.group.role],
        env: { ...(process.env as Record<string, string>), ...p.env },
        ready: (child) => httpUp(child, `${p.url}/healthz`),
        expectExit: false,
        lines: [],
        info: { dataDir: p.dataDir, ...(p.rtmp ? { rtmp: p.rtmp } : {}), ...(p.originUrl ? { originUrl: p.originUrl } : {}) },
      });
    }
    // The first process alone (it creates the store's schema), then the rest group by group.
    const roleChildren = [...children];
    if (roleChildren[0]) await spawnChild(roleChildren[0]);
    for (const group of layout)
      await Promise.all(
        roleChildren
          .slice(1)
          .filter((c) => c.group === group)
          .map(spawnChild),
      );
    const lb: Child = {
      name: 'haproxy',
      role: 'haproxy',
      url: http,
      argv: [haproxyBin, '-db', '-f', haproxyConfigPath],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...plan.haproxyEnv },
      ready: async (child) => {
        await httpUp(child, `${http}/lb/healthz`);
        // Through HAProxy to a control node, when there is one.
        if (plan.haproxyEnv.LB_CONTROL1_HOST !== undefined) await httpUp(child, `${http}/healthz`);
      },
      expectExit: false,
      lines: [],
      info: {},
    };
    children.push(lb);
    await spawnChild(lb);

    const find = (name: string): Child => {
      const c = children.find((x) => x.name === name);
      if (!c) throw new Error(`no process named ${name} (${[...children.map((x) => x.name), 'redis', 'postgres'].join(', ')})`);
      return c;
    };
    const redisServer = redis;
    const pgServer = postgres;
    const cluster: Cluster = {
      http,
      rtmp: `rtmp://127.0.0.1:${lbRtmpPort}/live`,
      redis: redisServer.url,
      database,
      secrets,
      get processes(): ClusterProcessInfo[] {
        return [
          ...children.map((c) => ({
            role: c.role,
            name: c.name,
            pid: isRunning(c.process) ? c.process.pid : undefined,
            url: c.url,
            ...c.info,
          })),
          { role: 'redis', name: 'redis', pid: redisServer.pid, url: redisServer.url },
          { role: 'postgres', name: 'postgres', pid: pgServer.pid, url: database },
        ];
      },
      envOf: (name) => ({ ...find(name).env }),
      logOf: (name) => find(name).lines.join('\n'),
      async kill(name, signal = 'SIGKILL') {
        if (name === 'redis' || name === 'postgres') {
          const pid = name === 'redis' ? redisServer.pid : pgServer.pid;
          if (pid === undefined) return;
          onEvent(`${name} (pid ${pid}): ${signal}`);
          if (name === 'postgres' && signal !== 'SIGKILL') return pgServer.halt();
          tryKill(pid, signal);
          await waitFor(`${name} (pid ${pid}) to exit`, () => !pidAlive(pid), 15_000);
          return;
        }
        const c = find(name);
        if (!isRunning(c.process)) return;
        onEvent(`${name} (pid ${c.process.pid}): ${signal}`);
        await stopChild(c, signal);
      },
      async restart(name) {
        if (name === 'redis') return redisServer.start();
        if (name === 'postgres') return pgServer.resume();
        const c = find(name);
        await stopChild(c);
        await spawnChild(c);
        onEvent(`${name} restarted (pid ${c.process?.pid})`);
      },
      stop,
    };
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What planCluster needs: the shared services, the balancer's ports and a source of free ports. */
export interface PlanInput {
  layout: RoleGroup[];
  redisUrl: string;
  databaseUrl: string;
  secrets: { cluster: string; viewerToken: string };
  /** The balancer's HTTP URL (the public URL of every process). */
  http: string;
  lbRtmpPort: number;
  /** Where the processes' data dirs go. */
  dir: string;
  logLevel: string;
  /** Extra environment for every role process. */
  env: Record<string, string>;
  /** A free port, different at each call. */
  port: () => number;
}

/** One role process as planned. */
export interface PlannedProcess {
  group: RoleGroup;
  name: string;
  url: string;
  dataDir: string;
  rtmp?: string;
  originUrl?: string;
  /** Its environment beyond the parent's: settings (ONAIR_*) and REDIS_URL / DATABASE_URL only. */
  env: Record<string, string>;
}

/** Every role process's ports, data dir and environment, and HAProxy's environment for deploy/haproxy.cfg; starts nothing. */
export function planCluster(input: PlanInput): { processes: PlannedProcess[]; haproxyEnv: Record<string, string> } {
  // Every port before any process starts: a group's environment may name another's (edges → origins).
  const slots: { group: RoleGroup; name: string; httpPort: number; rtmpPort: number; originPort: number }[] = [];
  for (const group of input.layout) {
    for (let i = 1; i <= group.count; i++) {
      slots.push({ group, name: `${group.name}-${i}`, httpPort: input.port(), rtmpPort: input.port(), originPort: input.port() });
    }
  }
  const ctx: LayoutContext = { originUrls: slots.filter((p) => p.group.origin).map((p) => `http://127.0.0.1:${p.originPort}`) };
  const haproxyEnv: Record<string, string> = {
    LB_HTTP_BIND: new URL(input.http).host,
    LB_RTMP_BIND: `127.0.0.1:${input.lbRtmpPort}`,
  };
  const members: Record<LbBackend, number> = { ingest: 0, edge: 0, control: 0 };
  const processes = slots.map((p): PlannedProcess => {
    const dataDir = join(input.dir, p.name);
    const originUrl = p.group.origin ? `http://127.0.0.1:${p.originPort}` : undefined;
    const env: Record<string, string> = {
      REDIS_URL: input.redisUrl,
      DATABASE_URL: input.databaseUrl,
      ONAIR_CLUSTER_SECRET: input.secrets.cluster,
      ONAIR_VIEWER_TOKEN_SECRET: input.secrets.viewerToken,
      ONAIR_NODE_ID: p.name,
      ONAIR_HOST: '127.0.0.1',
      ONAIR_HTTP_PORT: String(p.httpPort),
      ONAIR_RTMP_PORT: String(p.rtmpPort),
      // SRT (UDP, which HAProxy does not balance): each ingest on a port of its own, picked at start.
      ONAIR_SRT_PORT: '0',
      ONAIR_ORIGIN_PORT: String(p.originPort),
      ...(originUrl ? { ONAIR_ORIGIN_ADVERTISE_URL: originUrl } : {}),
      // HAProxy connects from 127.0.0.1: believe its X-Forwarded-For and PROXY headers.
      ONAIR_TRUSTED_PROXIES: 'loopback',
      ONAIR_DATA_DIR: dataDir,
      ONAIR_PUBLIC_URL: input.http,
      ONAIR_LOG_LEVEL: input.logLevel,
      // Many processes on few cores: one edge worker each (an edge machine would run one per core).
      ONAIR_EDGE_WORKERS: '1',
      // WHIP publishers on this machine reach an ingest's ICE on loopback.
      ONAIR_WHIP_ICE_ADDRESSES: '127.0.0.1',
      ...input.env,
      ...p.group.env?.(ctx),
    };
    for (const backend of p.group.backends) {
      const key = `LB_${backend.toUpperCase()}${++members[backend]}`;
      haproxyEnv[`${key}_HOST`] = '127.0.0.1';
      haproxyEnv[`${key}_HTTP_PORT`] = String(p.httpPort);
      if (backend === 'ingest') haproxyEnv[`${key}_RTMP_PORT`] = String(p.rtmpPort);
    }
    return {
      group: p.group,
      name: p.name,
      url: `http://127.0.0.1:${p.httpPort}`,
      dataDir,
      ...(p.group.backends.includes('ingest') ? { rtmp: `rtmp://127.0.0.1:${p.rtmpPort}/live` } : {}),
      ...(originUrl ? { originUrl } : {}),
      env,
    };
  });
  return { processes, haproxyEnv };
}

/** Sends `signal` to `pid`, ignoring a process already gone. */
function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Whether a process with this pid exists (zombies aside). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
