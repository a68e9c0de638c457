// Shared by the edge benchmarks and the k6 smoke: real onair processes on free ports, a live published stream, a counting proxy.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Pool } from 'undici';
import { publishTestStream } from '../publish-test-stream.ts';
import { freePort } from '../../test/support/free-port.ts';
import { waitFor } from '../../test/support/wait-for.ts';

export { freePort, waitFor };

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'cli', 'onair.ts');

/** A running `onair start` process. */
export interface OnairProcess {
  child: ChildProcess;
  httpPort: number;
  rtmpPort: number;
  /** Origin HLS port (origin role) — 0 otherwise. */
  originPort: number;
  base: string;
  env: NodeJS.ProcessEnv;
  /** Runs `onair <args>` with the same environment; resolves to stdout. */
  cli(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Starts `onair start` with `env` (ONAIR_ROLE etc.) on free ports in a temp data dir; waits for /healthz. */
export async function startOnair(env: Record<string, string>, args: string[] = []): Promise<OnairProcess> {
  const dataDir = env.ONAIR_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'onair-bench-'));
  const ownDir = env.ONAIR_DATA_DIR === undefined;
  const httpPort = await freePort();
  const rtmpPort = await freePort();
  const originPort = env.ONAIR_ROLE === 'ingest,origin' ? await freePort() : 0;
  const fullEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ONAIR_HTTP_PORT: String(httpPort),
    ONAIR_RTMP_PORT: String(rtmpPort),
    ONAIR_SRT_PORT: '0',
    ONAIR_ORIGIN_PORT: String(originPort),
    ONAIR_HOST: '127.0.0.1',
    ONAIR_DATA_DIR: dataDir,
    ONAIR_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
    ONAIR_LOG_LEVEL: 'warn',
    // The encoded ladder the benchmarks and the k6 smoke name (360p, 720p…), without the source rendition the
    // default preset (standard) adds; a caller may pass another.
    ONAIR_DEFAULT_LADDER_PRESET: 'custom',
    ...env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start', ...args], {
    env: fullEnv,
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const base = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'onair /healthz',
      async () => {
        if (child.exitCode !== null) throw new Error(`onair exited: ${out}`);
        return (await fetch(`${base}/healthz`)).ok ? true : undefined;
      },
      60_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    child,
    httpPort,
    rtmpPort,
    originPort,
    base,
    env: fullEnv,
    cli: async (a) => (await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, ...a], { env: fullEnv, cwd: root })).stdout,
    stop,
  };
}

/** A live event on a running server: its id, and the publisher feeding it. */
export interface LiveEvent {
  id: string;
  publisher: ChildProcess;
  stop(): void;
}

/** Creates an event on `server` and publishes the test stream to it until stopped; waits until `hlsBase` serves its playlist. */
export async function publishLive(
  server: OnairProcess,
  hlsBase: string,
  opts: { width?: number; height?: number; fps?: number; videoKbps?: number; rendition?: string } = {},
): Promise<LiveEvent> {
  const ev = JSON.parse(await server.cli(['event', 'create', '--title', 'bench', '--json'])) as { id: string; streamKey: string };
  const { child } = publishTestStream({ url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${ev.streamKey}`, ...opts });
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  try {
    await waitFor(
      'the live playlist',
      async () => {
        const r = await fetch(`${hlsBase}/live/${ev.id}/${opts.rendition ?? '720p'}/index.m3u8`);
        const text = await r.text();
        return r.ok && /seg-\d+\.m4s/.test(text) ? true : undefined;
      },
      90_000,
    );
  } catch (err) {
    stop();
    throw err;
  }
  return { id: ev.id, publisher: child, stop };
}

/** A pass-through HTTP proxy that counts the requests it forwards, by path with query. */
export interface CountingProxy {
  url: string;
  count(pathWithQuery: string): number;
  total(): number;
  stop(): Promise<void>;
}

/** Starts a counting proxy on 127.0.0.1 in front of `target` (streams bodies through, keeps status and headers). */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const counts = new Map<string, number>();
  let total = 0;
  const pool = new Pool(target, { connections: 512 });
  const server: Server = createHttpServer((req, res) => {
    const path = req.url ?? '/';
    if (path.startsWith('/live/')) {
      counts.set(path, (counts.get(path) ?? 0) + 1);
      total++;
    }
    pool.request({ path, method: req.method === 'HEAD' ? 'HEAD' : 'GET', headersTimeout: 30_000, bodyTimeout: 30_000 }).then(
      async (up) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(up.headers))
          if (typeof v === 'string' && k !== 'transfer-encoding' && k !== 'connection') headers[k] = v;
        res.writeHead(up.statusCode, headers);
        for await (const chunk of up.body) res.write(chunk);
        res.end();
      },
      () => {
        res.writeHead(502).end();
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    count: (p) => counts.get(p) ?? 0,
    total: () => total,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await pool.destroy();
    },
  };
}
