// Types of the /api/v1 JSON bodies, inferred from the zod schemas that validate and document them. The browser
// apps (player/) import these with `import type`, which vite erases: no zod in the bundle, and an API change the
// pages do not follow fails the type check instead of the page.
import type { z } from 'zod';
import type {
  adBreakSchema,
  consoleEventSchema,
  disclaimerSchema,
  eventDetailSchema,
  eventSchema,
  eventStatusSchema,
  healthSampleSchema,
  newsFlashSchema,
  operatorSchema,
  overlaysSchema,
  placementSchema,
  recordingSchema,
  clipSchema,
  severitySchema,
  streamKeySchema,
} from './api-schemas.ts';
import type { commentSchema, moderatedCommentSchema, settingsSchema } from '../chat/routes.ts';

/** An event as anyone may see it (`GET /events`, `/events/by-slug/:slug`, `/events/:id`). */
export type ApiEvent = z.infer<typeof eventSchema>;
/** Lifecycle of an event. */
export type ApiEventStatus = ApiEvent['status'];
/** A clip (`GET /clips/:clipId`). */
export type ApiClip = z.infer<typeof clipSchema>;

/** A recording (`GET /recordings`, admins). */
export type ApiRecording = z.infer<typeof recordingSchema>;
/** An event by id (`GET /events/:id`), with its placement in cluster mode. */
export type ApiEventDetail = z.infer<typeof eventDetailSchema>;
/** Where a live event runs in cluster mode (ingest, origins, epoch, session); origin URLs for admins only. */
export type ApiPlacement = z.infer<typeof placementSchema>;
/** An event with its live state (`GET /console/events`). */
export type ApiConsoleEvent = z.infer<typeof consoleEventSchema>;
/** `GET /events/:id/status`. */
export type ApiEventStatusInfo = z.infer<typeof eventStatusSchema>;
/** One ingest health sample (`GET /events/:id/health` and its SSE stream). */
export type ApiHealthSample = z.infer<typeof healthSampleSchema>;
/** An ad break. */
export type ApiAdBreak = z.infer<typeof adBreakSchema>;
/** An operator. */
export type ApiOperator = z.infer<typeof operatorSchema>;
/** Severity of news flashes and disclaimers. */
export type ApiSeverity = z.infer<typeof severitySchema>;
/** A news flash. */
export type ApiNewsFlash = z.infer<typeof newsFlashSchema>;
/** A disclaimer. */
export type ApiDisclaimer = z.infer<typeof disclaimerSchema>;
/** `GET /events/:id/overlays`. */
export type ApiOverlays = z.infer<typeof overlaysSchema>;
/** A stream key with its ingest URLs (`POST /events/:id/stream-key/reveal|rotate`). */
export type ApiStreamKey = z.infer<typeof streamKeySchema>;
/** A comment as REST and the WebSocket give it. */
export type ApiComment = z.infer<typeof commentSchema>;
/** A comment in the moderators' feed. */
export type ApiModeratedComment = z.infer<typeof moderatedCommentSchema>;
/** Chat settings. */
export type ApiChatSettings = z.infer<typeof settingsSchema>;
