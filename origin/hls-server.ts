// The origin's HLS HTTP handler: playlists (LL-HLS blocking reload per RFC 8216bis §6.2.5.2, delta
// updates, rendition reports, or plain HLS for `standard` events) and media objects (init, segments,
// parts, with preload-hinted parts held until they exist).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import { sendError } from '../lib/http.ts';
import { parseHlsRequest, type HlsObject, type MediaName } from '../lib/hls-path.ts';
import type { LiveStream } from './live-stream.ts';
import type { RenditionPackager } from './packager.ts';
import type { Thumbnailer } from './thumbnails/thumbnailer.ts';
import type { ObjectReader } from '../lib/storage/storage.ts';
import { dvrSource, type DvrStoredSegment } from './dvr-playlist.ts';
import { joinLag, joinWait, partTarget, renderMasterPlaylist, renderMediaPlaylist, targetDuration, variantFor } from './playlist.ts';

const M3U8 = 'application/vnd.apple.mpegurl';
const MP4 = 'video/mp4';
const IMMUTABLE = 'public, max-age=3600, immutable';
/** Live thumbnails, preview tracks and sprite sheets change every few seconds. */
export const PREVIEW_CACHE = 'public, max-age=5';
export const VTT = 'text/vtt; charset=utf-8';

/**
 * RFC 8216bis §6.2.5.2 Advance Part Limit: how many parts past the playlist's last part a blocking
 * request may ask for: 3 / PART-TARGET when PART-TARGET is under one second, else 3.
 */
export function advancePartLimit(partTargetSec: number): number {
  return partTargetSec < 1 ? Math.floor(3 / partTargetSec + 1e-9) : 3;
}

/** How many parts a blocking request for (msn, part) is ahead of a playlist ending at (lastMsn, lastPart). */
export function partsAhead(msn: number, part: number, lastMsn: number, lastPart: number, partsPerSegment: number): number {
  if (msn <= lastMsn) return msn === lastMsn ? part - lastPart : -1;
  // The rest of the last segment, the whole segments in between, then part+1 parts of segment msn.
  return Math.max(0, partsPerSegment - 1 - lastPart) + (msn - lastMsn - 1) * partsPerSegment + part + 1;
}

/** One 'part'/'segment' listener per packager, fanning out to every request waiting on it. */
class PackagerWaiters {
  readonly #checks = new WeakMap<RenditionPackager, Set<() => void>>();

  /** Resolves true once `ready()` holds (re-checked on every new part or segment), false after `timeoutMs` or when `req` closes. */
  until(p: RenditionPackager, ready: () => boolean, timeoutMs: number, req: IncomingMessage): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    if (req.destroyed) return Promise.resolve(false);
    let checks = this.#checks.get(p);
    if (!checks) {
      const set = new Set<() => void>();
      const run = () => {
        for (const c of [...set]) c();
      };
      p.on('part', run);
      p.on('segment', run);
      this.#checks.set(p, set);
      checks = set;
    }
    const set = checks;
    return new Promise((resolve) => {
      const check = () => {
        if (ready()) done(true);
      };
      const done = (v: boolean) => {
        clearTimeout(timer);
        set.delete(check);
        req.off('close', onClose);
        resolve(v);
      };
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      set.add(check);
      req.on('close', onClose);
    });
  }
}

function send(res: ServerResponse, body: string | Buffer, type: string, cacheControl: string): void {
  res.writeHead(200, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': cacheControl,
    'access-control-allow-origin': '*',
  });
  res.end(body);
}

/** Position of a rendition's newest part, comparable across renditions (aligned segment numbers). */
function position(p: RenditionPackager): [number, number] {
  return [p.lastMsn ?? -1, p.lastPartIndex ?? -1];
}

function atLeast(a: [number, number], b: [number, number]): boolean {
  return a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1]);
}

/** A live stream's recording, as the DVR window reads it (a Recorder satisfies it). */
export interface DvrRecording {
  /** A rendition's stored segments, in msn order. */
  storedSegments(rendition: string): readonly DvrStoredSegment[];
  /** Opens a stored init or segment; undefined when it is not stored. */
  read(rendition: string, name: { kind: 'init'; run: number } | { kind: 'segment'; msn: number }): Promise<ObjectReader | undefined>;
}

/** Streams a stored object (an older DVR segment or init) as an immutable response. */
function sendStored(obj: ObjectReader, req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': MP4, 'content-length': obj.size, 'cache-control': IMMUTABLE, 'access-control-allow-origin': '*' });
  if (req.method === 'HEAD') {
    obj.body.destroy();
    res.end();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    obj.body.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      obj.body.destroy();
      resolve();
    });
    obj.body.pipe(res);
  });
}

/**
 * The longest a media playlist's first load is held for a keyframe-aligned join, in seconds: DESIGN's time to first
 * frame (1.5 s) less the ~0.5 s hls.js took here from that playlist to its first frame.
 */
export const JOIN_WAIT_MAX_SEC = 1;

/** Builds the origin's request handler over the live streams it holds. */
export function createOriginHlsHandler(deps: {
  config: Config;
  streams: (eventId: string) => LiveStream | undefined;
  /** Answers an event that is not live from its recording; false when it has none. */
  replay?: (obj: HlsObject, req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** The thumbnails of a live event (none for an audio-only one). */
  thumbnails?: (eventId: string) => Thumbnailer | undefined;
  /**
   * DVR: the live stream's recording, whose stored segments older than the in-memory window the media playlists
   * list (within the stream's dvrWindowSec) and whose stored objects answer requests for them. Absent: live window only.
   */
  dvr?: (s: LiveStream) => DvrRecording | undefined;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { config } = deps;
  const waiters = new PackagerWaiters();
  /** RFC 8216bis §6.2.5.2: a blocking request is answered (503) after three target durations at most. */
  const holdMs = (p: RenditionPackager) => 3 * targetDuration(p) * 1000;
  const startupMs = 3 * config.segmentTargetSec * 1000;
  // Parts follow the stream's part target (its event's or the config's), which its packagers carry.
  const partsPerSegment = (p: RenditionPackager) => Math.max(1, Math.round(p.segmentTargetSec / p.partTargetSec));
  /** How long a blocking response waits for sibling renditions to reach its position (fresh rendition reports). */
  const reportSyncMs = (p: RenditionPackager) => Math.min(250, (p.partTargetSec * 1000) / 2);

  /** Waits for every rendition of a stream to have a complete segment (players find no playable media before). */
  const waitForStream = async (s: LiveStream, req: IncomingMessage): Promise<boolean> => {
    const deadline = Date.now() + startupMs;
    while (s.packagers.size === 0) {
      if (Date.now() > deadline || req.destroyed) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const p of s.packagers.values()) {
      // The source rendition's segments last the publisher's keyframe interval (10 s and more): a part is enough.
      const copy = s.renditions.find((r) => r.name === p.name)?.copy === true;
      const playable = () => p.playlistSegments.some((seg) => seg.complete || (copy && seg.parts.length > 0));
      if (!(await waiters.until(p, playable, Math.max(0, deadline - Date.now()), req))) return false;
    }
    return true;
  };

  const master = async (s: LiveStream, req: IncomingMessage, res: ServerResponse) => {
    if (!(await waitForStream(s, req))) {
      if (req.destroyed) return;
      return sendError(res, 503, 'not_ready', 'stream is starting', { 'retry-after': '1' });
    }
    const variants = s.renditions.map((r) => variantFor(r, s.packagers.get(r.name)!, config.audioKbps));
    send(res, renderMasterPlaylist(variants), M3U8, 'no-cache');
  };

  const playlist = async (s: LiveStream, p: RenditionPackager, url: URL, req: IncomingMessage, res: ServerResponse) => {
    const lowLatency = (await s.latencyMode) === 'low';
    if (!(await waiters.until(p, () => p.lastMsn !== undefined, startupMs, req))) {
      if (req.destroyed) return;
      return sendError(res, 503, 'not_ready', 'rendition has no media yet', { 'retry-after': '1' });
    }
    // A plain-HLS event ignores the LL delivery directives (a server without blocking reload does).
    const msnParam = lowLatency ? url.searchParams.get('_HLS_msn') : null;
    const partParam = lowLatency ? url.searchParams.get('_HLS_part') : null;
    const skip = lowLatency && url.searchParams.has('_HLS_skip');
    if (msnParam !== null) {
      const msn = Number(msnParam);
      const part = partParam === null ? undefined : Number(partParam);
      const [lastMsn, lastPart] = position(p);
      if (msn > lastMsn + 2) {
        return sendError(res, 400, 'msn_too_far', `_HLS_msn ${msn} is more than two segments past the last one (${lastMsn})`);
      }
      if (part !== undefined) {
        const limit = advancePartLimit(partTarget(p));
        if (partsAhead(msn, part, lastMsn, lastPart, partsPerSegment(p)) > limit) {
          return sendError(
            res,
            400,
            'part_too_far',
            `_HLS_msn ${msn} _HLS_part ${part} is beyond the advance part limit (${limit} parts past ${lastMsn}.${lastPart})`,
          );
        }
      }
      const ready = () => {
        if ((p.lastMsn ?? -1) > msn) return true; // a later segment exists: segment msn and all its parts are done
        const seg = p.segment(msn);
        if (!seg) return false;
        if (part === undefined) return seg.complete;
        // A part index past the segment's last part means part 0 of the next segment (covered above).
        return part < seg.parts.length;
      };
      if (!(await waiters.until(p, ready, holdMs(p), req))) {
        if (req.destroyed) return;
        return sendError(
          res,
          503,
          'timeout',
          `_HLS_msn ${msn}${part === undefined ? '' : ` _HLS_part ${part}`} did not appear within three target durations`,
          {
            'retry-after': '1',
          },
        );
      }
      // Rendition reports should show the siblings at least where this playlist is (they run 1-2 ms apart).
      const here = position(p);
      await Promise.all(
        [...s.packagers.values()]
          .filter((o) => o !== p)
          .map((o) => waiters.until(o, () => atLeast(position(o), here), reportSyncMs(p), req)),
      );
      if (req.destroyed) return;
    }
    const wait =
      lowLatency && msnParam === null && url.searchParams.get('join') !== 'now' ? joinWait(p, config.partHoldBackParts) : undefined;
    if (wait !== undefined && wait > 0 && wait <= JOIN_WAIT_MAX_SEC) {
      // A first load (no `_HLS_msn`) is held until PART-HOLD-BACK from its end lands on an independent part
      // (joinLag): a player that aims there (hls.js) then starts from that part rather than from up to a GOP earlier,
      // and has only PART-HOLD-BACK of parts to fetch before it plays. Not when that is further off than
      // JOIN_WAIT_MAX_SEC (a copied rendition whose publisher keys every 2 s or more), and not for a player that
      // catches up by itself and asks `join=now` (lib/hls-path.ts JOIN_NOW).
      const aligned = () => (joinLag(p, config.partHoldBackParts) ?? Infinity) <= partTarget(p) / 2 + 1e-6;
      await waiters.until(p, aligned, (wait + partTarget(p)) * 1000, req);
      if (req.destroyed) return;
    }
    const reports = lowLatency
      ? s.renditions
          .filter((r) => r.name !== p.name)
          .flatMap((r) => {
            const o = s.packagers.get(r.name);
            if (o?.lastMsn === undefined) return [];
            return [{ uri: `../${r.name}/index.m3u8`, lastMsn: o.lastMsn, lastPart: o.lastPartIndex ?? 0 }];
          })
      : [];
    const recording = deps.dvr?.(s);
    const windowSec = recording ? await s.dvrWindowSec : 0;
    const source = recording && windowSec > 0 ? dvrSource(p, recording.storedSegments(p.name), windowSec) : p;
    send(
      res,
      renderMediaPlaylist(source, { lowLatency, skip, renditionReports: reports, partHoldBackParts: config.partHoldBackParts }),
      M3U8,
      'no-cache',
    );
  };

  /** Opens a stored DVR object; null once a 503 was sent (storage failing: the live window is unaffected). */
  const readStored = async (
    s: LiveStream,
    rendition: string,
    name: { kind: 'init'; run: number } | { kind: 'segment'; msn: number },
    res: ServerResponse,
  ): Promise<ObjectReader | undefined | null> => {
    try {
      return await deps.dvr?.(s)?.read(rendition, name);
    } catch (err) {
      sendError(res, 503, 'storage_unavailable', `cannot read the recording: ${(err as Error).message}`, { 'retry-after': '1' });
      return null;
    }
  };

  const media = async (s: LiveStream, name: MediaName, p: RenditionPackager, req: IncomingMessage, res: ServerResponse) => {
    if (name.kind === 'init') {
      const bytes = p.init(name.run);
      if (bytes) return send(res, bytes, MP4, IMMUTABLE);
      // An older run's init, left out of memory: a DVR segment needs it.
      const stored = await readStored(s, p.name, name, res);
      if (stored === null) return;
      return stored ? sendStored(stored, req, res) : sendError(res, 404, 'not_found', 'no such init segment');
    }
    if (name.kind === 'segment') {
      const { msn } = name;
      const seg = p.segment(msn);
      const firstLive = p.playlistSegments[0]?.msn;
      if (!seg && firstLive !== undefined && msn < firstLive) {
        // Older than the in-memory window: a DVR segment, read back from the recording.
        const stored = await readStored(s, p.name, name, res);
        if (stored === null) return;
        return stored
          ? sendStored(stored, req, res)
          : sendError(res, 404, 'not_found', 'no such segment (not in the live window nor recorded)');
      }
      // The open segment is answered once it completes.
      if (seg && !seg.complete) await waiters.until(p, () => p.segment(msn)?.complete ?? true, holdMs(p), req);
      if (req.destroyed) return;
      const done = p.segment(msn);
      return done?.complete ? send(res, done.bytes(), MP4, IMMUTABLE) : sendError(res, 404, 'not_found', 'no such segment');
    }
    if ((await s.latencyMode) !== 'low') return sendError(res, 404, 'not_found', 'this event is served as plain HLS: no parts');
    const { msn, index } = name;
    if (!p.part(msn, index)) {
      // The preload-hinted part is held until it exists and answered the moment it is complete. ffmpeg writes a
      // fragment only once it is whole, moof then mdat back to back (first to last byte < 1 ms for a 180 KB
      // 720p part, measured), so streaming it chunked would gain nothing. A hint a keyframe overtook gets a 404.
      const next = p.nextPart;
      if (next.msn !== msn || next.index !== index) return sendError(res, 404, 'not_found', 'no such part');
      const overtaken = () => p.part(msn, index) !== undefined || (p.segment(msn)?.complete ?? false) || (p.lastMsn ?? -1) > msn;
      await waiters.until(p, overtaken, holdMs(p), req);
    }
    if (req.destroyed) return;
    const part = p.part(msn, index);
    return part ? send(res, part.bytes, MP4, IMMUTABLE) : sendError(res, 404, 'not_found', 'no such part');
  };

  /** The live thumbnail, the seek-preview VTT of the broadcast so far, or one of its sprite sheets. */
  const preview = async (eventId: string, name: NonNullable<HlsObject['preview']>, res: ServerResponse) => {
    const t = deps.thumbnails?.(eventId);
    if (!t) return sendError(res, 404, 'not_found', 'this live event has no thumbnails (no video, or thumbnails are off)');
    if (name.file === 'vtt') return send(res, t.vtt(), VTT, PREVIEW_CACHE);
    const jpeg = name.file === 'thumbnail' ? t.thumbnail?.jpeg : await t.sheet(name.sheet);
    return jpeg ? send(res, jpeg, 'image/jpeg', PREVIEW_CACHE) : sendError(res, 404, 'not_found', `no ${name.file} yet`);
  };

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'method_not_allowed', 'GET or HEAD only');
    const obj = parseHlsRequest(url.pathname, url.search);
    if ('error' in obj) return sendError(res, obj.error === 'bad_request' ? 400 : 404, obj.error, obj.message);
    // A clip (`/clips/<clipId>/…`) is never live: it is answered from recordings only.
    const s = obj.clip ? undefined : deps.streams(obj.eventId);
    let work: Promise<void>;
    if (!s) {
      if (!deps.replay) return sendError(res, 404, 'not_found', obj.clip ? 'no recordings here: no clips' : 'event is not live');
      work = deps.replay(obj, req, res).then((answered) => {
        if (!answered) sendError(res, 404, 'not_found', obj.clip ? 'no such clip' : 'event is not live and has no recording');
      });
    } else if (obj.preview) work = preview(obj.eventId, obj.preview, res);
    else if (obj.kind === 'master') work = master(s, req, res);
    else {
      const p = s.packagers.get(obj.rendition!);
      if (!p) return sendError(res, 404, 'not_found', 'no such rendition');
      work = obj.media ? media(s, obj.media, p, req, res) : playlist(s, p, url, req, res);
    }
    work.catch((err: Error) => {
      if (!res.headersSent) sendError(res, 500, 'internal', err.message);
      else res.destroy();
    });
  };
}
