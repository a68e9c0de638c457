// Serves an event that is not live from its newest recording, as VOD under the same /live/<event>/ URLs it had
// while live: the multivariant playlist with the recorded ladder, VOD media playlists rebuilt from the manifest,
// and the stored inits and segments streamed from storage. Manifests are cached for a few seconds. Clips are served
// the same way under /clips/<clipId>/ from their own manifests, which name the recording's objects (clip.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../lib/logger.ts';
import type { Config } from '../../config/schema.ts';
import { loadConfig } from '../../config/load.ts';
import { createOriginHlsHandler, PREVIEW_CACHE, VTT } from '../hls-server.ts';
import { previewCues, renderPreviewVtt, TILES_PER_SHEET } from '../thumbnails/layout.ts';
import { sendError } from '../../lib/http.ts';
import type { HlsObject } from '../../lib/hls-path.ts';
import { readAll, type Storage } from '../../lib/storage/storage.ts';
import {
  commonSegments,
  latestKey,
  manifestKey,
  manifestSchema,
  objectKey,
  posterKey,
  spriteKey,
  type RecordingManifest,
} from './manifest.ts';
import { clipKey } from './clip.ts';
import { renderVodMasterPlaylist, renderVodPlaylist } from './vod-playlist.ts';

const M3U8 = 'application/vnd.apple.mpegurl';
const MP4 = 'video/mp4';
/** A replay's playlists change only if the event goes live again. */
const PLAYLIST_CACHE = 'public, max-age=2';
const IMMUTABLE = 'public, max-age=3600, immutable';
const CACHE_MS = 2000;

/** Reads an event's newest recording manifest from storage; undefined when it has none. Throws on a storage failure. */
export async function loadLatestManifest(storage: Storage, eventId: string): Promise<RecordingManifest | undefined> {
  const latest = await readAll(storage, latestKey(eventId));
  if (!latest) return undefined;
  const { zeroMs } = JSON.parse(latest.toString('utf8')) as { zeroMs: number };
  if (!Number.isSafeInteger(zeroMs)) throw new Error(`bad ${latestKey(eventId)}`);
  return loadManifest(storage, eventId, zeroMs);
}

/** Reads one recording's manifest; undefined when it is not there. */
export async function loadManifest(storage: Storage, eventId: string, zeroMs: number): Promise<RecordingManifest | undefined> {
  const text = await readAll(storage, manifestKey(eventId, zeroMs));
  if (!text) return undefined;
  return manifestSchema.parse(JSON.parse(text.toString('utf8')));
}

/** Reads a clip's manifest (the recording's, cut to the clip's segments); undefined when there is no such clip. */
export async function loadClipManifest(storage: Storage, clipId: string): Promise<RecordingManifest | undefined> {
  const text = await readAll(storage, clipKey(clipId));
  if (!text) return undefined;
  return manifestSchema.parse(JSON.parse(text.toString('utf8')));
}

/** The replay side of the recording. */
export interface Replay {
  /** Answers `obj` from the event's newest recording; false (nothing sent) when it has none. */
  handle(obj: HlsObject, req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

/** An HTTP handler of /live/ that answers only from recordings (a cluster edge's replay server). */
export function replayHandler(
  storage: Storage,
  logger: Logger,
  config: Config = loadConfig({}),
): (req: IncomingMessage, res: ServerResponse) => void {
  const replay = createReplay({ storage, logger });
  return createOriginHlsHandler({ config, streams: () => undefined, replay: replay.handle });
}

export function createReplay(deps: { storage: Storage; logger: Logger }): Replay {
  const { storage } = deps;
  const cache = new Map<string, { at: number; manifest: Promise<RecordingManifest | undefined> }>();

  const manifestOf = (obj: HlsObject): Promise<RecordingManifest | undefined> => {
    const now = Date.now();
    const key = obj.clip ? `clip:${obj.eventId}` : obj.eventId;
    const hit = cache.get(key);
    if (hit && now - hit.at < CACHE_MS) return hit.manifest;
    for (const [k, v] of cache) if (now - v.at >= CACHE_MS) cache.delete(k);
    const manifest = obj.clip ? loadClipManifest(storage, obj.eventId) : loadLatestManifest(storage, obj.eventId);
    cache.set(key, { at: now, manifest });
    manifest.catch(() => cache.delete(key));
    return manifest;
  };

  const send = (res: ServerResponse, req: IncomingMessage, body: string, type: string, cacheControl = PLAYLIST_CACHE) => {
    res.writeHead(200, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'cache-control': cacheControl,
      'access-control-allow-origin': '*',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  /** Streams stored object `key`; a 404 when storage has lost it. */
  const stream = async (key: string, type: string, cacheControl: string, req: IncomingMessage, res: ServerResponse) => {
    const o = await storage.get(key);
    if (!o) return sendError(res, 404, 'not_found', 'recorded object is missing from storage');
    res.writeHead(200, {
      'content-type': type,
      'content-length': o.size,
      'cache-control': cacheControl,
      'access-control-allow-origin': '*',
    });
    if (req.method === 'HEAD') {
      o.body.destroy();
      res.end();
      return;
    }
    o.body.on('error', (err) => {
      deps.logger.warn({ key, err: err.message }, 'recording read failed mid-response');
      res.destroy();
    });
    res.on('close', () => o.body.destroy());
    o.body.pipe(res);
  };

  return {
    async handle(obj, req, res) {
      const m = await manifestOf(obj);
      if (!m || m.renditions.length === 0) return false;
      // Renditions with segments every rendition has: a player switching finds each msn in all of them.
      const playable = m.renditions.filter((r) => commonSegments(m, r.name).length > 0);
      if (playable.length === 0) return false;
      const p = obj.preview;
      if (p !== undefined) {
        // The poster, the seek-preview track over the VOD timeline, and its sprite sheets.
        const t = m.thumbnails;
        if (p.file === 'thumbnail') {
          if (m.poster) await stream(posterKey(m.eventId, m.zeroMs), 'image/jpeg', PREVIEW_CACHE, req, res);
          else sendError(res, 404, 'not_found', 'the recording has no poster');
        } else if (!t) sendError(res, 404, 'not_found', 'the recording has no seek previews');
        else if (p.file === 'vtt') {
          const tile = { width: t.tileWidth, height: t.tileHeight };
          send(res, req, renderPreviewVtt(previewCues(commonSegments(m, playable[0]!.name), t.tiles, tile)), VTT, PREVIEW_CACHE);
        } else if (p.sheet < Math.ceil(t.tiles.length / TILES_PER_SHEET)) {
          await stream(spriteKey(m.eventId, m.zeroMs, p.sheet), 'image/jpeg', PREVIEW_CACHE, req, res);
        } else sendError(res, 404, 'not_found', 'no such sprite sheet in the recording');
        return true;
      }
      if (obj.kind === 'master') {
        send(res, req, renderVodMasterPlaylist(playable.map((r) => r.variant)), M3U8);
        return true;
      }
      const r = playable.find((x) => x.name === obj.rendition);
      if (!r) {
        sendError(res, 404, 'not_found', 'no such rendition in the recording');
        return true;
      }
      const segments = commonSegments(m, r.name);
      if (obj.kind === 'playlist') {
        send(res, req, renderVodPlaylist(m.segmentTargetSec, segments), M3U8);
        return true;
      }
      const media = obj.media!;
      let name: string | undefined;
      if (media.kind === 'init' && segments.some((s) => s.run === media.run)) name = `init-${media.run}.mp4`;
      else if (media.kind === 'segment' && segments.some((s) => s.msn === media.msn)) name = `seg-${media.msn}.m4s`;
      if (name === undefined) {
        sendError(res, 404, 'not_found', media.kind === 'part' ? 'a recording has no parts' : 'not in the recording');
        return true;
      }
      await stream(objectKey(m.eventId, m.zeroMs, r.name, name), MP4, IMMUTABLE, req, res);
      return true;
    },
  };
}
