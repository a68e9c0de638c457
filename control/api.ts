// Public read API under /api/v1 (express): events for the player.
import express, { type Request, type Response, type NextFunction } from 'express';
import type { EventRecord, EventService } from './events.ts';
import type { EventStatus } from '../lib/store/schema.ts';

const statuses: EventStatus[] = ['idle', 'live', 'offline', 'ended'];

/** URLs of an event that are safe to show anyone (never the stream key). */
export function publicEvent(e: EventRecord): EventRecord & { hlsUrl: string; watchUrl: string } {
  return { ...e, hlsUrl: `/live/${e.id}/master.m3u8`, watchUrl: `/watch/${e.slug}` };
}

function apiError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

/** Builds the /api/v1 router. */
export function createApiRouter(deps: { events: EventService }): express.Router {
  const r = express.Router();
  r.get('/events', async (req: Request, res: Response) => {
    const raw = typeof req.query.status === 'string' ? req.query.status.split(',') : [];
    const bad = raw.filter((s) => !statuses.includes(s as EventStatus));
    if (bad.length) return apiError(res, 400, 'invalid_status', `unknown status ${bad.join(', ')}; use ${statuses.join(', ')}`);
    const events = await deps.events.list(raw as EventStatus[]);
    res.set('cache-control', 'no-store').json({ events: events.map(publicEvent) });
  });
  r.get('/events/by-slug/:slug', async (req: Request, res: Response) => {
    const e = await deps.events.bySlug(String(req.params.slug));
    if (!e) return apiError(res, 404, 'not_found', 'no event with that slug');
    res.set('cache-control', 'no-store').json({ event: publicEvent(e) });
  });
  r.get('/events/:id', async (req: Request, res: Response) => {
    const e = await deps.events.byId(String(req.params.id));
    if (!e) return apiError(res, 404, 'not_found', 'no event with that id');
    res.set('cache-control', 'no-store').json({ event: publicEvent(e) });
  });
  r.use((_req: Request, res: Response) => apiError(res, 404, 'not_found', 'no such API route'));
  r.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.parse.failed') return apiError(res, 400, 'invalid_json', 'request body is not valid JSON');
    apiError(res, err.status && err.status < 500 ? err.status : 500, 'internal', err.status && err.status < 500 ? err.message : 'internal error');
  });
  return r;
}
