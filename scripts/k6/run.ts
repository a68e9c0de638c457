// `npm run loadtest:k6`: finds the pinned k6 (or builds it once with the Go toolchain into $(go env GOPATH)/bin)
// and runs scripts/k6/viewers.js against a base URL and event id.
//   npm run loadtest:k6 -- --base-url http://127.0.0.1:8080 --event <id> [--vus 20] [--duration 30s] [--session-sec 20] [--chat-vus 5]
//   (or BASE_URL / EVENT_ID in the environment)
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { pathToFileURL } from 'node:url';

/** The k6 release we build and run: served by the Go module proxy and builds with current Go. */
export const K6_VERSION = 'v0.52.0';
/** Longest a k6 build may take (a cold build downloads ~100 modules and compiles for minutes). */
const BUILD_TIMEOUT_MS = 20 * 60_000;
const script = join(import.meta.dirname, 'viewers.js');
const run = promisify(execFile);

async function versionOf(bin: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(bin, ['version'], { timeout: 10_000 });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

/** Path of a k6 binary of the pinned version, building it with `go install` if it is missing. */
export async function ensureK6(log: (msg: string) => void = (m) => console.error(m)): Promise<string> {
  let gopath: string;
  try {
    gopath = (await run('go', ['env', 'GOPATH'], { timeout: 30_000 })).stdout.trim();
  } catch {
    gopath = '';
  }
  const candidates = [gopath ? join(gopath, 'bin', 'k6') : '', 'k6'].filter(Boolean);
  for (const bin of candidates) {
    if (bin !== 'k6' && !existsSync(bin)) continue;
    const v = await versionOf(bin);
    if (v?.includes(`k6 ${K6_VERSION} `) || v?.startsWith(`k6 ${K6_VERSION}`)) return bin;
  }
  if (!gopath) throw new Error(`k6 ${K6_VERSION} is not installed and Go is not available to build it`);
  log(`loadtest:k6: building k6 ${K6_VERSION} with ${(await run('go', ['version'])).stdout.trim()} (cached afterwards)…`);
  await run('go', ['install', `go.k6.io/k6@${K6_VERSION}`], {
    timeout: BUILD_TIMEOUT_MS,
    env: { ...process.env, CGO_ENABLED: '0' },
    maxBuffer: 64 << 20,
  });
  const bin = join(gopath, 'bin', 'k6');
  const v = await versionOf(bin);
  if (!v?.includes(K6_VERSION)) throw new Error(`built k6 reports "${v}", expected ${K6_VERSION}`);
  return bin;
}

/** Options of one k6 run of the viewers script. */
export interface K6RunOptions {
  baseUrl: string;
  eventId: string;
  vus?: number;
  duration?: string;
  sessionSec?: number;
  /** Chat users on the WebSocket (the script's default: a quarter of `vus`). */
  chatVus?: number;
  /** The server's ONAIR_VIEWER_TOKEN_SECRET, so chat users sign their own tokens (else one API token per VU). */
  viewerTokenSecret?: string;
  /** Extra `k6 run` arguments (e.g. `--summary-export file.json`). */
  extraArgs?: string[];
}

/** Runs the viewers script; resolves to k6's exit code (99 when a threshold failed). */
export async function runK6(o: K6RunOptions): Promise<number> {
  const k6 = await ensureK6();
  const env = [`BASE_URL=${o.baseUrl}`, `EVENT_ID=${o.eventId}`];
  if (o.vus !== undefined) env.push(`VUS=${o.vus}`);
  if (o.duration !== undefined) env.push(`DURATION=${o.duration}`);
  if (o.sessionSec !== undefined) env.push(`SESSION_SEC=${o.sessionSec}`);
  if (o.chatVus !== undefined) env.push(`CHAT_VUS=${o.chatVus}`);
  if (o.viewerTokenSecret) env.push(`VIEWER_TOKEN_SECRET=${o.viewerTokenSecret}`);
  const args = ['run', '--quiet', '--no-usage-report', ...env.flatMap((e) => ['-e', e]), ...(o.extraArgs ?? []), script];
  const child = spawn(k6, args, { stdio: 'inherit' });
  return new Promise((resolve) => child.once('close', (code) => resolve(code ?? 1)));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      'base-url': { type: 'string' },
      event: { type: 'string' },
      vus: { type: 'string' },
      duration: { type: 'string' },
      'session-sec': { type: 'string' },
      'chat-vus': { type: 'string' },
      'build-only': { type: 'boolean' },
    },
  });
  if (values['build-only']) {
    console.log(await ensureK6());
    process.exit(0);
  }
  const baseUrl = values['base-url'] ?? process.env.BASE_URL;
  const eventId = values.event ?? process.env.EVENT_ID;
  if (!baseUrl || !eventId) {
    console.error(
      'usage: npm run loadtest:k6 -- --base-url http://HOST:PORT --event <event id> [--vus N] [--duration 30s] [--session-sec 20] [--chat-vus N]\n' +
        '  (VIEWER_TOKEN_SECRET in the environment: chat users sign their own tokens)',
    );
    process.exit(2);
  }
  const code = await runK6({
    baseUrl,
    eventId,
    vus: values.vus ? Number(values.vus) : undefined,
    duration: values.duration,
    sessionSec: values['session-sec'] ? Number(values['session-sec']) : undefined,
    chatVus: values['chat-vus'] ? Number(values['chat-vus']) : undefined,
    viewerTokenSecret: process.env.VIEWER_TOKEN_SECRET,
  });
  process.exit(code);
}
