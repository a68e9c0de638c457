// /api/v1 routes of the chat, declared through the control route registry (zod-validated, in the OpenAPI document):
// viewer tokens, the public comment history, and the operators' moderation (actions, full comment feed, bans).
import { z } from 'zod';
import type { Request } from 'express';
import type { RateLimiter } from '../lib/rate-limit/token-bucket.ts';
import { ApiError, type Auth } from '../control/auth.ts';
import type { RouteBuilder } from '../control/api-routes.ts';
import { epochMs, eventIdParams } from '../control/api-schemas.ts';
import type { CommentStore } from './comments.ts';
import { ModerationError, type ModerationAction, type ModerationService } from './moderation.ts';
import { DisplayNameError, type ViewerTokens } from './viewer-tokens.ts';

/** What the chat routes need. */
export interface ChatRoutesDeps {
  auth: Pick<Auth, 'check'>;
  tokens: Pick<ViewerTokens, 'issue'>;
  comments: Pick<CommentStore, 'since' | 'allSince' | 'bans' | 'settings'>;
  moderation: Pick<ModerationService, 'apply'>;
  limiter: RateLimiter;
  /** Viewer tokens per client address (req.ip, under the trusted-proxy rule): sustained rate and burst. */
  tokenLimit: { perSec: number; burst: number };
  eventExists(eventId: string): Promise<boolean>;
}

/** Most comments per page. */
const PAGE_MAX = 200;

const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'not an id');
/** A comment as REST and the WebSocket give it. */
export const commentSchema = z
  .object({
    id: z.string(),
    seq: z.number().int(),
    viewerId: z.string(),
    name: z.string(),
    role: z.enum(['viewer', 'moderator', 'admin']),
    text: z.string(),
    at: epochMs,
  })
  .meta({ id: 'Comment' });
/** A comment in the moderators' feed: hidden and deleted ones too, flagged. */
export const moderatedCommentSchema = commentSchema
  .extend({ hidden: z.boolean(), deleted: z.boolean().meta({ description: 'Deleted: `text` is erased' }) })
  .meta({ id: 'ModeratedComment' });
/** Chat settings moderators set. */
export const settingsSchema = z
  .object({
    chatEnabled: z.boolean(),
    slowModeSec: z.number().int().meta({ description: 'Minimum seconds between two comments of one viewer; 0 = off' }),
  })
  .meta({ id: 'ChatSettings' });
const pageQuery = z.strictObject({
  after: z.coerce.number().int().min(0).default(0).meta({ description: 'Only comments with a seq above this one' }),
  limit: z.coerce.number().int().min(1).max(PAGE_MAX).default(50),
});

/** The moderation request body: one action (what `ModerationService.apply` takes). */
export const moderationActionSchema = z
  .discriminatedUnion('action', [
    z.strictObject({ action: z.literal('hide'), commentId: id }),
    z.strictObject({ action: z.literal('unhide'), commentId: id }),
    z.strictObject({ action: z.literal('delete'), commentId: id }),
    z.strictObject({ action: z.literal('ban'), viewerId: id, reason: z.string().max(200).optional() }),
    z.strictObject({ action: z.literal('unban'), viewerId: id }),
    z.strictObject({ action: z.literal('slow_mode'), seconds: z.number().int().min(0).max(3600) }),
    z.strictObject({ action: z.literal('chat'), enabled: z.boolean() }),
  ])
  .meta({ id: 'ModerationAction' });

/** Registers the chat routes. */
export function registerChatRoutes(b: RouteBuilder, deps: ChatRoutesDeps): void {
  const notFound = { 404: { description: 'No such event (`not_found`)' } };
  const mustExist = async (eventId: string) => {
    if (!(await deps.eventExists(eventId))) throw new ApiError(404, 'not_found', 'no event with that id');
  };
  /** Per-IP token bucket for write endpoints: 429 with Retry-After, or 503 when the limiter is unreachable. */
  const limit = async (req: Request, name: string, perSec: number, burst: number) => {
    let t;
    try {
      t = await deps.limiter.take([{ key: `{api}:${name}:ip:${req.ip ?? 'unknown'}`, capacity: burst, refillPerSec: perSec }]);
    } catch {
      throw new ApiError(503, 'unavailable', 'temporarily unavailable; try again');
    }
    if (!t.allowed)
      throw new ApiError(429, 'rate_limited', 'too many requests; slow down', { 'retry-after': String(Math.ceil(t.retryAfterMs / 1000)) });
  };
  const limited = {
    429: { description: 'Rate limited (`rate_limited`, Retry-After)' },
    503: { description: 'Rate limiter or chat bus unreachable (`unavailable` / `chat_unavailable`)' },
  };

  b.route({
    method: 'post',
    path: '/viewers',
    summary: 'Get a signed viewer token for the chat WebSocket and WHEP playback (moderator/admin tokens only for signed-in operators)',
    description:
      "Viewer tokens are public. `role: moderator` needs an operator session (cookie + X-CSRF-Token) or API token; `role: admin` needs an admin (the console takes one of its operator's role for its real-time preview). The display name gets a random `#NNNN` suffix.",
    tags: ['chat'],
    access: 'public',
    body: z.strictObject({
      displayName: z.string().max(200).meta({ description: '2–24 characters: letters, digits, space, `_`, `-`, `.`' }),
      role: z.enum(['viewer', 'moderator', 'admin']).default('viewer'),
    }),
    status: 201,
    responses: {
      201: {
        description: 'Token issued',
        schema: z
          .object({
            token: z.string(),
            viewer: z.object({ id: z.string(), name: z.string(), role: z.enum(['viewer', 'moderator', 'admin']) }),
            expiresAt: epochMs,
          })
          .meta({ id: 'ViewerToken' }),
      },
      400: { description: 'Invalid display name (`invalid_display_name`) or input (`invalid_request`)' },
      401: { description: 'A moderator/admin token without an operator session or token (`unauthenticated`)' },
      403: { description: 'An admin token for a moderator (`forbidden`), or a cookie session without CSRF token (`csrf_failed`)' },
      ...limited,
    },
    handler: async ({ req, body }) => {
      if (body.role !== 'viewer') await deps.auth.check(req, body.role === 'admin' ? 'admin' : 'operator');
      await limit(req, 'viewers', deps.tokenLimit.perSec, deps.tokenLimit.burst);
      try {
        const { token, viewer } = deps.tokens.issue({ displayName: body.displayName, role: body.role });
        return { token, viewer: { id: viewer.id, name: viewer.name, role: viewer.role }, expiresAt: viewer.exp };
      } catch (err) {
        if (err instanceof DisplayNameError) throw new ApiError(400, 'invalid_display_name', err.message);
        throw err;
      }
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/comments',
    summary: 'Visible comments of an event, oldest first, paged by seq',
    tags: ['chat'],
    access: 'public',
    params: eventIdParams,
    query: pageQuery,
    responses: {
      200: {
        description: 'A page; continue with `after=nextAfter` while `hasMore`',
        schema: z.object({ comments: z.array(commentSchema), hasMore: z.boolean(), nextAfter: z.number().int() }),
      },
      ...notFound,
    },
    handler: async ({ params, query }) => {
      await mustExist(params.id);
      const rows = await deps.comments.since(params.id, query.after, undefined, query.limit + 1);
      const comments = rows.slice(0, query.limit);
      return { comments, hasMore: rows.length > query.limit, nextAfter: comments.at(-1)?.seq ?? query.after };
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/moderation/comments',
    summary:
      "The moderators' comment feed: every comment (hidden and deleted ones flagged), oldest first, paged by seq; plus the chat settings",
    description: 'Poll with `after=nextAfter` for a live feed (or join the WebSocket with a moderator token for live batches).',
    tags: ['moderation'],
    access: 'operator',
    params: eventIdParams,
    query: pageQuery,
    responses: {
      200: {
        description: 'A page',
        schema: z.object({
          comments: z.array(moderatedCommentSchema),
          hasMore: z.boolean(),
          nextAfter: z.number().int(),
          settings: settingsSchema,
        }),
      },
      ...notFound,
    },
    handler: async ({ params, query }) => {
      await mustExist(params.id);
      const [rows, settings] = await Promise.all([
        deps.comments.allSince(params.id, query.after, query.limit + 1),
        deps.comments.settings(params.id),
      ]);
      const comments = rows.slice(0, query.limit);
      return { comments, hasMore: rows.length > query.limit, nextAfter: comments.at(-1)?.seq ?? query.after, settings };
    },
  });

  b.route({
    method: 'get',
    path: '/events/:id/moderation/bans',
    summary: 'Viewers banned from the chat of an event, newest first',
    tags: ['moderation'],
    access: 'operator',
    params: eventIdParams,
    responses: {
      200: {
        description: 'Bans',
        schema: z.object({ bans: z.array(z.object({ viewerId: z.string(), bannedBy: z.string(), reason: z.string(), at: epochMs })) }),
      },
      ...notFound,
    },
    handler: async ({ params }) => {
      await mustExist(params.id);
      return { bans: await deps.comments.bans(params.id) };
    },
  });

  b.route({
    method: 'post',
    path: '/events/:id/moderation',
    summary: 'Moderate the chat: hide/unhide/delete a comment, ban/unban a viewer, slow mode, chat on/off; reaches every viewer at once',
    tags: ['moderation'],
    access: 'operator',
    params: eventIdParams,
    body: moderationActionSchema,
    responses: {
      200: {
        description: 'Applied (settings: the chat settings after `slow_mode` / `chat`)',
        schema: z.object({ ok: z.literal(true), settings: settingsSchema.optional() }),
      },
      404: { description: 'No such event or comment (`not_found`)' },
      ...limited,
    },
    handler: async ({ req, params, body, principal }) => {
      await limit(req, 'moderation', 5, 30);
      await mustExist(params.id);
      try {
        return await deps.moderation.apply(params.id, body as ModerationAction, principal!.operator.id);
      } catch (err) {
        if (err instanceof ModerationError) throw new ApiError(err.code === 'not_found' ? 404 : 400, err.code, err.message);
        if ((err as { code?: string }).code === 'bus_unavailable') throw new ApiError(503, 'chat_unavailable', (err as Error).message);
        throw err;
      }
    },
  });
}
