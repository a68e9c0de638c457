// The origin's HLS HTTP handler: playlists (with LL-HLS blocking reload) and media objects.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import { sendError } from '../lib/http.ts';
import { parseHlsRequest, type HlsObject } from '../lib/hls-path.ts';
import type { LiveStream } from './live-stream.ts';
import type { RenditionPackager } from './packager.ts';
import { renderMasterPlaylist, renderMediaPlaylist } from './playlist.ts';

/** RFC 8216bis §6.2.5.2: how far past the last part a blocking request may ask (part targets under 1 s). */
const ADVANCE_PART_LIMIT = 3;

const M3U8 = 'application/vnd.apple.mpegurl';

/** Resolves true once `ready()` holds (re-checked on every new part or segment), false after `timeoutMs`. */
function waitUntil(p: RenditionPackager, ready: () => boolean, timeoutMs: number, req: IncomingMessage): Promise<boolean> {
  if (ready()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const check = () => {
      if (ready()) done(true);
    };
    const done = (v: boolean) => {
      clearTimeout(timer);
      p.off('part', check);
      p.off('segment', check);
      req.off('close', onClose);
      resolve(v);
    };
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    p.on('part', check);
    p.on('segment', check);
    req.on('close', onClose);
  });
}

/** Waits for a stream's renditions to have produced something (the first inits after go-live). */
async function waitForStream(s: LiveStream, timeoutMs: number, req: IncomingMessage): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (s.packagers.size === 0) {
    if (Date.now() > deadline || req.destroyed) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const p of s.packagers.values()) {
    if (!(await waitUntil(p, () => p.lastMsn !== undefined, Math.max(0, deadline - Date.now()), req))) return false;
  }
  return true;
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

function numbersOf(obj: HlsObject, pathname: string): number[] {
  const file = pathname.slice(pathname.lastIndexOf('/') + 1);
  return (file.match(/\d+/g) ?? []).map(Number);
}

/** Builds the origin's request handler over the live streams it holds. */
export function createOriginHlsHandler(deps: {
  config: Config;
  streams: (eventId: string) => LiveStream | undefined;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { config } = deps;
  const holdMs = 3 * config.segmentTargetSec * 1000;
  const lowLatency = true;

  const master = async (s: LiveStream, req: IncomingMessage, res: ServerResponse) => {
    if (!(await waitForStream(s, holdMs, req))) return sendError(res, 503, 'not_ready', 'stream is starting', { 'retry-after': '1' });
    const variants = s.renditions.map((r) => {
      const p = s.packagers.get(r.name)!;
      const estimate = (r.videoKbps + config.audioKbps) * 1000 * 1.1;
      return {
        uri: `${r.name}/index.m3u8`,
        bandwidth: Math.round(p.bandwidth ?? estimate),
        averageBandwidth: Math.round(p.averageBandwidth ?? estimate / 1.1),
        codecs: p.codecs ?? 'avc1.640028,mp4a.40.2',
        width: p.width ?? Math.round((r.height * 16) / 9 / 2) * 2,
        height: p.height ?? r.height,
        frameRate: p.frameRate ?? r.fps,
      };
    });
    send(res, renderMasterPlaylist(variants), M3U8, 'no-cache');
  };

  const playlist = async (s: LiveStream, p: RenditionPackager, url: URL, req: IncomingMessage, res: ServerResponse) => {
    const msnParam = url.searchParams.get('_HLS_msn');
    const partParam = url.searchParams.get('_HLS_part');
    const skip = url.searchParams.has('_HLS_skip');
    if (!(await waitUntil(p, () => p.lastMsn !== undefined, holdMs, req))) {
      return sendError(res, 503, 'not_ready', 'rendition has no media yet', { 'retry-after': '1' });
    }
    if (lowLatency && msnParam !== null) {
      const msn = Number(msnParam);
      const part = partParam === null ? undefined : Number(partParam);
      const lastMsn = p.lastMsn!;
      if (msn > lastMsn + 2) return sendError(res, 400, 'msn_too_far', `_HLS_msn ${msn} is more than two segments past ${lastMsn}`);
      if (part !== undefined) {
        const perSegment = Math.round(config.segmentTargetSec / config.partTargetSec);
        const ahead = (msn - lastMsn) * perSegment + part - (p.lastPartIndex ?? 0);
        if (ahead > ADVANCE_PART_LIMIT) return sendError(res, 400, 'part_too_far', `_HLS_part ${part} is beyond the advance part limit`);
      }
      const ready = () => {
        const seg = p.segment(msn);
        if (p.lastMsn! > msn) return part === undefined || !seg || part < seg.parts.length || seg.complete;
        if (!seg) return false;
        if (part === undefined) return seg.complete;
        // A part index past the segment's last part means part 0 of the next segment.
        return part < seg.parts.length;
      };
      if (!(await waitUntil(p, ready, holdMs, req))) {
        if (req.destroyed) return;
        return sendError(res, 503, 'timeout', 'the requested part did not appear in time', { 'retry-after': '1' });
      }
    }
    const reports = s.renditions
      .filter((r) => r.name !== p.name)
      .map((r) => {
        const o = s.packagers.get(r.name)!;
        return { uri: `../${r.name}/index.m3u8`, lastMsn: o.lastMsn ?? 0, lastPart: o.lastPartIndex ?? 0 };
      });
    send(res, renderMediaPlaylist(p, { lowLatency, skip, renditionReports: reports }), M3U8, 'no-cache');
  };

  const media = async (obj: HlsObject, p: RenditionPackager, nums: number[], req: IncomingMessage, res: ServerResponse) => {
    const immutable = 'public, max-age=3600, immutable';
    if (obj.kind === 'init') {
      const bytes = p.init(nums[0]!);
      return bytes ? send(res, bytes, 'video/mp4', immutable) : sendError(res, 404, 'not_found', 'no such init segment');
    }
    if (obj.kind === 'segment') {
      const msn = nums[0]!;
      const seg = p.segment(msn);
      // The open segment is answered once it completes.
      if (seg && !seg.complete) await waitUntil(p, () => p.segment(msn)?.complete ?? true, holdMs, req);
      const done = p.segment(msn);
      return done?.complete ? send(res, done.bytes(), 'video/mp4', immutable) : sendError(res, 404, 'not_found', 'no such segment');
    }
    const [msn, index] = nums as [number, number];
    if (!p.part(msn, index)) {
      // A hinted (next) part is held until it exists; a hint that the next keyframe overtook gets a 404.
      const next = p.nextPart;
      const hinted = next && next.msn === msn && next.index === index;
      if (!hinted) return sendError(res, 404, 'not_found', 'no such part');
      await waitUntil(p, () => p.part(msn, index) !== undefined || (p.segment(msn)?.complete ?? false) || (p.lastMsn ?? 0) > msn, holdMs, req);
    }
    const part = p.part(msn, index);
    if (req.destroyed) return;
    return part ? send(res, part.bytes, 'video/mp4', immutable) : sendError(res, 404, 'not_found', 'no such part');
  };

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'method_not_allowed', 'GET or HEAD only');
    const obj = parseHlsRequest(url.pathname, url.search);
    if ('error' in obj) return sendError(res, obj.error === 'bad_request' ? 400 : 404, obj.error, obj.message);
    const s = deps.streams(obj.eventId);
    if (!s) return sendError(res, 404, 'not_found', 'event is not live');
    let work: Promise<void>;
    if (obj.kind === 'master') work = master(s, req, res);
    else {
      const p = s.packagers.get(obj.rendition!);
      if (!p) return sendError(res, 404, 'not_found', 'no such rendition');
      work = obj.kind === 'playlist' ? playlist(s, p, url, req, res) : media(obj, p, numbersOf(obj, url.pathname), req, res);
    }
    work.catch((err: Error) => {
      if (!res.headersSent) sendError(res, 500, 'internal', err.message);
      else res.destroy();
    });
  };
}
