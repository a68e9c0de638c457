// Operator auth over a real (SQLite) store: sessions with CSRF, bearer tokens, roles, login limits, expiry.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Request, Response } from 'express';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import type { Db } from '../lib/store/db.ts';
import type { AttemptLimiter } from '../lib/rate-limit/attempt-limiter.ts';
import { ApiError, CSRF_HEADER, SESSION_COOKIE, createAuth, type Auth, type AuthDeps } from './auth.ts';
import { OperatorService, type Operator } from './operators.ts';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';

const PASSWORD = 'long-enough-pw';
const config = { sessionTtlHours: 12, loginMaxFailures: 3, loginWindowSec: 900, publicUrl: 'http://127.0.0.1:8080' };

/** The parts of an express request auth reads. */
function request(opts: { method?: string; cookie?: string; authorization?: string; csrf?: string; ip?: string } = {}): Request {
  const headers: Record<string, string> = {};
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  if (opts.csrf !== undefined) headers[CSRF_HEADER] = opts.csrf;
  return {
    method: opts.method ?? 'GET',
    headers,
    cookies: opts.cookie === undefined ? {} : { [SESSION_COOKIE]: opts.cookie },
    ip: opts.ip ?? '192.0.2.1',
    socket: {},
    secure: false,
  } as unknown as Request;
}

/** A response that records the cookies auth sets and clears. */
function response(): Response & { set: { name: string; value: string; opts: Record<string, unknown> }[]; cleared: string[] } {
  const r = {
    set: [] as { name: string; value: string; opts: Record<string, unknown> }[],
    cleared: [] as string[],
    cookie(name: string, value: string, opts: Record<string, unknown>) {
      r.set.push({ name, value, opts });
      return r;
    },
    clearCookie(name: string) {
      r.cleared.push(name);
      return r;
    },
  };
  return r as unknown as ReturnType<typeof response>;
}

/** Resolves to the ApiError `p` rejects with. */
async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const err = await p.then(
    () => assert.fail('expected an ApiError'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApiError, `not an ApiError: ${String(err)}`);
  return err;
}

describe('auth', () => {
  let store: TestStore;
  let db: Db;
  let operators: OperatorService;
  let admin: Operator;
  let moderator: Operator;

  const make = (extra: Partial<AuthDeps> = {}): Auth =>
    createAuth({ config, db, operators, logger: createLogger('silent'), registry: createMetricsRegistry(), ...extra });

  /** Signs `email` in and returns the session cookie's value and the CSRF token. */
  async function signIn(auth: Auth, email: string, ip = '192.0.2.1'): Promise<{ cookie: string; csrf: string }> {
    const res = response();
    const { csrfToken } = await auth.login(request({ method: 'POST', ip }), res, email, PASSWORD);
    const set = res.set.find((c) => c.name === SESSION_COOKIE)!;
    return { cookie: set.value, csrf: csrfToken };
  }

  before(async () => {
    store = await createTestStore('auth');
    db = await store.open();
    operators = new OperatorService(db);
    admin = await operators.create({ email: 'admin@example.com', role: 'admin', password: PASSWORD });
    moderator = await operators.create({ email: 'mod@example.com', role: 'moderator', password: PASSWORD });
  });
  after(async () => {
    await store.cleanup();
  });

  it('lets anyone through public routes and answers 401 with a Bearer challenge otherwise', async () => {
    const auth = make();
    assert.equal(await auth.check(request(), 'public'), undefined);
    const none = await apiError(auth.check(request(), 'operator'));
    assert.deepEqual([none.status, none.code, none.message], [401, 'unauthenticated', 'sign in first (session cookie or bearer token)']);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="onair"');
    const badToken = await apiError(auth.check(request({ authorization: 'Bearer nonsense' }), 'operator'));
    assert.deepEqual([badToken.status, badToken.message], [401, 'invalid or revoked API token']);
    const badCookie = await apiError(auth.check(request({ cookie: 'x'.repeat(43) }), 'operator'));
    assert.equal(badCookie.status, 401);
  });

  it('opens a session on login: an httpOnly SameSite=Strict cookie, and a CSRF token that unsafe methods must echo', async () => {
    const auth = make();
    const res = response();
    const { operator, csrfToken } = await auth.login(request({ method: 'POST' }), res, ' Admin@Example.com ', PASSWORD);
    assert.equal(operator.id, admin.id);
    assert.equal(res.set.length, 1);
    const { name, value, opts } = res.set[0]!;
    assert.equal(name, SESSION_COOKIE);
    assert.match(value, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(opts, { httpOnly: true, sameSite: 'strict', secure: false, path: '/', maxAge: 12 * 3600_000 });

    const p = await auth.check(request({ cookie: value }), 'admin');
    assert.equal(p?.via, 'session');
    assert.equal(p?.operator.id, admin.id);
    assert.equal(p?.csrfToken, csrfToken);
    const missing = await apiError(auth.check(request({ method: 'POST', cookie: value }), 'operator'));
    assert.deepEqual([missing.status, missing.code], [403, 'csrf_failed']);
    const wrong = await apiError(auth.check(request({ method: 'DELETE', cookie: value, csrf: csrfToken.slice(1) + 'x' }), 'operator'));
    assert.equal(wrong.code, 'csrf_failed');
    assert.equal((await auth.check(request({ method: 'POST', cookie: value, csrf: csrfToken }), 'operator'))?.operator.id, admin.id);
  });

  it('sets the Secure flag when the public URL is https', async () => {
    const auth = createAuth({
      config: { ...config, publicUrl: 'https://live.example.com' },
      db,
      operators,
      logger: createLogger('silent'),
      registry: createMetricsRegistry(),
    });
    const res = response();
    await auth.login(request({ method: 'POST', ip: '192.0.2.50' }), res, 'mod@example.com', PASSWORD);
    assert.equal(res.set[0]!.opts.secure, true);
  });

  it('refuses admin routes to moderators with 403 forbidden', async () => {
    const auth = make();
    const { cookie } = await signIn(auth, 'mod@example.com');
    assert.equal((await auth.check(request({ cookie }), 'operator'))?.operator.id, moderator.id);
    const err = await apiError(auth.check(request({ cookie }), 'admin'));
    assert.deepEqual([err.status, err.code], [403, 'forbidden']);
  });

  it('ends a session on logout, at expiry, and when the operator is disabled', async () => {
    const auth = make();
    const a = await signIn(auth, 'mod@example.com');
    const p = (await auth.check(request({ cookie: a.cookie }), 'operator'))!;
    const res = response();
    await auth.logout(p, res);
    assert.deepEqual(res.cleared, [SESSION_COOKIE]);
    assert.equal(await auth.principal(request({ cookie: a.cookie })), undefined, 'logged out');

    const b = await signIn(auth, 'mod@example.com');
    await db
      .updateTable('operator_sessions')
      .set({ expires_at: Date.now() - 1 })
      .execute();
    assert.equal(await auth.principal(request({ cookie: b.cookie })), undefined, 'expired');

    const other = await operators.create({ email: 'leaver@example.com', role: 'moderator', password: PASSWORD });
    const c = await signIn(auth, 'leaver@example.com');
    assert.ok(await auth.principal(request({ cookie: c.cookie })));
    await operators.disable(other.id);
    assert.equal(await auth.principal(request({ cookie: c.cookie })), undefined, 'disabled');
  });

  it('authenticates bearer tokens without CSRF, records their use, and forgets them once revoked', async () => {
    const auth = make();
    const { token, info } = await auth.createToken(admin.id, 'deploy script');
    assert.match(token, /^oat_[A-Za-z0-9_-]{43}$/);
    assert.equal(info.lastUsedAt, null);
    const p = await auth.check(request({ method: 'POST', authorization: `Bearer ${token}` }), 'admin');
    assert.deepEqual([p?.via, p?.operator.id, p?.tokenId], ['token', admin.id, info.id]);
    const [listed] = await auth.listTokens(admin.id);
    assert.equal(listed?.id, info.id);
    assert.ok(listed?.lastUsedAt !== null && listed!.lastUsedAt >= info.createdAt, 'last use recorded');
    assert.deepEqual(await auth.listTokens(moderator.id), []);

    assert.equal(await auth.revokeToken(moderator.id, info.id), false, 'only its owner revokes a token');
    assert.equal(await auth.revokeToken(admin.id, info.id), true);
    assert.equal(await auth.revokeToken(admin.id, info.id), false, 'already revoked');
    const err = await apiError(auth.check(request({ authorization: `Bearer ${token}` }), 'operator'));
    assert.deepEqual([err.status, err.message], [401, 'invalid or revoked API token']);
    assert.deepEqual(await auth.listTokens(admin.id), []);
  });

  it('lets a bad Authorization header fail even when a valid session cookie comes with it', async () => {
    const auth = make();
    const { cookie } = await signIn(auth, 'admin@example.com', '192.0.2.60');
    const err = await apiError(auth.check(request({ cookie, authorization: 'Bearer oat_' + 'A'.repeat(43) }), 'operator'));
    assert.equal(err.status, 401);
  });

  it('refuses logins after loginMaxFailures failures with 429 and Retry-After, even with the right password', async () => {
    const auth = make();
    const ip = '198.51.100.7';
    for (let i = 0; i < config.loginMaxFailures; i++) {
      const err = await apiError(auth.login(request({ method: 'POST', ip }), response(), 'admin@example.com', 'wrong-password'));
      assert.deepEqual([err.status, err.code], [401, 'invalid_credentials']);
    }
    const limited = await apiError(auth.login(request({ method: 'POST', ip }), response(), 'admin@example.com', PASSWORD));
    assert.deepEqual([limited.status, limited.code], [429, 'rate_limited']);
    assert.ok(Number(limited.headers['retry-after']) >= 1 && Number(limited.headers['retry-after']) <= config.loginWindowSec);
    // Another address is not affected.
    await auth.login(request({ method: 'POST', ip: '198.51.100.8' }), response(), 'admin@example.com', PASSWORD);
  });

  it("clears an account's earlier failures when the right password comes", async () => {
    const auth = make();
    const ip = '198.51.100.9';
    const fail = () => apiError(auth.login(request({ method: 'POST', ip }), response(), 'mod@example.com', 'wrong-password'));
    for (let i = 0; i < config.loginMaxFailures - 1; i++) assert.equal((await fail()).status, 401);
    await auth.login(request({ method: 'POST', ip }), response(), 'mod@example.com', PASSWORD);
    for (let i = 0; i < config.loginMaxFailures - 1; i++) assert.equal((await fail()).status, 401, 'counted from zero again');
  });

  it('answers 503 when the login limiter is unavailable, without checking the password', async () => {
    const down: AttemptLimiter = {
      reserve: () => Promise.reject(new Error('redis down')),
      release: () => Promise.resolve(),
      reset: () => Promise.resolve(),
    };
    const auth = make({ loginLimiter: down });
    const err = await apiError(auth.login(request({ method: 'POST' }), response(), 'admin@example.com', PASSWORD));
    assert.deepEqual([err.status, err.code, err.headers['retry-after']], [503, 'unavailable', '5']);
  });
});
