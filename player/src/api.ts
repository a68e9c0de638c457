// Typed client for the few control-plane endpoints the viewer pages read. The body types come from the server's
// zod schemas (type-only import: erased from the bundle).
import type { ApiClip, ApiEvent, ApiEventStatus } from '../../control/api-types.ts';

/** An API call that failed; `status` is the HTTP status (0 for a network failure). */
export class ApiError extends Error {
  /** HTTP status, 0 when no response arrived. */
  readonly status: number;
  /** Machine-readable code from the error body, if any. */
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

async function getJson(url: string, signal?: AbortSignal): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store', signal });
  } catch (err) {
    if (signal?.aborted === true) throw err;
    throw new ApiError(0, 'network', err instanceof Error ? err.message : String(err));
  }
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    throw new ApiError(
      res.status,
      typeof error?.code === 'string' ? error.code : 'http_error',
      typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`,
    );
  }
  return body;
}

/** Lists events, optionally only those with the given status. */
export async function listEvents(status?: ApiEventStatus, signal?: AbortSignal): Promise<ApiEvent[]> {
  const query = status === undefined ? '' : `?status=${encodeURIComponent(status)}`;
  const body = (await getJson(`/api/v1/events${query}`, signal)) as { events?: ApiEvent[] } | null;
  return Array.isArray(body?.events) ? body.events : [];
}

/** Fetches one event by its slug; throws ApiError (status 404) when there is none. */
export async function getEventBySlug(slug: string, signal?: AbortSignal): Promise<ApiEvent> {
  const body = (await getJson(`/api/v1/events/by-slug/${encodeURIComponent(slug)}`, signal)) as {
    event?: ApiEvent;
  } | null;
  if (body?.event === undefined) throw new ApiError(500, 'bad_response', 'response has no event');
  return body.event;
}

/** Fetches one clip; throws ApiError (status 404) when there is none. */
export async function getClip(id: string, signal?: AbortSignal): Promise<ApiClip> {
  const body = (await getJson(`/api/v1/clips/${encodeURIComponent(id)}`, signal)) as { clip?: ApiClip } | null;
  if (body?.clip === undefined) throw new ApiError(500, 'bad_response', 'response has no clip');
  return body.clip;
}
