// Hostile API: the auth matrix (every route × every kind of caller, expectations read from the OpenAPI document's
// x-onair-role), parallel wrong logins against the failure limit, webhooks to local/private addresses, and
// property-based fuzzing of every route with schemathesis (no 5xx, every answer matches the document).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { get, leak, sleep, type Ctx } from './kit.ts';

type Role = 'public' | 'operator' | 'admin';
interface Operation {
  method: string;
  path: string;
  role: Role;
  hasBody: boolean;
}

/** Every operation of the document with the role it declares. */
export async function operations(base: string): Promise<Operation[]> {
  const doc = (await (await fetch(`${base}/api/v1/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { 'x-onair-role'?: Role; security?: unknown[]; requestBody?: unknown }>>;
  };
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const role = op['x-onair-role'] ?? (op.security && op.security.length > 0 ? undefined : 'public');
      if (!role) throw new Error(`${method} ${path}: the document does not say which role it needs (x-onair-role)`);
      ops.push({ method: method.toUpperCase(), path, role, hasBody: op.requestBody !== undefined });
    }
  }
  return ops;
}

type Caller = 'none' | 'garbled' | 'garbled-cookie' | 'viewer' | 'moderator' | 'admin' | 'cookie-no-csrf';
const RANK: Record<Role, number> = { public: 0, operator: 1, admin: 2 };

/** What `caller` must get from a route needing `role` with `method`: 'refuse401', 'refuse403' or 'pass'. */
function expected(role: Role, caller: Caller, method: string): 'refuse401' | 'refuse403' | 'pass' {
  if (role === 'public') return 'pass';
  if (caller === 'none' || caller === 'garbled' || caller === 'garbled-cookie' || caller === 'viewer') return 'refuse401';
  if (caller === 'moderator') return RANK.operator >= RANK[role] ? 'pass' : 'refuse403';
  if (caller === 'cookie-no-csrf') return ['GET', 'HEAD', 'OPTIONS'].includes(method) ? 'pass' : 'refuse403';
  return 'pass';
}

/** Runs the auth matrix. */
export async function authMatrix(ctx: Ctx): Promise<void> {
  const { server, creds } = ctx;
  const ops = await operations(server.base);
  ctx.check('OpenAPI document lists ≥ 30 operations, each with its role', ops.length >= 30, `${ops.length}`);
  const headers: Record<Caller, Record<string, string>> = {
    none: {},
    garbled: { authorization: 'Bearer oat_' + 'Zz9'.repeat(12) },
    'garbled-cookie': { cookie: 'onair_session=' + 'Q'.repeat(43) },
    viewer: { authorization: `Bearer ${creds.viewer}` },
    moderator: { authorization: `Bearer ${creds.moderator}` },
    admin: { authorization: `Bearer ${creds.admin}` },
    'cookie-no-csrf': { cookie: creds.cookie },
  };
  // Ids that pass validation but name nothing: an admin's request reaches the handler and ends in a 4xx.
  const fill = (p: string) => p.replace('{id}', 'nOsUcHeVeNt01').replace(/\{[A-Za-z]+\}/g, 'nosuchthing01');
  for (const op of ops) {
    if (op.path.endsWith('/auth/logout') || op.path.endsWith('/auth/login')) continue; // would end the session / count a failure
    for (const caller of Object.keys(headers) as Caller[]) {
      const exp = expected(op.role, caller, op.method);
      const r = await get(`${server.base}${fill(op.path)}`, {
        method: op.method,
        headers: { ...headers[caller], 'x-forwarded-for': '198.51.100.77', ...(op.hasBody ? { 'content-type': 'application/json' } : {}) },
        body: op.hasBody ? '{}' : undefined,
        timeoutMs: 5_000,
      });
      const ok =
        exp === 'refuse401'
          ? r.status === 401
          : exp === 'refuse403'
            ? r.status === 403
            : r.status !== 401 && r.status !== 403 && r.status < 500 && r.status > 0;
      const l = r.status >= 400 ? leak(r.body) : undefined;
      ctx.check(`auth ${op.method} ${op.path} as ${caller} (${op.role}): ${exp}`, ok && !l, `got ${r.status}${l ? ` (${l})` : ''}`);
    }
  }
  // Logout: a cookie session without CSRF cannot be ended by a cross-site form; with it, it can (checked last).
  const noCsrf = await get(`${server.base}/api/v1/auth/logout`, { method: 'POST', headers: { cookie: creds.cookie } });
  ctx.check('auth POST /auth/logout as cookie-no-csrf: 403', noCsrf.status === 403, `got ${noCsrf.status}`);
  const none = await get(`${server.base}/api/v1/auth/logout`, { method: 'POST' });
  ctx.check('auth POST /auth/logout as none: 401', none.status === 401, `got ${none.status}`);
}

/** Parallel wrong passwords must not get past the failure limit (ONAIR_LOGIN_MAX_FAILURES, 5 by default). */
export async function loginBurst(ctx: Ctx, maxFailures: number): Promise<void> {
  const { server, creds } = ctx;
  const from = { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' };
  const burst = await Promise.all(
    Array.from({ length: 40 }, () =>
      get(`${server.base}/api/v1/auth/login`, {
        method: 'POST',
        headers: from,
        body: JSON.stringify({ email: creds.adminEmail, password: 'wrong-password-guess' }),
      }),
    ),
  );
  const tried = burst.filter((r) => r.status === 401).length;
  const limited = burst.filter((r) => r.status === 429).length;
  ctx.check(
    `40 parallel wrong logins: at most ${maxFailures} checked (401), the rest 429`,
    tried <= maxFailures && tried + limited === 40,
    `${tried}×401, ${limited}×429, others ${burst
      .map((r) => r.status)
      .filter((s) => s !== 401 && s !== 429)
      .join(',')}`,
  );
  const right = await get(`${server.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: from,
    body: JSON.stringify({ email: creds.adminEmail, password: creds.adminPassword }),
  });
  ctx.check('after the burst even the right password from that address is 429', right.status === 429, `got ${right.status}`);
  const elsewhere = await get(`${server.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.10' },
    body: JSON.stringify({ email: creds.adminEmail, password: creds.adminPassword }),
  });
  ctx.check('another address still signs in', elsewhere.status === 200, `got ${elsewhere.status}`);
}

/**
 * Webhooks to loopback, link-local and private hosts are refused by default: either at creation (4xx), or by
 * never delivering. Only loopback receivers are ever used here, so nothing can leave the machine whatever the
 * server does.
 */
export async function webhookTargets(ctx: Ctx): Promise<void> {
  const { server, creds } = ctx;
  const hits: string[] = [];
  const receiver = createServer((req, res) => {
    hits.push(req.url ?? '');
    req.resume();
    res.end('ok');
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as { port: number }).port;
  const auth = { authorization: `Bearer ${creds.admin}`, 'content-type': 'application/json' };
  const made: string[] = [];
  try {
    for (const url of [
      `http://127.0.0.1:${port}/a`,
      `http://localhost:${port}/b`,
      `http://[::ffff:127.0.0.1]:${port}/c`,
      `http://0x7f000001:${port}/d`,
      `http://2130706433:${port}/e`,
    ]) {
      const r = await get(`${server.base}/api/v1/webhooks`, { method: 'POST', headers: auth, body: JSON.stringify({ url }) });
      if (r.status === 201) made.push((JSON.parse(r.body) as { webhook: { id: string } }).webhook.id);
      ctx.check(
        `webhook to ${url}: refused (4xx JSON) or accepted`,
        (r.status >= 400 && r.status < 500 && !leak(r.body)) || r.status === 201,
        `got ${r.status}`,
      );
    }
    // Make deliveries happen: an event created and ended.
    const ev = await get(`${server.base}/api/v1/events`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ title: 'webhook probe' }),
    });
    const id = (JSON.parse(ev.body) as { event: { id: string } }).event.id;
    await get(`${server.base}/api/v1/events/${id}/end`, { method: 'POST', headers: { authorization: auth.authorization } });
    await sleep(3_000);
    ctx.check(
      'no webhook delivery reached a loopback address (private targets refused by default)',
      hits.length === 0,
      `${hits.length} deliveries: ${hits.join(' ')}; ${made.length} of 5 accepted at creation`,
    );
  } finally {
    for (const id of made)
      await get(`${server.base}/api/v1/webhooks/${id}`, { method: 'DELETE', headers: { authorization: auth.authorization } });
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  }
}

/** Where install-prereqs puts schemathesis (a venv of its own). */
export function schemathesisBin(): string {
  const dir =
    process.env.SCHEMATHESIS_VENV ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'onair', 'schemathesis-4.32.5');
  return join(dir, 'bin', 'schemathesis');
}

/**
 * CPython 3.11's ast module can raise a spurious SystemError ("AST constructor recursion depth mismatch", CPython
 * gh-106905) or a RecursionError inside hypothesis while it builds a case: the fuzzer's interpreter failing, not an
 * answer of ours. Such an error fails the run (exit 1) though every case generated passed. A run passes when it exited
 * 0, or when every case passed and every runtime error is one of these; a network error, a timeout or any failed check
 * still fails it.
 */
export function fuzzVerdict(code: number | null, text: string, ndjson: string): { ok: boolean; toolErrors: string[] } {
  if (code === 0) return { ok: true, toolErrors: [] };
  const counts = /^\s*(\d+) generated, (\d+) passed\s*$/m.exec(text);
  const allPassed = counts !== null && counts[1] === counts[2];
  const toolErrors: string[] = [];
  let otherErrors = 0;
  for (const line of ndjson.split('\n')) {
    if (!line.startsWith('{"NonFatalError"')) continue;
    const { value, label } = (JSON.parse(line) as { NonFatalError: { value?: { type?: string; message?: string }; label?: string } })
      .NonFatalError;
    if (value?.type === 'SystemError' || value?.type === 'RecursionError') toolErrors.push(`${label}: ${value.type}: ${value.message}`);
    else otherErrors++;
  }
  return { ok: code === 1 && allPassed && otherErrors === 0 && toolErrors.length > 0, toolErrors };
}

/**
 * Fuzzes every operation but these: /webhooks (creating one would make the server call out to generated hosts;
 * the auth matrix and webhookTargets cover them), login/logout (they would lock the address out and end sessions)
 * and the health SSE stream (it never ends: a read timeout, not a finding). Ids in paths are generated, never taken
 * from answers (see below). Requests carry X-Forwarded-For, so the
 * fuzzer's rate limits are its own.
 */
export async function fuzz(ctx: Ctx, budgetSec: number): Promise<void> {
  const bin = schemathesisBin();
  if (!ctx.check('schemathesis is installed (scripts/install-prereqs.sh)', existsSync(bin), bin)) return;
  const out = mkdtempSync(join(tmpdir(), 'onair-hostile-st-'));
  try {
    // Schemathesis reuses ids from earlier answers by default: it would find the live event (GET /events) and end
    // it or rotate its key — an admin's right, and the end of the stream this suite watches. Generated ids only.
    const config = join(out, 'schemathesis.toml');
    const report = join(out, 'events.ndjson');
    writeFileSync(
      config,
      ['examples', 'coverage', 'fuzzing'].map((p) => `[phases.${p}.extra-data-sources]\nresponses = false\n`).join('\n'),
    );
    const args = [
      '--config-file',
      config,
      'run',
      `${ctx.server.base}/api/v1/openapi.json`,
      '--url',
      ctx.server.base,
      '-H',
      `Authorization: Bearer ${ctx.creds.fuzzAdmin}`,
      '-H',
      'X-Forwarded-For: 192.0.2.44',
      '--checks',
      'not_a_server_error,response_schema_conformance',
      '--phases',
      'examples,coverage,fuzzing',
      '--max-examples',
      '12',
      '--max-time',
      String(budgetSec),
      '--workers',
      '2',
      '--request-timeout',
      '10',
      '--seed',
      '20261202',
      '--no-shrink',
      '--exclude-path-regex',
      '^/api/v1/(webhooks|auth/login|auth/logout|events/[^/]+/health/stream)$',
      '--suppress-health-check',
      'all',
      '--report',
      'ndjson',
      '--report-ndjson-path',
      report,
      '--warnings',
      'off',
    ];
    const { code, text } = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn(bin, args, {
        cwd: out,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_TELEMETRY: 'false' },
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      const kill = setTimeout(() => child.kill('SIGKILL'), (budgetSec + 60) * 1000);
      child.on('close', (c) => {
        clearTimeout(kill);
        resolve({ code: c, text });
      });
    });
    const cases = Number(/(\d+) generated/.exec(text)?.[1] ?? 0);
    const verdict = fuzzVerdict(code, text, existsSync(report) ? readFileSync(report, 'utf8') : '');
    ctx.tried(cases);
    const summary = text
      .split('\n')
      .filter((l) => /passed|failed|error|Test cases|Operations/i.test(l))
      .slice(-8)
      .join(' | ');
    ctx.note(`schemathesis: exit ${code}, ${cases} cases; ${summary}`);
    if (code !== 0) ctx.note(text.slice(-6_000));
    for (const e of verdict.toolErrors) ctx.note(`schemathesis: the fuzzer's own Python failed, not a finding: ${e}`);
    ctx.check('schemathesis: no 5xx, every answer matches the document', verdict.ok, `exit ${code}: ${summary.slice(0, 600)}`);
    ctx.check('schemathesis ran test cases', cases > 50, `${cases} cases`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
