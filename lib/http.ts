// HTTP helpers shared by every role: JSON errors, listening and closing servers.
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Service } from './lifecycle.ts';

/** Largest SDP offer a WHIP or WHEP endpoint (or an edge routing WHEP) accepts. */
export const MAX_OFFER_BYTES = 64 * 1024;

/**
 * An error with an HTTP status and a stable code, answered as `{"error":{"code","message"}}` (plus `headers`) by the
 * API and the WHIP/WHEP endpoints.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Sends `body` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Sends the project's JSON error shape: `{"error":{"code","message"}}`. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/** Starts `server` listening; resolves to the bound port, rejects on EADDRINUSE and friends. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes `server`, ending idle keep-alive connections and, after `graceMs`, every other one. */
export function closeServer(server: Server, graceMs = 2000): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** A listening HTTP server as a Service; `port` is the bound port once started. */
export interface HttpService extends Service {
  readonly port: number;
}

/** Wraps `server` as a Service: start() listens on `host:port` (the message names the port when it cannot), stop() closes it (see closeServer). */
export function httpService(server: Server, where: { port: number; host: string; graceMs?: number }): HttpService {
  let bound = where.port;
  return {
    get port() {
      return bound;
    },
    async start() {
      try {
        bound = await listen(server, where.port, where.host);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const why = e.code === 'EADDRINUSE' ? 'port already in use' : e.message;
        throw new Error(`HTTP server cannot listen on ${where.host}:${where.port}: ${why}`, { cause: err });
      }
    },
    stop: () => closeServer(server, where.graceMs),
  };
}
