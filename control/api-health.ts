// /api/v1 routes of live health: ingest health history and its live stream (Server-Sent Events), viewer history.
import { z } from 'zod';
import { ApiError } from './auth.ts';
import type { RouteBuilder } from './api-routes.ts';
import { epochMs, eventIdParams, healthSampleSchema } from './api-schemas.ts';
import type { EventService } from './events.ts';
import type { HealthMonitor } from './health.ts';
import type { ViewerHistory } from './viewer-history.ts';

/** SSE keep-alive comment period. */
const SSE_PING_MS = 15_000;

/** Registers the health routes. */
export function registerHealthRoutes(b: RouteBuilder, deps: { events: EventService; health: HealthMonitor; viewers: ViewerHistory }): void {
  const tags = ['health'];
  const since = z.strictObject({
    since: z.coerce.number().int().min(0).optional().meta({ description: 'Only samples after this time (ms since epoch)' }),
  });
  const mustExist = async (id: string) => {
    if (!(await deps.events.byId(id))) throw new ApiError(404, 'not_found', 'no event with that id');
  };

  b.route({
    method: 'get',
    path: '/events/:id/health',
    summary:
      'Ingest health of the last hour (bitrate, fps, keyframe interval, resolution, codecs, late/dropped frames, ffmpeg speed) with warnings',
    tags,
    access: 'operator',
    params: eventIdParams,
    query: since,
    responses: {
      200: { description: 'Samples, oldest first', schema: z.object({ samples: z.array(healthSampleSchema) }) },
      404: { description: 'No such event (`not_found`)' },
    },
    handler: async ({ params, query }) => {
      await mustExist(params.id);
      return { samples: deps.health.history(params.id, query.since) };
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/health/stream',
    summary: 'Live ingest health as Server-Sent Events (`event: health`, data: a HealthSample), starting with the last hour',
    tags,
    access: 'operator',
    params: eventIdParams,
    responses: {
      200: { description: 'text/event-stream of HealthSample', schema: healthSampleSchema, contentType: 'text/event-stream' },
      404: { description: 'No such event (`not_found`)' },
    },
    handler: async ({ req, res, params }) => {
      await mustExist(params.id);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      const send = (s: unknown) => res.write(`event: health\ndata: ${JSON.stringify(s)}\n\n`);
      for (const s of deps.health.history(params.id)) send(s);
      const unsubscribe = deps.health.subscribe(params.id, send);
      const ping = setInterval(() => res.write(': ping\n\n'), SSE_PING_MS);
      const done = () => {
        clearInterval(ping);
        unsubscribe();
      };
      req.on('close', done);
      res.on('error', done);
      return undefined;
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/viewers',
    summary: 'Viewer counts of the last hour',
    tags,
    access: 'operator',
    params: eventIdParams,
    query: since,
    responses: {
      200: {
        description: 'Samples, oldest first',
        schema: z.object({ samples: z.array(z.object({ at: epochMs, viewers: z.number().int() })) }),
      },
      404: { description: 'No such event (`not_found`)' },
    },
    handler: async ({ params, query }) => {
      await mustExist(params.id);
      return { samples: deps.viewers.history(params.id, query.since) };
    },
  });
}
