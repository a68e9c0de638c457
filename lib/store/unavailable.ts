// Telling "the database is down" from "the query was wrong", for errors clients see.
/** PostgreSQL SQLSTATE classes and codes meaning "the server is not there right now" (08 connection, 57P0x shutdown, 53300 too many connections). */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|53300)$/;
/** Socket errors of a database connection that is down or going away. */
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTCONN']);

/**
 * True when `err` says the store cannot be reached (its server is down, restarting or refusing connections), as
 * opposed to a bad query: callers answer 503 `store_unavailable` (API) or `chat_unavailable` (chat), not 500.
 */
export function isStoreUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    message,
  );
}
