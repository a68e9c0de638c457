// /api/v1 routes of events: public reads, operator list, admin CRUD, stream key reveal-once/rotate, end stream, status.
import { z } from 'zod';
import type { Request } from 'express';
import { ApiError, type Principal } from './auth.ts';
import type { Placement } from '../lib/placement/types.ts';
import type { RouteBuilder } from './api-routes.ts';
import type { placementSchema } from './api-schemas.ts';
import {
  consoleEventSchema,
  epochMs,
  eventDetailSchema,
  eventIdParams,
  eventSchema,
  eventStatusSchema,
  gopSchema,
  ladderPresetSchema,
  partTargetSchema,
  slugInput,
  streamKeySchema,
} from './api-schemas.ts';
import { SealedKeyError, SlugTakenError, type EventRecord, type EventService } from './events.ts';
import type { AdBreaks } from './ad-breaks.ts';
import type { HealthMonitor } from './health.ts';

/** URLs of an event that are safe to show anyone (never the stream key). */
export function eventView(e: EventRecord): z.infer<typeof eventSchema> {
  return { ...e, hlsUrl: `/live/${e.id}/master.m3u8`, watchUrl: `/watch/${e.slug}`, thumbnailUrl: `/live/${e.id}/thumbnail.jpg` };
}

/** A placement as the API shows it: origin URLs (internal addresses) only to admins. */
export function placementView(p: Placement, admin: boolean): z.infer<typeof placementSchema> {
  return {
    ingest: p.ingest,
    origins: p.origins.map((o) => (admin ? { id: o.id, url: o.url } : { id: o.id })),
    epoch: p.epoch,
    session: p.session,
  };
}

/** What the event routes need besides the events repository. */
export interface EventRoutesDeps {
  events: EventService;
  health: HealthMonitor;
  adBreaks: AdBreaks;
  /** Closes the event's current publisher wherever it is held (`end` or `key_rotated`); resolves false if none was reached. */
  disconnect(eventId: string, kind: 'end' | 'key_rotated'): Promise<boolean>;
  /** True while a publisher feeds the event. */
  publishing(eventId: string): boolean | Promise<boolean>;
  /** Cluster mode: where the event runs (undefined: nowhere). Absent in all-in-one mode: no `placement` field. */
  placement?(eventId: string): Promise<Placement | undefined>;
  /** The caller of a public route, if signed in (to show admins the origin URLs). */
  principal(req: Request): Promise<Principal | undefined>;
  viewerCount(eventId: string): number | undefined;
  /** The event was ended by an operator (webhooks, viewer signals). */
  ended(event: EventRecord): Promise<void>;
  /** RTMP ingest URL, WHIP URL and (when SRT is on) the SRT publish URL, which carries `streamKey`, shown on the console. */
  ingestUrls(event: EventRecord, streamKey: string): { rtmpUrl: string; whipUrl: string; srtUrl?: string };
}

const statusList = z.enum(['idle', 'live', 'offline', 'ended']);
const editable = {
  title: z.string().trim().min(1).max(200),
  description: z.string().max(5000),
  slug: slugInput,
  scheduledStart: epochMs.nullable(),
  visibility: z.enum(['public', 'unlisted']),
  recording: z.boolean().nullable(),
  /** Seconds viewers may seek back while live (0: off; null: ONAIR_DVR_WINDOW_SEC). Needs recording on. */
  dvrWindowSec: z.number().int().min(0).max(86_400).nullable(),
  ladderPreset: ladderPresetSchema,
  /** Checked against the node's timing by EventService (config/timing.ts): 400 with the rule and values that fit. */
  partTargetSec: partTargetSchema,
  gopSec: gopSchema,
};

/** Registers the event routes. */
export function registerEventRoutes(b: RouteBuilder, deps: EventRoutesDeps): void {
  const { events } = deps;
  const tags = ['events'];
  const mustExist = async (id: string): Promise<EventRecord> => {
    const e = await events.byId(id);
    if (!e) throw new ApiError(404, 'not_found', 'no event with that id');
    return e;
  };
  const notFound = { 404: { description: 'No such event (`not_found`)' } };
  /** The `placement` field: omitted without a placement source, null when not placed. */
  const placementOf = async (id: string, principal: () => Promise<Principal | undefined>) => {
    if (!deps.placement) return {};
    const p = await deps.placement(id);
    if (!p) return { placement: null };
    return { placement: placementView(p, (await principal())?.operator.role === 'admin') };
  };

  b.route({
    method: 'get',
    path: '/events',
    summary: 'Public events, newest first',
    tags,
    access: 'public',
    query: z.strictObject({
      status: z
        .string()
        .optional()
        .transform((s, ctx) => {
          const list = s ? s.split(',') : [];
          const bad = list.filter((x) => !statusList.options.includes(x as never));
          if (bad.length)
            ctx.addIssue({ code: 'custom', message: `unknown status ${bad.join(', ')}; use ${statusList.options.join(', ')}` });
          return list as z.infer<typeof statusList>[];
        })
        .meta({ description: 'Comma-separated statuses to keep (idle, live, offline, ended)' }),
    }),
    responses: { 200: { description: 'Events', schema: z.object({ events: z.array(eventSchema) }) } },
    handler: async ({ query }) => ({ events: (await events.list(query.status, { visibility: 'public' })).map(eventView) }),
  });

  b.route({
    method: 'get',
    path: '/events/by-slug/:slug',
    summary: 'An event by slug (public and unlisted)',
    tags,
    access: 'public',
    params: z.strictObject({ slug: z.string().min(1).max(100) }),
    responses: { 200: { description: 'The event', schema: z.object({ event: eventSchema }) }, ...notFound },
    handler: async ({ params }) => {
      const e = await events.bySlug(params.slug);
      if (!e) throw new ApiError(404, 'not_found', 'no event with that slug');
      return { event: eventView(e) };
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id',
    summary: 'An event by id (public and unlisted), with its placement in cluster mode',
    description:
      'In cluster mode `placement` names the ingest and origins of a live event; origin URLs are shown to signed-in admins only.',
    tags,
    access: 'public',
    params: eventIdParams,
    responses: { 200: { description: 'The event', schema: z.object({ event: eventDetailSchema }) }, ...notFound },
    handler: async ({ req, params }) => {
      const e = await mustExist(params.id);
      const event: z.infer<typeof eventDetailSchema> = { ...eventView(e), ...(await placementOf(e.id, () => deps.principal(req))) };
      return { event };
    },
  });

  b.route({
    method: 'get',
    path: '/console/events',
    summary: 'Every event (unlisted included) with live status, for the console',
    tags,
    access: 'operator',
    responses: {
      200: {
        description: 'Events',
        schema: z.object({ events: z.array(consoleEventSchema) }),
      },
    },
    handler: async () => ({
      events: await Promise.all(
        (await events.list()).map(async (e): Promise<z.infer<typeof consoleEventSchema>> => ({
          ...eventView(e),
          publishing: await deps.publishing(e.id),
          viewers: deps.viewerCount(e.id) ?? null,
        })),
      ),
    }),
  });

  b.route({
    method: 'post',
    path: '/events',
    summary: 'Create an event (its stream key is revealed once through /stream-key/reveal)',
    tags,
    access: 'admin',
    body: z.strictObject({
      title: editable.title,
      description: editable.description.optional(),
      slug: editable.slug.optional(),
      scheduledStart: editable.scheduledStart.optional(),
      visibility: editable.visibility.optional(),
      recording: editable.recording.optional(),
      dvrWindowSec: editable.dvrWindowSec.optional(),
      ladderPreset: editable.ladderPreset.optional(),
      partTargetSec: editable.partTargetSec.optional(),
      gopSec: editable.gopSec.optional(),
      latencyMode: z.enum(['low', 'standard']).optional(),
    }),
    status: 201,
    responses: {
      201: { description: 'Created', schema: z.object({ event: eventSchema }) },
      409: { description: 'Slug taken (`slug_taken`)' },
    },
    handler: async ({ body }) => {
      try {
        const { event } = await events.create({ ...body, keepForReveal: true });
        return { event: eventView(event) };
      } catch (err) {
        if (err instanceof SlugTakenError) throw new ApiError(409, 'slug_taken', err.message);
        if (err instanceof RangeError) throw new ApiError(400, 'invalid_request', err.message);
        throw err;
      }
    },
  });

  b.route({
    method: 'patch',
    path: '/events/:id',
    summary:
      'Change an event’s title, description, slug, scheduled start, visibility, recording switch, DVR window, or ladder preset, part target and GOP (these three from its next go-live)',
    tags,
    access: 'admin',
    params: eventIdParams,
    body: z
      .strictObject({
        title: editable.title.optional(),
        description: editable.description.optional(),
        slug: editable.slug.optional(),
        scheduledStart: editable.scheduledStart.optional(),
        visibility: editable.visibility.optional(),
        recording: editable.recording.optional(),
        dvrWindowSec: editable.dvrWindowSec.optional(),
        ladderPreset: editable.ladderPreset.optional(),
        partTargetSec: editable.partTargetSec.optional(),
        gopSec: editable.gopSec.optional(),
      })
      .refine((o) => Object.keys(o).length > 0, 'nothing to change'),
    responses: {
      200: { description: 'Updated', schema: z.object({ event: eventSchema }) },
      ...notFound,
      409: { description: 'Slug taken (`slug_taken`)' },
    },
    handler: async ({ params, body }) => {
      await mustExist(params.id);
      try {
        return { event: eventView((await events.update(params.id, body))!) };
      } catch (err) {
        if (err instanceof SlugTakenError) throw new ApiError(409, 'slug_taken', err.message);
        if (err instanceof RangeError) throw new ApiError(400, 'invalid_request', err.message);
        throw err;
      }
    },
  });

  b.route({
    method: 'delete',
    path: '/events/:id',
    summary: 'Delete an event that is not live',
    tags,
    access: 'admin',
    params: eventIdParams,
    responses: { 204: { description: 'Deleted' }, ...notFound, 409: { description: 'Event is live (`event_live`): end it first' } },
    handler: async ({ res, params }) => {
      const e = await mustExist(params.id);
      if (e.status === 'live' || (await deps.publishing(e.id))) throw new ApiError(409, 'event_live', 'the event is live: end it first');
      await events.remove(e.id);
      res.status(204).end();
      return undefined;
    },
  });

  const keyResponse = streamKeySchema;

  b.route({
    method: 'post',
    path: '/events/:id/stream-key/reveal',
    summary: 'Reveal the stream key — once; afterwards only rotation gives a new one',
    tags,
    access: 'admin',
    params: eventIdParams,
    responses: {
      200: { description: 'The key (never shown again)', schema: keyResponse },
      ...notFound,
      409: {
        description:
          'Already revealed (`key_already_revealed`), event ended (`event_ended`), or sealed under another server secret (`key_unreadable`: rotate it)',
      },
    },
    handler: async ({ params }) => {
      const e = await mustExist(params.id);
      if (e.status === 'ended') throw new ApiError(409, 'event_ended', 'the event has ended');
      let streamKey: string | undefined;
      try {
        streamKey = await events.revealKey(e.id);
      } catch (err) {
        if (err instanceof SealedKeyError) throw new ApiError(409, 'key_unreadable', err.message);
        throw err;
      }
      if (!streamKey) throw new ApiError(409, 'key_already_revealed', 'the stream key was revealed already; rotate it to get a new one');
      return { streamKey, ...deps.ingestUrls(e, streamKey) };
    },
  });

  b.route({
    method: 'post',
    path: '/events/:id/stream-key/rotate',
    summary: 'Replace the stream key; the current publisher is disconnected and the old key stops working',
    tags,
    access: 'admin',
    params: eventIdParams,
    responses: {
      200: { description: 'The new key (shown only now)', schema: keyResponse.extend({ disconnected: z.boolean() }) },
      ...notFound,
      409: { description: 'Event ended (`event_ended`)' },
    },
    handler: async ({ params }) => {
      const e = await mustExist(params.id);
      if (e.status === 'ended') throw new ApiError(409, 'event_ended', 'the event has ended');
      const streamKey = await events.rotateKey(e.id);
      const disconnected = await deps.disconnect(e.id, 'key_rotated');
      return { streamKey, ...deps.ingestUrls(e, streamKey), disconnected };
    },
  });

  b.route({
    method: 'post',
    path: '/events/:id/end',
    summary: 'End the event: disconnect the publisher, revoke its keys, status `ended`',
    tags,
    access: 'admin',
    params: eventIdParams,
    responses: {
      200: { description: 'Ended', schema: z.object({ event: eventSchema, disconnected: z.boolean() }) },
      ...notFound,
      409: { description: 'Already ended (`event_ended`)' },
    },
    handler: async ({ params }) => {
      await mustExist(params.id);
      if (!(await events.end(params.id))) throw new ApiError(409, 'event_ended', 'the event has ended already');
      const disconnected = await deps.disconnect(params.id, 'end');
      const e = (await events.byId(params.id))!;
      await deps.ended(e);
      return { event: eventView(e), disconnected };
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/status',
    summary: 'Live status at a glance: publishing, viewers, latest health and warnings, running ad break, placement (cluster mode)',
    tags,
    access: 'operator',
    params: eventIdParams,
    responses: {
      200: {
        description: 'Status',
        schema: eventStatusSchema,
      },
      ...notFound,
    },
    handler: async ({ params, principal }) => {
      const e = await mustExist(params.id);
      // Typed by the schema, so the health monitor's and ad breaks' records cannot drift from what the API documents.
      const body: z.infer<typeof eventStatusSchema> = {
        id: e.id,
        status: e.status,
        liveSince: e.liveSince,
        publishing: await deps.publishing(e.id),
        viewers: deps.viewerCount(e.id) ?? null,
        health: deps.health.latest(e.id) ?? null,
        adBreak: (await deps.adBreaks.active(e.id)) ?? null,
        ...(await placementOf(e.id, async () => principal)),
        sourceRefusal: e.sourceRefusal,
      };
      return body;
    },
  });
}
