// Test helper: runs the real onair CLI on free ports in a temp data dir (e2e tests, the hostile suite, benchmarks).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { makeTempDir } from './temp-dir.ts';
import { waitFor } from './wait-for.ts';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'cli', 'onair.ts');

/** Runs `onair <args>` against `server` with `input` on stdin (e.g. a password prompt); its exit code and output. */
export function runCli(server: ServerUnderTest, args: string[], input: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { env: server.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(input);
  });
}

/** A running onair server started through its CLI. */
export interface ServerUnderTest {
  httpPort: number;
  rtmpPort: number;
  base: string;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  child: ChildProcess;
  /** The SRT ingest's bound UDP port, from the server card (written once every service started). */
  srtPort(): Promise<number>;
  /** Everything the server logged so far (JSON lines). */
  log(): string;
  /** Runs `onair <args>` against the same data dir and config. */
  cli(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts `onair start` with `env` overrides on free ports and waits for /healthz. A port found free can be taken
 * (as some connection's local port) before the server binds it: then it starts again on other ports.
 */
export async function startServer(env: Record<string, string> = {}): Promise<ServerUnderTest> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(env);
    } catch (err) {
      if (attempt === 3 || !/already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startServerOnce(env: Record<string, string>): Promise<ServerUnderTest> {
  const tmp = makeTempDir('e2e');
  const dataDir = tmp.path;
  const httpPort = await freePort();
  const rtmpPort = await freePort();
  const fullEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ONAIR_HTTP_PORT: String(httpPort),
    ONAIR_RTMP_PORT: String(rtmpPort),
    // SRT (UDP) on a port the server picks: tests run side by side; srtPort() reads it from the server card.
    ONAIR_SRT_PORT: '0',
    ONAIR_HOST: '127.0.0.1',
    ONAIR_DATA_DIR: dataDir,
    ONAIR_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
    ONAIR_LOG_LEVEL: 'info',
    // The e2e tests name the encoded rungs of the ONAIR_LADDER they set; the tests of the source rendition and the
    // other presets (test/e2e/passthrough.test.ts) set the preset they test.
    ONAIR_DEFAULT_LADDER_PRESET: 'custom',
    ...env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start'], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const base = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    tmp.remove();
  };
  try {
    await waitFor(
      'server /healthz',
      async () => {
        if (child.exitCode !== null) throw new Error(`server exited: ${out}`);
        const r = await fetch(`${base}/healthz`);
        return r.ok ? true : undefined;
      },
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    httpPort,
    rtmpPort,
    base,
    dataDir,
    env: fullEnv,
    child,
    srtPort: () =>
      waitFor('the SRT port in server.json', () => {
        const card = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { srtPort?: number };
        return typeof card.srtPort === 'number' ? card.srtPort : undefined;
      }),
    log: () => out,
    cli: async (args) =>
      (await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, ...args], { env: fullEnv, cwd: root })).stdout,
    stop,
  };
}

/** One JSON API call: `method` on `/api/v1<path>` of `base` with `auth` headers and an optional JSON body. */
export async function callApi(
  base: string,
  method: string,
  path: string,
  body: unknown,
  auth: Record<string, string>,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

/**
 * Creates an admin operator on `server` (the CLI, password on stdin), signs in and mints an API token named `name`:
 * the bearer token for the tests' admin API calls.
 */
export async function adminApiToken(server: ServerUnderTest, email: string, password: string, name: string): Promise<string> {
  const made = await runCli(server, ['operator', 'create', '--email', email, '--role', 'admin'], `${password}\n`);
  if (made.code !== 0) throw new Error(`operator create exited ${made.code}: ${made.out}`);
  const login = await fetch(`${server.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (login.status !== 200) throw new Error(`login answered ${login.status}`);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const csrf = ((await login.json()) as { csrfToken: string }).csrfToken;
  const t = await callApi(server.base, 'POST', '/auth/tokens', { name }, { cookie, 'x-csrf-token': csrf });
  if (t.status !== 201) throw new Error(`POST /auth/tokens answered ${t.status}: ${JSON.stringify(t.json)}`);
  return t.json.token as string;
}
