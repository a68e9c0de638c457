// /api/v1 routes of webhooks (admins): configure URLs, and read each one's delivery log.
import { z } from 'zod';
import { ApiError } from './auth.ts';
import type { RouteBuilder } from './api-routes.ts';
import { webhookDeliverySchema, webhookSchema } from './api-schemas.ts';
import { WebhookDestinationError, webhookEventTypes, type Webhooks } from './webhooks.ts';

/** Registers the webhook routes. */
export function registerWebhookRoutes(b: RouteBuilder, deps: { webhooks: Webhooks }): void {
  const { webhooks } = deps;
  const tags = ['webhooks'];
  const idParams = z.strictObject({ webhookId: z.string().min(1).max(64) });
  const notFound = { 404: { description: 'No such webhook (`not_found`)' } };

  b.route({
    method: 'get',
    path: '/webhooks',
    summary: 'Configured webhooks',
    tags,
    access: 'admin',
    responses: { 200: { description: 'Webhooks', schema: z.object({ webhooks: z.array(webhookSchema) }) } },
    handler: async () => ({ webhooks: await webhooks.list() }),
  });

  b.route({
    method: 'post',
    path: '/webhooks',
    summary: 'Add a webhook; its signing secret is shown once',
    description:
      'Deliveries are POSTed as JSON `{id, type, createdAt, data}` with `X-Onair-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`, and retried with exponential backoff until a 2xx answer. A host that resolves to a refused address at delivery time fails the delivery at once (reason in the delivery log).',
    tags,
    access: 'admin',
    body: z.strictObject({
      url: z.url({ protocol: /^https?$/ }).max(2000),
      events: z.array(z.enum(webhookEventTypes)).min(1).optional().meta({ description: 'Default: event.live, event.offline, event.ended' }),
    }),
    status: 201,
    responses: {
      201: { description: 'Created', schema: z.object({ webhook: webhookSchema, secret: z.string() }) },
      400: {
        description:
          'Invalid input (`invalid_request`, `invalid_json`), or a host that may not be reached (`forbidden_destination`): `localhost`, or a loopback, private, link-local, shared, multicast or reserved IP unless allowed by `ONAIR_WEBHOOK_ALLOW_CIDRS`',
      },
    },
    handler: async ({ body }) => {
      try {
        return await webhooks.create(body);
      } catch (err) {
        if (err instanceof WebhookDestinationError) throw new ApiError(400, 'forbidden_destination', err.message);
        throw err;
      }
    },
  });

  b.route({
    method: 'delete',
    path: '/webhooks/:webhookId',
    summary: 'Remove a webhook and its delivery log',
    tags,
    access: 'admin',
    params: idParams,
    responses: { 204: { description: 'Removed' }, ...notFound },
    handler: async ({ res, params }) => {
      if (!(await webhooks.remove(params.webhookId))) throw new ApiError(404, 'not_found', 'no such webhook');
      res.status(204).end();
      return undefined;
    },
  });

  b.route({
    method: 'get',
    path: '/webhooks/:webhookId/deliveries',
    summary: 'Delivery log of a webhook, newest first',
    tags,
    access: 'admin',
    params: idParams,
    query: z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
    responses: { 200: { description: 'Deliveries', schema: z.object({ deliveries: z.array(webhookDeliverySchema) }) }, ...notFound },
    handler: async ({ params, query }) => {
      const list = await webhooks.deliveries(params.webhookId, query.limit);
      if (!list) throw new ApiError(404, 'not_found', 'no such webhook');
      return { deliveries: list };
    },
  });
}
