// The control API as the fault suite and bench:origins use it: an admin operator made with the real CLI against
// the cluster's store, signed in for a bearer token; events created, their stream key revealed, their placement read.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

const cli = join(import.meta.dirname, '..', '..', 'cli', 'onair.ts');

/** An API answer: status and parsed JSON body ({} when empty or not JSON). */
export interface ApiAnswer {
  status: number;
  json: Record<string, unknown> & { error?: { code: string; message?: string } };
}

/** An event as the API shows it (the fields used here). */
export interface ApiEventView {
  id: string;
  slug: string;
  status: string;
  placement?: { ingest: string; origins: { id: string; url: string }[]; epoch: number } | null;
}

/** A signed-in admin. */
export interface AdminApi {
  readonly base: string;
  readonly token: string;
  /** Calls /api/v1<path> with the bearer token; never throws on HTTP errors (network errors do throw). */
  request(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<ApiAnswer>;
  /** Creates an event; returns it with its stream key (revealed once) and the RTMP URL to publish to. */
  createEvent(title: string): Promise<{ event: ApiEventView; streamKey: string; rtmpUrl: string }>;
  getEvent(id: string): Promise<ApiEventView>;
}

/** Runs `onair <args>` with `env` (the cluster's store settings), `input` on stdin; rejects on a non-zero exit. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`onair ${args.join(' ')}: exit ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

async function call(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown, timeoutMs = 10_000) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json: ApiAnswer['json'];
  try {
    json = text ? (JSON.parse(text) as ApiAnswer['json']) : {};
  } catch {
    json = { error: { code: 'not_json', message: text.slice(0, 200) } };
  }
  return { status: res.status, json, headers: res.headers };
}

/**
 * Creates an admin operator through `onair operator create` with `storeEnv` (ONAIR_DATABASE_URL or ONAIR_DATA_DIR
 * of the server), signs in at `base` and makes a bearer token.
 */
export async function signInAdmin(base: string, storeEnv: NodeJS.ProcessEnv): Promise<AdminApi> {
  const email = `faults-${randomBytes(4).toString('hex')}@example.com`;
  const password = randomBytes(12).toString('base64url');
  await runCli(['operator', 'create', '--email', email, '--role', 'admin'], storeEnv, `${password}\n`);
  const login = await call(base, 'POST', '/auth/login', {}, { email, password });
  if (login.status !== 200) throw new Error(`login: HTTP ${login.status} ${JSON.stringify(login.json)}`);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const made = await call(base, 'POST', '/auth/tokens', { cookie, 'x-csrf-token': String(login.json.csrfToken) }, { name: 'faults' });
  if (made.status !== 201) throw new Error(`token: HTTP ${made.status} ${JSON.stringify(made.json)}`);
  const token = String(made.json.token);
  const auth = { authorization: `Bearer ${token}` };
  const api: AdminApi = {
    base,
    token,
    request: async (method, path, body, timeoutMs) => {
      const { status, json } = await call(base, method, path, auth, body, timeoutMs);
      return { status, json };
    },
    async createEvent(title) {
      const made = await api.request('POST', '/events', { title });
      if (made.status !== 201) throw new Error(`create event: HTTP ${made.status} ${JSON.stringify(made.json)}`);
      const event = made.json.event as ApiEventView;
      const key = await api.request('POST', `/events/${event.id}/stream-key/reveal`);
      if (key.status !== 200) throw new Error(`reveal key: HTTP ${key.status} ${JSON.stringify(key.json)}`);
      return { event, streamKey: String(key.json.streamKey), rtmpUrl: String(key.json.rtmpUrl) };
    },
    async getEvent(id) {
      const got = await api.request('GET', `/events/${id}`);
      if (got.status !== 200) throw new Error(`GET event: HTTP ${got.status} ${JSON.stringify(got.json)}`);
      return (got.json.event ?? got.json) as ApiEventView;
    },
  };
  return api;
}

/** rtmp://host:port[/live] + the stream key: the publish URL on a given RTMP endpoint (e.g. the balancer's). */
export function publishUrl(rtmpBase: string, streamKey: string): string {
  const b = rtmpBase.replace(/\/+$/, '');
  return `${/\/live$/.test(b) ? b : `${b}/live`}/${streamKey}`;
}
