// /api/v1 routes of clips: make one from a range of an event's recording (admins), list and delete them (admins),
// read one (public, as its watch page does: a clip's URL is meant to be shared).
import { z } from 'zod';
import { ApiError } from './auth.ts';
import type { RouteBuilder } from './api-routes.ts';
import { clipSchema, eventIdParams } from './api-schemas.ts';
import { ClipError, type ClipRange, type ClipService } from './clips.ts';

const clipIdParams = z.strictObject({
  clipId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{6,64}$/, 'not a clip id')
    .meta({ description: 'Clip id' }),
});

/** Seconds into the recording: ≥ 0, at most a day's worth of broadcast times 30. */
const seconds = z
  .number()
  .min(0)
  .max(30 * 86_400);

/** Registers the clip routes. */
export function registerClipRoutes(b: RouteBuilder, deps: { clips: ClipService }): void {
  const { clips } = deps;
  const tags = ['clips'];
  const notFound = { 404: { description: 'No such clip (`not_found`)' } };
  const rethrow = (err: unknown): never => {
    if (err instanceof ClipError) throw new ApiError(err.status, err.code, err.message);
    throw err;
  };

  b.route({
    method: 'post',
    path: '/events/:id/clips',
    summary: 'Make a clip of a range of the event’s recording (live or ended)',
    description:
      'Give `startSec` and `endSec` (seconds from the start of the recording, as its replay counts them) or `lastSec` (the last seconds recorded so far; 30 for “the last 30 s”). The clip is made from the stored segments without re-encoding: it holds the whole segments covering the range, so it starts and ends at segment (keyframe) boundaries and may be up to one segment longer at each end; its `startSec`/`endSec` say where it was cut. It plays at `hlsUrl` (VOD) and is watched at `watchUrl`. The newest recording is clipped unless `recordingId` names another of the event’s recordings. A clip names its recording’s stored segments: deleting the recording (or its retention expiring) deletes its clips.',
    tags,
    access: 'admin',
    params: eventIdParams,
    body: z
      .strictObject({
        startSec: seconds.optional(),
        endSec: seconds.optional(),
        lastSec: z.number().gt(0).max(86_400).optional(),
        recordingId: z
          .string()
          .regex(/^[A-Za-z0-9_-]{6,64}\.[0-9]{1,16}$/, 'a recording id: <eventId>.<number>')
          .optional(),
        title: z.string().trim().min(1).max(200).optional(),
      })
      .refine((b) => (b.lastSec !== undefined) !== (b.startSec !== undefined || b.endSec !== undefined), {
        message: 'give either lastSec, or startSec and endSec',
      })
      .refine((b) => b.lastSec !== undefined || (b.startSec !== undefined && b.endSec !== undefined), {
        message: 'startSec and endSec go together',
      }),
    status: 201,
    responses: {
      201: { description: 'Created', schema: z.object({ clip: clipSchema }) },
      404: { description: 'No such event, or no such recording of it (`not_found`)' },
      409: {
        description:
          'Nothing to clip: recording is off for the event (`recording_off`), it was never broadcast (`no_recording`), or nothing is stored yet (`recording_empty`)',
      },
      422: { description: 'The range reaches past what is recorded (`range_outside_recording`); the message says how much is' },
    },
    handler: async ({ params, body }) => {
      if (body.lastSec === undefined && body.endSec! <= body.startSec!)
        throw new ApiError(400, 'invalid_range', 'endSec must be after startSec');
      const range: ClipRange = body.lastSec !== undefined ? { lastSec: body.lastSec } : { startSec: body.startSec!, endSec: body.endSec! };
      try {
        const clip = await clips.create(params.id, range, {
          ...(body.recordingId !== undefined ? { recordingId: body.recordingId } : {}),
          ...(body.title !== undefined ? { title: body.title } : {}),
        });
        return { clip };
      } catch (err) {
        return rethrow(err);
      }
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/clips',
    summary: 'The event’s clips, newest first (at most 1000)',
    tags,
    access: 'admin',
    params: eventIdParams,
    responses: { 200: { description: 'Clips', schema: z.object({ clips: z.array(clipSchema) }) } },
    handler: async ({ params }) => ({ clips: await clips.list(params.id) }),
  });

  b.route({
    method: 'get',
    path: '/clips',
    summary: 'Every clip, newest first (at most 1000)',
    tags,
    access: 'admin',
    responses: { 200: { description: 'Clips', schema: z.object({ clips: z.array(clipSchema) }) } },
    handler: async () => ({ clips: await clips.list() }),
  });

  b.route({
    method: 'get',
    path: '/clips/:clipId',
    summary: 'One clip (what its watch page shows)',
    tags,
    access: 'public',
    params: clipIdParams,
    responses: { 200: { description: 'The clip', schema: z.object({ clip: clipSchema }) }, ...notFound },
    handler: async ({ params }) => {
      const c = await clips.byId(params.clipId);
      if (!c) throw new ApiError(404, 'not_found', 'no such clip');
      return { clip: c };
    },
  });

  b.route({
    method: 'delete',
    path: '/clips/:clipId',
    summary: 'Delete a clip (its recording stays)',
    tags,
    access: 'admin',
    params: clipIdParams,
    responses: { 204: { description: 'Deleted' }, ...notFound },
    handler: async ({ res, params }) => {
      if (!(await clips.remove(params.clipId))) throw new ApiError(404, 'not_found', 'no such clip');
      res.status(204).end();
      return undefined;
    },
  });
}
