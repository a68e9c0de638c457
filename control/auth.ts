// Operator authentication: console sessions (httpOnly SameSite cookie + CSRF token), bearer API tokens for
// scripts, login rate limiting, and the access check every /api/v1 route runs (401 / 403 / CSRF 403).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Config } from '../config/schema.ts';
import type { Db } from '../lib/store/db.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, type Registry } from '../lib/metrics.ts';
import { ApiError } from '../lib/http.ts';
import type { Operator, OperatorService } from './operators.ts';
import { createMemoryAttemptLimiter, type AttemptLimiter } from '../lib/rate-limit/attempt-limiter.ts';

/** Who may call a route: anyone, any signed-in operator (admins and moderators), or admins only. */
export type Access = 'public' | 'operator' | 'admin';

/** The session cookie's name. */
export const SESSION_COOKIE = 'onair_session';
/** The header carrying the CSRF token on cookie-authenticated writes. */
export const CSRF_HEADER = 'x-csrf-token';

/** The authenticated caller of a request. */
export interface Principal {
  operator: Operator;
  via: 'session' | 'token';
  /** Session callers only: the token unsafe requests must echo in X-CSRF-Token. */
  csrfToken?: string;
  /** Session callers only: SHA-256 of the cookie value. */
  sessionHash?: string;
  /** Token callers only. */
  tokenId?: string;
}

/** An API token as listed (never the token itself). */
export interface ApiTokenInfo {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

export { ApiError };

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** What auth needs from its parent. */
export interface AuthDeps {
  config: Pick<Config, 'sessionTtlHours' | 'loginMaxFailures' | 'loginWindowSec' | 'publicUrl'>;
  db: Db;
  operators: OperatorService;
  logger: Logger;
  registry: Registry;
  /** Counts login attempts (Redis in cluster mode, so every node shares the count); default in-process. */
  loginLimiter?: AttemptLimiter;
}

/** Sessions, tokens, login and the per-route access check. */
export interface Auth {
  /** The caller of `req`, if any (cookie session or bearer token); cached on the request. */
  principal(req: Request): Promise<Principal | undefined>;
  /** Throws ApiError 401 (not signed in), 403 `forbidden` (role) or 403 `csrf_failed`; returns the principal (undefined for public access). */
  check(req: Request, access: Access): Promise<Principal | undefined>;
  /** Verifies credentials (rate limited per address and e-mail), opens a session and sets its cookie. */
  login(req: Request, res: Response, email: string, password: string): Promise<{ operator: Operator; csrfToken: string }>;
  /** Ends the caller's session (cookie cleared) — tokens are revoked with revokeToken. */
  logout(principal: Principal, res: Response): Promise<void>;
  /** Issues a bearer token for an operator; the token is returned only here. */
  createToken(operatorId: string, name: string): Promise<{ token: string; info: ApiTokenInfo }>;
  /** An operator's live tokens. */
  listTokens(operatorId: string): Promise<ApiTokenInfo[]>;
  /** Revokes one of an operator's tokens; false if unknown. */
  revokeToken(operatorId: string, tokenId: string): Promise<boolean>;
  /** Starts the expired-session sweeper. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds operator auth over the store. */
export function createAuth(deps: AuthDeps): Auth {
  const { config, db, operators } = deps;
  const log = deps.logger.child({ component: 'auth' });
  const ttlMs = config.sessionTtlHours * 3600_000;
  const secureCookie = config.publicUrl?.startsWith('https:') ?? false;
  const attempts = deps.loginLimiter ?? createMemoryAttemptLimiter();
  const logins = new Counter({
    name: 'onair_control_logins_total',
    help: 'Operator login attempts by outcome.',
    labelNames: ['outcome'],
    registers: [deps.registry],
  });
  const cache = new WeakMap<Request, Promise<Principal | undefined>>();
  let sweeper: NodeJS.Timeout | undefined;

  async function fromSession(value: string): Promise<Principal | undefined> {
    const idHash = sha256(value);
    const row = await db.selectFrom('operator_sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    if (!row || Number(row.expires_at) <= Date.now()) return undefined;
    const operator = await operators.byId(row.operator_id);
    if (!operator || operator.disabled) return undefined;
    return { operator, via: 'session', csrfToken: row.csrf_token, sessionHash: idHash };
  }

  async function fromToken(token: string): Promise<Principal | undefined> {
    const row = await db
      .selectFrom('api_tokens')
      .select(['id', 'operator_id'])
      .where('token_hash', '=', sha256(token))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row) return undefined;
    const operator = await operators.byId(row.operator_id);
    if (!operator || operator.disabled) return undefined;
    await db.updateTable('api_tokens').set({ last_used_at: Date.now() }).where('id', '=', row.id).execute();
    return { operator, via: 'token', tokenId: row.id };
  }

  async function resolve(req: Request): Promise<Principal | undefined> {
    const authz = req.headers.authorization;
    if (authz !== undefined) {
      const m = /^Bearer\s+(oat_[A-Za-z0-9_-]{20,100})\s*$/i.exec(authz);
      // A malformed or unknown token is an authentication failure, even if a cookie is present too.
      return m ? fromToken(m[1]!) : undefined;
    }
    const cookie = (req.cookies as Record<string, unknown> | undefined)?.[SESSION_COOKIE];
    if (typeof cookie === 'string' && /^[A-Za-z0-9_-]{20,100}$/.test(cookie)) return fromSession(cookie);
    return undefined;
  }

  const principal = (req: Request): Promise<Principal | undefined> => {
    let p = cache.get(req);
    if (!p) cache.set(req, (p = resolve(req)));
    return p;
  };

  const tokenInfo = (r: { id: string; name: string; created_at: number; last_used_at: number | null }): ApiTokenInfo => ({
    id: r.id,
    name: r.name,
    createdAt: Number(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
  });

  return {
    principal,

    async check(req, access) {
      if (access === 'public') return undefined;
      const p = await principal(req);
      if (!p) {
        throw new ApiError(
          401,
          'unauthenticated',
          req.headers.authorization ? 'invalid or revoked API token' : 'sign in first (session cookie or bearer token)',
          {
            'www-authenticate': 'Bearer realm="onair"',
          },
        );
      }
      if (access === 'admin' && p.operator.role !== 'admin') throw new ApiError(403, 'forbidden', 'this needs the admin role');
      if (p.via === 'session' && !SAFE_METHODS.has(req.method)) {
        const sent = req.headers[CSRF_HEADER];
        if (typeof sent !== 'string' || !p.csrfToken || !sameSecret(sent, p.csrfToken)) {
          throw new ApiError(403, 'csrf_failed', `missing or wrong ${CSRF_HEADER} header (GET /api/v1/auth/me returns the token)`);
        }
      }
      return p;
    },

    async login(req, res, email, password) {
      const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
      // Both counters share the address as a hash tag (one Redis Cluster slot); the e-mail is hashed, not stored.
      const accountKey = `login:{${ip}}:account:${sha256(email.trim().toLowerCase()).slice(0, 32)}`;
      const addressKey = `login:{${ip}}:address`;
      // Every attempt is reserved as a failure before the password is checked, so parallel attempts cannot all
      // slip past the limit; a correct password gives its reservation back.
      let reserved;
      try {
        reserved = await attempts.reserve(
          [
            { key: accountKey, max: config.loginMaxFailures },
            { key: addressKey, max: config.loginMaxFailures * 10 },
          ],
          config.loginWindowSec * 1000,
        );
      } catch (err) {
        log.error({ err: (err as Error).message }, 'login limiter unavailable');
        throw new ApiError(503, 'unavailable', 'signing in is unavailable right now; try again shortly', { 'retry-after': '5' });
      }
      if (!reserved.allowed) {
        logins.inc({ outcome: 'rate_limited' });
        const retry = Math.max(1, Math.ceil(reserved.retryAfterMs / 1000));
        throw new ApiError(429, 'rate_limited', `too many failed logins; try again in ${retry} s`, { 'retry-after': String(retry) });
      }
      const giveBack = (keys: string[]) =>
        attempts.release(keys).catch((err: Error) => log.error({ err: err.message }, 'login limiter release failed'));
      let operator: Operator | undefined;
      try {
        operator = await operators.verify(email, password);
      } catch (err) {
        await giveBack([accountKey, addressKey]);
        throw err;
      }
      if (!operator) {
        logins.inc({ outcome: 'failed' });
        log.warn({ remoteAddress: ip }, 'operator login failed');
        throw new ApiError(401, 'invalid_credentials', 'wrong e-mail or password');
      }
      // The right password clears the account's earlier failures and is not counted against the address.
      await Promise.all([
        attempts.reset(accountKey).catch((err: Error) => log.error({ err: err.message }, 'login limiter reset failed')),
        giveBack([addressKey]),
      ]);
      const value = randomBytes(32).toString('base64url');
      const csrfToken = randomBytes(24).toString('base64url');
      const now = Date.now();
      await db
        .insertInto('operator_sessions')
        .values({ id_hash: sha256(value), operator_id: operator.id, csrf_token: csrfToken, created_at: now, expires_at: now + ttlMs })
        .execute();
      res.cookie(SESSION_COOKIE, value, {
        httpOnly: true,
        sameSite: 'strict',
        secure: secureCookie || req.secure,
        path: '/',
        maxAge: ttlMs,
      });
      logins.inc({ outcome: 'ok' });
      log.info({ operatorId: operator.id, role: operator.role }, 'operator signed in');
      return { operator, csrfToken };
    },

    async logout(p, res) {
      if (p.sessionHash) await db.deleteFrom('operator_sessions').where('id_hash', '=', p.sessionHash).execute();
      res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', secure: secureCookie, path: '/' });
    },

    async createToken(operatorId, name) {
      const token = 'oat_' + randomBytes(32).toString('base64url');
      const row = {
        id: 'tok_' + randomBytes(9).toString('base64url'),
        operator_id: operatorId,
        name,
        token_hash: sha256(token),
        created_at: Date.now(),
        last_used_at: null,
        revoked_at: null,
      };
      await db.insertInto('api_tokens').values(row).execute();
      return { token, info: tokenInfo(row) };
    },

    async listTokens(operatorId) {
      const rows = await db
        .selectFrom('api_tokens')
        .select(['id', 'name', 'created_at', 'last_used_at'])
        .where('operator_id', '=', operatorId)
        .where('revoked_at', 'is', null)
        .orderBy('created_at', 'asc')
        .execute();
      return rows.map(tokenInfo);
    },

    async revokeToken(operatorId, tokenId) {
      const r = await db
        .updateTable('api_tokens')
        .set({ revoked_at: Date.now() })
        .where('id', '=', tokenId)
        .where('operator_id', '=', operatorId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },

    async start() {
      const sweep = () => {
        db.deleteFrom('operator_sessions')
          .where('expires_at', '<=', Date.now())
          .execute()
          .catch((err: Error) => log.error({ err: err.message }, 'session sweep failed'));
      };
      sweep();
      sweeper = setInterval(sweep, 10 * 60_000);
      sweeper.unref();
    },

    async stop() {
      clearInterval(sweeper);
      sweeper = undefined;
    },
  };
}
