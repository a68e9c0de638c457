// The edge's error answers: the JSON error body, the raw-http error response, and the failure a fetch reports.
import type { ServerResponse } from 'node:http';

/** Content type of every JSON body the edge writes. */
export const JSON_TYPE = 'application/json; charset=utf-8';

/** The edge's JSON error body. */
export function errorBody(code: string, message: string): Buffer {
  return Buffer.from(JSON.stringify({ error: { code, message } }));
}

/** Sends a JSON error response; `extra` is a flat list of further header names and values. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, extra?: string[]): void {
  const body = errorBody(code, message);
  const headers = [
    'content-type',
    JSON_TYPE,
    'content-length',
    String(body.length),
    'cache-control',
    status === 404 ? 'max-age=1' : 'no-store',
    'access-control-allow-origin',
    '*',
  ];
  if (extra !== undefined) headers.push(...extra);
  res.writeHead(status, headers);
  res.end(body);
}

/** A failure to get an answer from any upstream; carries the status the client gets. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    readonly status: 502 | 503 | 504,
    message: string,
  ) {
    super(message);
  }
}
