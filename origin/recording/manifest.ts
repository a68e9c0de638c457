// A recording's manifest, stored beside its segments: what a VOD playlist is rebuilt from. It lists only
// segments (and inits) already stored, so that whatever a crash leaves behind is playable.
import { z } from 'zod';

/** Storage key prefix of an event's recordings. */
export const eventPrefix = (eventId: string): string => `${eventId}/`;
/** Storage key prefix of one recording (its timeline zero identifies the broadcast). */
export const recordingPrefix = (eventId: string, zeroMs: number): string => `${eventId}/${zeroMs}/`;
/** Key of the manifest. */
export const manifestKey = (eventId: string, zeroMs: number): string => `${recordingPrefix(eventId, zeroMs)}manifest.json`;
/** Key of the pointer to an event's newest recording (the one its hlsUrl replays). */
export const latestKey = (eventId: string): string => `${eventPrefix(eventId)}latest.json`;
/** Key of a rendition's media object (`init-<run>.mp4`, `seg-<msn>.m4s`). */
export const objectKey = (eventId: string, zeroMs: number, rendition: string, name: string): string =>
  `${recordingPrefix(eventId, zeroMs)}${rendition}/${name}`;
/** Key of a recording's poster (a JPEG). */
export const posterKey = (eventId: string, zeroMs: number): string => `${recordingPrefix(eventId, zeroMs)}poster.jpg`;
/** Key of a recording's seek-preview sprite sheet `n` (origin/thumbnails/layout.ts). */
export const spriteKey = (eventId: string, zeroMs: number, n: number): string => `${recordingPrefix(eventId, zeroMs)}sprite-${n}.jpg`;
/** The recording id the API uses: event and broadcast. */
export const recordingId = (eventId: string, zeroMs: number): string => `${eventId}.${zeroMs}`;

const segmentSchema = z.object({
  msn: z.number().int().nonnegative(),
  run: z.number().int().nonnegative(),
  durationSec: z.number().nonnegative(),
  programDateTimeMs: z.number(),
  discontinuitySequence: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
});

const variantSchema = z.object({
  uri: z.string(),
  bandwidth: z.number(),
  averageBandwidth: z.number(),
  codecs: z.string(),
  // Absent for an audio-only rendition, as in the live master playlist.
  width: z.number().optional(),
  height: z.number().optional(),
  frameRate: z.number().optional(),
});

export const manifestSchema = z.object({
  version: z.literal(1),
  eventId: z.string(),
  zeroMs: z.number().int(),
  startedAtMs: z.number(),
  /** Set when the broadcast ended normally; absent after a crash. */
  endedAtMs: z.number().optional(),
  segmentTargetSec: z.number().positive(),
  renditions: z.array(
    z.object({
      name: z.string(),
      variant: variantSchema,
      segments: z.array(segmentSchema),
    }),
  ),
  /** A poster (posterKey) is stored. */
  poster: z.boolean().optional(),
  /** Seek previews, once a sprite sheet is stored: the tile size and the segment each stored tile was taken from, in order. */
  thumbnails: z
    .object({
      tileWidth: z.number().int().positive(),
      tileHeight: z.number().int().positive(),
      tiles: z.array(z.number().int().nonnegative()),
    })
    .optional(),
});

export type RecordingManifest = z.infer<typeof manifestSchema>;
export type StoredSegment = z.infer<typeof segmentSchema>;

/** The segments every rendition has (a player switching renditions must find each msn in all of them). */
export function commonSegments(m: RecordingManifest, rendition: string): StoredSegment[] {
  const r = m.renditions.find((x) => x.name === rendition);
  if (!r) return [];
  const sets = m.renditions.map((x) => new Set(x.segments.map((s) => s.msn)));
  return r.segments.filter((s) => sets.every((set) => set.has(s.msn)));
}

/** Duration (s) and bytes of a recording: the first rendition's common segments, every rendition's bytes. */
export function manifestSummary(m: RecordingManifest): { durationSec: number; bytes: number; segments: number } {
  const first = m.renditions[0];
  const segments = first ? commonSegments(m, first.name) : [];
  return {
    durationSec: segments.reduce((n, s) => n + s.durationSec, 0),
    bytes: m.renditions.reduce((n, r) => n + r.segments.reduce((k, s) => k + s.bytes, 0), 0),
    segments: segments.length,
  };
}
