// Zod schemas shared by the /api/v1 route modules: they validate input and name the OpenAPI components.
import { z } from 'zod';
import { eventIdPattern, slugPattern } from './events.ts';
import { GOP_RANGE, PART_TARGET_RANGE } from '../config/timing.ts';

/** Path parameter `id`: an event id. */
export const eventIdParams = z.strictObject({ id: z.string().regex(eventIdPattern, 'not an event id') });

/** A JSON timestamp: ms since the epoch. */
export const epochMs = z.number().int().meta({ description: 'Milliseconds since the Unix epoch' });

/** Severity of news flashes and disclaimers. */
export const severitySchema = z.enum(['info', 'warning', 'critical']);

/** An event as anyone may see it. */
/** The renditions an event gets (origin/ladder.ts planForPreset). */
export const ladderPresetSchema = z
  .enum(['standard', 'passthrough', 'audio', 'custom'])
  .describe(
    '`standard`: the source H.264 copied as the `source` rendition plus encoded rungs below it (a source that is not H.264 gets the encoded ladder); `passthrough`: the source rendition only (not H.264: the top encoded rung); `audio`: one AAC rendition; `custom`: the encoded rungs of ONAIR_LADDER',
  );

/** An event's LL-HLS part target (null: the node's ONAIR_PART_TARGET_SEC); the range of the setting. */
export const partTargetSchema = z
  .number()
  .min(PART_TARGET_RANGE.min)
  .max(PART_TARGET_RANGE.max)
  .nullable()
  .describe(
    'LL-HLS part duration in seconds from the event’s next go-live; null follows the node’s ONAIR_PART_TARGET_SEC. It must split the segment target (ONAIR_SEGMENT_TARGET_SEC) into 2 or more whole parts; PART-HOLD-BACK is 3 parts',
  );

/** An event's keyframe interval (null: the node's ONAIR_GOP_SEC); the range of the setting. */
export const gopSchema = z
  .number()
  .min(GOP_RANGE.min)
  .max(GOP_RANGE.max)
  .nullable()
  .describe(
    'Keyframe interval of the encoded renditions in seconds from the event’s next go-live; null follows the node’s ONAIR_GOP_SEC. It must be a whole number of parts and split the segment target into whole GOPs',
  );

export const eventSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    title: z.string(),
    description: z.string(),
    status: z.enum(['idle', 'live', 'offline', 'ended']),
    createdAt: epochMs,
    updatedAt: epochMs,
    liveSince: epochMs.nullable(),
    latencyMode: z.enum(['low', 'standard']),
    scheduledStart: epochMs.nullable(),
    visibility: z.enum(['public', 'unlisted']),
    endedAt: epochMs.nullable(),
    /** Record its broadcasts (true), do not (false), or follow the server's default ONAIR_RECORDING (null). */
    recording: z.boolean().nullable(),
    dvrWindowSec: z.number().int().nullable().meta({
      description:
        'DVR window in seconds while live (0: off), or null for the server’s default ONAIR_DVR_WINDOW_SEC. Needs recording on: the older segments come from the recording',
    }),
    ladderPreset: ladderPresetSchema
      .nullable()
      .describe('The ladder preset; null follows the server default (ONAIR_DEFAULT_LADDER_PRESET)'),
    partTargetSec: partTargetSchema,
    gopSec: gopSchema,
    sourceRefusal: z
      .object({ reason: z.string(), at: epochMs })
      .nullable()
      .describe(
        'Why the latest publisher was disconnected: a source the origin cannot use (codec, no media); null once a publisher went live after it',
      ),
    hlsUrl: z.string(),
    watchUrl: z.string(),
    thumbnailUrl: z.string().meta({
      description:
        'A JPEG of the lowest rung, 320 px wide, renewed every ONAIR_THUMBNAIL_INTERVAL_SEC while live; the newest recording’s poster once not live; 404 when there is none',
    }),
  })
  .meta({ id: 'Event' });

/** A recording of one broadcast. */
export const recordingSchema = z
  .object({
    id: z.string(),
    eventId: z.string(),
    status: z.enum(['recording', 'ready', 'failed']),
    startedAt: epochMs,
    endedAt: epochMs.nullable(),
    durationSec: z.number(),
    bytes: z.number(),
    failure: z.string().nullable().meta({ description: 'Why storage failed; live playback was not affected' }),
    hlsUrl: z.string().meta({ description: 'The event’s HLS URL, which replays its newest recording once it is not live' }),
    downloadUrl: z.string(),
    posterUrl: z.string().meta({ description: 'The recording’s poster, a JPEG taken from the lowest rung (admins; 404 until stored)' }),
    previewUrl: z.string().meta({
      description:
        'Seek previews of the event’s replay (its newest recording; while live, of the broadcast so far): a WebVTT file whose cues name regions of sprite JPEGs (`sprite-0.jpg#xywh=x,y,w,h`)',
    }),
  })
  .meta({ id: 'Recording' });

/** A clip: a range of a recording served as its own VOD. */
export const clipSchema = z
  .object({
    id: z.string(),
    eventId: z.string(),
    recordingId: z.string(),
    title: z.string(),
    startSec: z
      .number()
      .meta({ description: 'Where the clip starts in its recording: the segment boundary at or before the range asked for' }),
    endSec: z.number().meta({ description: 'Where the clip ends in its recording: the segment boundary at or after the range asked for' }),
    durationSec: z.number(),
    segments: z.number().int(),
    createdAt: epochMs,
    hlsUrl: z.string().meta({ description: 'The clip’s VOD multivariant playlist (`/clips/<clipId>/master.m3u8`), served by the edges' }),
    watchUrl: z.string().meta({ description: 'The clip’s watch page (`/clip/<clipId>`)' }),
  })
  .meta({ id: 'Clip' });

/** An operator. */
export const operatorSchema = z
  .object({ id: z.string(), email: z.string(), role: z.enum(['admin', 'moderator']), createdAt: epochMs, disabled: z.boolean() })
  .meta({ id: 'Operator' });

/** A news flash. */
export const newsFlashSchema = z
  .object({ id: z.string(), text: z.string(), severity: severitySchema, at: epochMs, expiresAt: epochMs })
  .meta({ id: 'NewsFlash' });

/** A disclaimer. */
export const disclaimerSchema = z
  .object({ id: z.string(), text: z.string(), severity: severitySchema, at: epochMs })
  .meta({ id: 'Disclaimer' });

/** An ad break. */
export const adBreakSchema = z
  .object({
    id: z.string(),
    eventId: z.string(),
    seq: z.number().int().meta({ description: 'SCTE-35 splice_event_id' }),
    startAt: epochMs,
    durationSec: z.number(),
    creativeUrl: z.string().nullable(),
    status: z.enum(['scheduled', 'active', 'done', 'cancelled']),
    endedAt: epochMs.nullable(),
    viewersAtStart: z.number().int().nullable(),
    createdAt: epochMs,
    markedRenditions: z.number().int().optional().meta({
      description:
        'Only on the answer of the call that started or ended the break: renditions that took the DATERANGE on the origins carrying the event (0: no origin answered)',
    }),
  })
  .meta({ id: 'AdBreak' });

/** Where a live event runs in cluster mode: its ingest node and origins (primary first), fenced by an epoch. */
export const placementSchema = z
  .object({
    ingest: z.string().meta({ description: 'Node id of the ingest that owns the event' }),
    origins: z.array(
      z.object({
        id: z.string().meta({ description: 'Node id of the origin' }),
        url: z.string().optional().meta({ description: 'Internal base URL of the origin; shown to admins only' }),
      }),
    ),
    epoch: z.number().int().meta({ description: 'Fencing token: grows with every new placement of the event' }),
    session: z.number().int().meta({ description: 'Publish session of the broadcast (1, then +1 per reconnect)' }),
  })
  .meta({
    id: 'Placement',
    description: 'Cluster mode only: where a live event runs (`placement` is null when it runs nowhere, and absent in all-in-one mode)',
  });

/** The placement field: absent in all-in-one mode, null when the event runs nowhere, else the placement. */
const placementField = placementSchema.nullable().optional();

/** An event by id, with its placement in cluster mode. */
export const eventDetailSchema = eventSchema.extend({ placement: placementField }).meta({ id: 'EventDetail' });

/** An event with its live state, as the console lists it. */
export const consoleEventSchema = eventSchema.extend({ publishing: z.boolean(), viewers: z.number().int().nullable() });

/** One ingest health sample. */
export const healthSampleSchema = z
  .object({
    at: epochMs,
    protocol: z.string(),
    bitrateKbps: z.number(),
    fps: z.number(),
    keyframeIntervalSec: z.number().nullable(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    videoCodec: z.string().nullable(),
    audioCodec: z.string().nullable(),
    lateFrames: z.number().int(),
    transcodeSpeed: z.number().nullable(),
    transcodeFps: z.number().nullable(),
    droppedFrames: z.number().int(),
    duplicatedFrames: z.number().int(),
    warnings: z.array(
      z.object({ code: z.enum(['keyframe_interval', 'bitrate_collapse', 'transcode_slow', 'late_frames']), message: z.string() }),
    ),
  })
  .meta({ id: 'HealthSample' });

/** A stream key and the ingest URLs to use it with. */
export const streamKeySchema = z
  .object({
    streamKey: z.string(),
    rtmpUrl: z.string(),
    whipUrl: z.string(),
    srtUrl: z.string().optional().meta({ description: 'SRT publish URL, stream key included (absent when the server takes no SRT)' }),
  })
  .meta({ id: 'StreamKey' });

/** Live status of one event at a glance. */
export const eventStatusSchema = z
  .object({
    id: z.string(),
    status: eventSchema.shape.status,
    liveSince: epochMs.nullable(),
    publishing: z.boolean(),
    viewers: z.number().int().nullable(),
    health: healthSampleSchema.nullable(),
    adBreak: adBreakSchema.nullable(),
    placement: placementField,
    sourceRefusal: eventSchema.shape.sourceRefusal,
  })
  .meta({ id: 'EventStatus' });

/** What viewers should see now over the video. */
export const overlaysSchema = z
  .object({
    newsFlashes: z.array(newsFlashSchema),
    disclaimer: disclaimerSchema.nullable(),
    adBreak: adBreakSchema
      .pick({ id: true, startAt: true, durationSec: true, creativeUrl: true })
      .extend({ remainingSec: z.number() })
      .nullable(),
    serverTime: z.number().int(),
  })
  .meta({ id: 'Overlays' });

/** A webhook. */
export const webhookSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.enum(['event.live', 'event.offline', 'event.ended', 'recording.ready'])),
    createdAt: epochMs,
  })
  .meta({ id: 'Webhook' });

/** One webhook delivery. */
export const webhookDeliverySchema = z
  .object({
    id: z.string(),
    webhookId: z.string(),
    type: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    lastStatusCode: z.number().int().nullable(),
    lastError: z.string().nullable(),
    createdAt: epochMs,
    nextAttemptAt: epochMs.nullable(),
    deliveredAt: epochMs.nullable(),
  })
  .meta({ id: 'WebhookDelivery' });

/** Slug input. */
export const slugInput = z.string().regex(slugPattern, 'lower-case letters, digits and dashes, 1–64 characters');
