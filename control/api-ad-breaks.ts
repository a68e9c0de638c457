// /api/v1 routes of ad breaks: start now or schedule, stop/cancel, the record, and the running one.
import { z } from 'zod';
import { ApiError } from './auth.ts';
import type { RouteBuilder } from './api-routes.ts';
import { adBreakSchema, epochMs, eventIdParams } from './api-schemas.ts';
import type { EventService } from './events.ts';
import { AdBreakConflictError, type AdBreaks } from './ad-breaks.ts';

/** Registers the ad-break routes. */
export function registerAdBreakRoutes(b: RouteBuilder, deps: { events: EventService; adBreaks: AdBreaks }): void {
  const { adBreaks } = deps;
  const tags = ['ad breaks'];
  const notFound = { 404: { description: 'No such event or ad break (`not_found`)' } };
  const mustExist = async (id: string) => {
    const e = await deps.events.byId(id);
    if (!e) throw new ApiError(404, 'not_found', 'no event with that id');
    return e;
  };

  b.route({
    method: 'post',
    path: '/events/:id/ad-breaks',
    summary: 'Start an ad break now, or schedule one (`startAt`)',
    description:
      'The origin writes an EXT-X-DATERANGE (CLASS, START-DATE, PLANNED-DURATION, SCTE35-OUT; DURATION and SCTE35-IN when it ends) into every rendition at the same instant, and viewers get an `ad_break_start` signal.',
    tags,
    access: 'admin',
    params: eventIdParams,
    body: z.strictObject({
      durationSec: z.number().min(5).max(600),
      startAt: epochMs.optional().meta({ description: 'Start time; omit to start now' }),
      creativeUrl: z
        .url({ protocol: /^https?$/ })
        .max(2000)
        .nullable()
        .optional()
        .meta({ description: 'Image or video to show; default: the configured creative or a slate' }),
    }),
    status: 201,
    responses: {
      201: { description: 'Started or scheduled', schema: z.object({ adBreak: adBreakSchema }) },
      ...notFound,
      409: { description: 'Overlaps another break (`ad_break_overlap`), or the event is not live (`not_live`) / ended (`event_ended`)' },
    },
    handler: async ({ params, body, principal }) => {
      const e = await mustExist(params.id);
      if (e.status === 'ended') throw new ApiError(409, 'event_ended', 'the event has ended');
      if (body.startAt === undefined && e.status !== 'live')
        throw new ApiError(409, 'not_live', 'the event is not live: schedule the break instead');
      try {
        return { adBreak: await adBreaks.create(e.id, body, principal?.operator.id) };
      } catch (err) {
        if (err instanceof AdBreakConflictError) throw new ApiError(409, 'ad_break_overlap', err.message);
        if (err instanceof RangeError) throw new ApiError(400, 'invalid_request', err.message);
        throw err;
      }
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/ad-breaks',
    summary: 'Every ad break of the event (start, duration, viewers at start), newest first',
    tags,
    access: 'operator',
    params: eventIdParams,
    responses: { 200: { description: 'Ad breaks', schema: z.object({ adBreaks: z.array(adBreakSchema) }) }, ...notFound },
    handler: async ({ params }) => {
      await mustExist(params.id);
      return { adBreaks: await adBreaks.list(params.id) };
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/ad-breaks/active',
    summary: 'The running ad break, if any, with the seconds left (for viewers who join mid-break)',
    tags,
    access: 'public',
    params: eventIdParams,
    responses: {
      200: {
        description: 'The running break or null',
        schema: z.object({ adBreak: adBreakSchema.nullable(), remainingSec: z.number().nullable() }),
      },
      ...notFound,
    },
    handler: async ({ params }) => {
      await mustExist(params.id);
      const ad = await adBreaks.active(params.id);
      return { adBreak: ad ?? null, remainingSec: ad ? Math.max(0, (ad.startAt + ad.durationSec * 1000 - Date.now()) / 1000) : null };
    },
  });

  b.route({
    method: 'delete',
    path: '/events/:id/ad-breaks/:breakId',
    summary: 'Cancel a scheduled ad break, or end the running one now',
    tags,
    access: 'admin',
    params: eventIdParams.extend({ breakId: z.string().min(1).max(64) }),
    responses: { 200: { description: 'Cancelled or ended', schema: z.object({ adBreak: adBreakSchema }) }, ...notFound },
    handler: async ({ params }) => {
      await mustExist(params.id);
      const ad = await adBreaks.end(params.id, params.breakId);
      if (!ad) throw new ApiError(404, 'not_found', 'no scheduled or running ad break with that id');
      return { adBreak: ad };
    },
  });
}
