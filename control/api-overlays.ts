// /api/v1 routes of on-screen messages: news flashes, the disclaimer, and what is active now (for late joiners).
import { z } from 'zod';
import { ApiError } from './auth.ts';
import type { RouteBuilder } from './api-routes.ts';
import { disclaimerSchema, eventIdParams, newsFlashSchema, overlaysSchema, severitySchema } from './api-schemas.ts';
import type { EventService } from './events.ts';
import type { OverlayService } from './overlays.ts';
import type { AdBreaks } from './ad-breaks.ts';

/** Registers the news flash and disclaimer routes. */
export function registerOverlayRoutes(b: RouteBuilder, deps: { events: EventService; overlays: OverlayService; adBreaks: AdBreaks }): void {
  const { overlays } = deps;
  const tags = ['overlays'];
  const notFound = { 404: { description: 'No such event or item (`not_found`)' } };
  const mustExist = async (id: string) => {
    if (!(await deps.events.byId(id))) throw new ApiError(404, 'not_found', 'no event with that id');
  };
  const text = z.string().trim().min(1).max(280);

  b.route({
    method: 'get',
    path: '/events/:id/overlays',
    summary: 'What viewers should see now: active news flashes, the disclaimer, the running ad break (for viewers who join late)',
    tags,
    access: 'public',
    params: eventIdParams,
    responses: {
      200: {
        description: 'Active overlays',
        schema: overlaysSchema,
      },
      ...notFound,
    },
    handler: async ({ params }) => {
      await mustExist(params.id);
      const active = await overlays.active(params.id);
      const ad = await deps.adBreaks.active(params.id);
      const now = Date.now();
      const body: z.infer<typeof overlaysSchema> = {
        ...active,
        adBreak: ad
          ? {
              id: ad.id,
              startAt: ad.startAt,
              durationSec: ad.durationSec,
              creativeUrl: ad.creativeUrl,
              remainingSec: Math.max(0, (ad.startAt + ad.durationSec * 1000 - now) / 1000),
            }
          : null,
        serverTime: now,
      };
      return body;
    },
  });

  b.route({
    method: 'post',
    path: '/events/:id/news-flashes',
    summary: 'Post a news flash shown to every viewer for `durationSec`',
    tags,
    access: 'admin',
    params: eventIdParams,
    body: z.strictObject({ text, severity: severitySchema.default('info'), durationSec: z.number().min(3).max(3600) }),
    status: 201,
    responses: { 201: { description: 'Posted', schema: z.object({ newsFlash: newsFlashSchema }) }, ...notFound },
    handler: async ({ params, body, principal }) => {
      await mustExist(params.id);
      return { newsFlash: await overlays.postNewsFlash(params.id, body, principal?.operator.id) };
    },
  });

  b.route({
    method: 'delete',
    path: '/events/:id/news-flashes/:flashId',
    summary: 'Take a news flash down early',
    tags,
    access: 'admin',
    params: eventIdParams.extend({ flashId: z.string().min(1).max(64) }),
    responses: { 204: { description: 'Cleared' }, ...notFound },
    handler: async ({ res, params }) => {
      await mustExist(params.id);
      if (!(await overlays.clearNewsFlash(params.id, params.flashId))) throw new ApiError(404, 'not_found', 'no such active news flash');
      res.status(204).end();
      return undefined;
    },
  });

  b.route({
    method: 'put',
    path: '/events/:id/disclaimer',
    summary: 'Set the disclaimer (stays until cleared)',
    tags,
    access: 'admin',
    params: eventIdParams,
    body: z.strictObject({ text: z.string().trim().min(1).max(1000), severity: severitySchema.default('info') }),
    responses: { 200: { description: 'Set', schema: z.object({ disclaimer: disclaimerSchema }) }, ...notFound },
    handler: async ({ params, body, principal }) => {
      await mustExist(params.id);
      return { disclaimer: await overlays.setDisclaimer(params.id, body, principal?.operator.id) };
    },
  });

  b.route({
    method: 'delete',
    path: '/events/:id/disclaimer',
    summary: 'Clear the disclaimer',
    tags,
    access: 'admin',
    params: eventIdParams,
    responses: { 204: { description: 'Cleared' }, ...notFound },
    handler: async ({ res, params }) => {
      await mustExist(params.id);
      if (!(await overlays.clearDisclaimer(params.id))) throw new ApiError(404, 'not_found', 'no disclaimer is set');
      res.status(204).end();
      return undefined;
    },
  });
}
