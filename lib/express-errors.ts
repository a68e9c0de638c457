// The last word on errors in every express app: the project's JSON error shape, never Express's HTML page (which
// carries a stack and absolute paths unless NODE_ENV=production). Body-parser failures get their documented codes.
import { STATUS_CODES } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { isStoreUnavailable } from './store/unavailable.ts';

/** A client-facing error: HTTP status, stable code, message safe to show. */
export interface PublicError {
  status: number;
  code: string;
  message: string;
}

/** body-parser's `err.type` → what the client is told. */
const BODY_ERRORS: Record<string, PublicError> = {
  'entity.parse.failed': { status: 400, code: 'invalid_json', message: 'request body is not valid JSON' },
  'entity.too.large': { status: 413, code: 'too_large', message: 'request body is too large' },
  'parameters.too.many': { status: 413, code: 'too_large', message: 'request body has too many parameters' },
  'encoding.unsupported': { status: 415, code: 'unsupported_encoding', message: 'unsupported content-encoding' },
  'charset.unsupported': { status: 415, code: 'unsupported_charset', message: 'unsupported charset (send UTF-8)' },
  'entity.verify.failed': { status: 403, code: 'forbidden', message: 'request body was refused' },
  'request.aborted': { status: 400, code: 'request_aborted', message: 'request body was cut off' },
  'request.size.invalid': { status: 400, code: 'invalid_request', message: 'request body size does not match content-length' },
};

/**
 * The client-facing form of `err`: a body-parser error by its type, another 4xx by its status (with the status's
 * standard text, never the error's own message, which may hold internals), anything else a 500 `internal`.
 */
export function publicError(err: unknown): PublicError {
  const e = (err ?? {}) as { type?: unknown; status?: unknown; statusCode?: unknown };
  const known = typeof e.type === 'string' ? BODY_ERRORS[e.type] : undefined;
  if (known) return known;
  const status = Number(e.status ?? e.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    return { status, code: status === 404 ? 'not_found' : 'bad_request', message: (STATUS_CODES[status] ?? 'bad request').toLowerCase() };
  }
  if (isStoreUnavailable(err)) return { status: 503, code: 'store_unavailable', message: 'the database is unavailable; try again shortly' };
  return { status: 500, code: 'internal', message: 'internal error' };
}

/** A final express error handler: `{"error":{"code","message"}}` for every error; 500s are logged with their cause. */
export function jsonErrorHandler(log: { error(obj: object, msg: string): void }) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    const pub = publicError(err);
    if (pub.code === 'store_unavailable')
      log.error({ err: (err as Error)?.message, method: req.method, path: req.path }, 'store unavailable');
    else if (pub.status >= 500)
      log.error({ err: (err as Error)?.message, stack: (err as Error)?.stack, method: req.method, path: req.path }, 'request failed');
    res
      .status(pub.status)
      .set('cache-control', 'no-store')
      .json({ error: { code: pub.code, message: pub.message } });
  };
}
