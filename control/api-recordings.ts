// /api/v1 routes of recordings (admins): list, inspect, delete, and download one as an MP4 (remuxed, not re-encoded).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { z } from 'zod';
import { ApiError } from './auth.ts';
import type { RouteBuilder } from './api-routes.ts';
import { recordingSchema } from './api-schemas.ts';
import type { RecordingService } from './recordings.ts';

/** Registers the recording routes. */
export function registerRecordingRoutes(b: RouteBuilder, deps: { recordings: RecordingService }): void {
  const { recordings } = deps;
  const tags = ['recordings'];
  const idParams = z.strictObject({
    recordingId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{6,64}\.[0-9]{1,16}$/, 'a recording id: <eventId>.<number>')
      .meta({ description: 'Recording id: `<eventId>.<broadcast start>`' }),
  });
  const notFound = { 404: { description: 'No such recording (`not_found`)' } };

  b.route({
    method: 'get',
    path: '/recordings',
    summary: 'Recordings, newest first (at most 1000)',
    description:
      'Each broadcast of an event is one recording (a publisher who reconnects within the reconnect window continues it). `status`: `recording` while live, `ready` once the event went offline, `failed` when storage failed (the reason in `failure`; live playback went on). An event that is not live replays its newest recording at its `hlsUrl`.',
    tags,
    access: 'admin',
    query: z.strictObject({
      eventId: z
        .string()
        .regex(/^[A-Za-z0-9_-]{6,64}$/)
        .optional(),
    }),
    responses: { 200: { description: 'Recordings', schema: z.object({ recordings: z.array(recordingSchema) }) } },
    handler: async ({ query }) => ({ recordings: await recordings.list(query.eventId) }),
  });

  b.route({
    method: 'get',
    path: '/recordings/:recordingId',
    summary: 'One recording',
    tags,
    access: 'admin',
    params: idParams,
    responses: { 200: { description: 'The recording', schema: z.object({ recording: recordingSchema }) }, ...notFound },
    handler: async ({ params }) => {
      const r = await recordings.byId(params.recordingId);
      if (!r) throw new ApiError(404, 'not_found', 'no such recording');
      return { recording: r };
    },
  });

  b.route({
    method: 'delete',
    path: '/recordings/:recordingId',
    summary: 'Delete a recording and its stored media',
    tags,
    access: 'admin',
    params: idParams,
    responses: {
      204: { description: 'Deleted' },
      ...notFound,
      409: { description: 'Still being recorded (`recording_in_progress`): the event is live' },
    },
    handler: async ({ res, params }) => {
      const r = await recordings.byId(params.recordingId);
      if (!r) throw new ApiError(404, 'not_found', 'no such recording');
      if (r.status === 'recording') throw new ApiError(409, 'recording_in_progress', 'the broadcast is still being recorded: end it first');
      await recordings.remove(r.id);
      res.status(204).end();
      return undefined;
    },
  });

  b.route({
    method: 'get',
    path: '/recordings/:recordingId/poster.jpg',
    summary: 'A recording’s poster',
    description:
      'A JPEG (320 px wide) of the lowest rung, taken about 30 s into the broadcast (the last live thumbnail of a shorter one). Stored with the recording.',
    tags,
    access: 'admin',
    params: idParams,
    responses: {
      200: { description: 'image/jpeg', schema: z.string().meta({ format: 'binary' }), contentType: 'image/jpeg' },
      404: { description: 'No such recording, or it has no poster (`not_found`): no video, or thumbnails are off' },
    },
    handler: async ({ req, res, params }) => {
      const poster = await recordings.poster(params.recordingId);
      if (!poster) throw new ApiError(404, 'not_found', 'no such recording, or it has no poster');
      res.status(200).set({ 'content-type': 'image/jpeg', 'content-length': String(poster.size), 'cache-control': 'private, max-age=60' });
      if (req.method === 'HEAD') {
        poster.body.destroy();
        res.end();
        return undefined;
      }
      await new Promise<void>((resolve) => {
        poster.body.on('error', () => res.destroy());
        res.on('close', () => {
          poster.body.destroy();
          resolve();
        });
        poster.body.pipe(res);
      });
      return undefined;
    },
  });

  b.route({
    method: 'get',
    path: '/recordings/:recordingId/download',
    summary: 'Download a recording as one MP4 file',
    description:
      'The highest rendition, remuxed (`ffmpeg -c copy`, never re-encoded) into an MP4 with its index first. Publisher reconnects are joined end to end.',
    tags,
    access: 'admin',
    params: idParams,
    responses: {
      200: { description: 'video/mp4 file', schema: z.string().meta({ format: 'binary' }), contentType: 'video/mp4' },
      ...notFound,
      409: { description: 'Still being recorded (`recording_in_progress`)' },
    },
    handler: async ({ req, res, params }) => {
      const r = await recordings.byId(params.recordingId);
      if (!r) throw new ApiError(404, 'not_found', 'no such recording');
      if (r.status === 'recording') throw new ApiError(409, 'recording_in_progress', 'the broadcast is still being recorded: end it first');
      const file = await recordings.mp4(r.id);
      if (!file) throw new ApiError(404, 'not_found', 'the recording has no stored media');
      try {
        const { size } = await stat(file.path);
        res.status(200).set({
          'content-type': 'video/mp4',
          'content-length': String(size),
          'content-disposition': `attachment; filename="${r.id}.mp4"`,
          'cache-control': 'no-store',
        });
        if (req.method === 'HEAD') {
          res.end();
          return undefined;
        }
        await new Promise<void>((resolve) => {
          const s = createReadStream(file.path);
          s.on('error', () => res.destroy());
          res.on('close', () => {
            s.destroy();
            resolve();
          });
          s.pipe(res);
        });
      } finally {
        await file.cleanup();
      }
      return undefined;
    },
  });
}
