// Who may read /metrics: anyone by default (as Prometheus expects), or only callers with the configured bearer token.
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Whether a request with `authorization` may read /metrics when `token` is configured (always, when it is not).
 * Compares digests in constant time, so neither the token's content nor its length leaks through timing.
 */
export function metricsAllowed(token: string | undefined, authorization: string | undefined): boolean {
  if (!token) return true;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  const same = timingSafeEqual(digest(m?.[1] ?? ''), digest(token));
  return same && m !== null;
}

/** The JSON 401 a refused /metrics request gets, with its headers. */
export const METRICS_UNAUTHORIZED = {
  status: 401,
  code: 'unauthenticated',
  message: 'this /metrics needs Authorization: Bearer <ONAIR_METRICS_TOKEN>',
  headers: { 'www-authenticate': 'Bearer realm="metrics"', 'cache-control': 'no-store' },
} as const;
