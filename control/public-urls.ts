// The public URLs of a server and of its events, as operators and webhooks see them. One place, so the CLI,
// the API and webhook payloads never disagree on where to publish or watch.
import type { Config } from '../config/schema.ts';

/** The public base URL a server on `httpPort` uses: ONAIR_PUBLIC_URL, else http://localhost:<port>; no trailing slash. */
export function publicBase(config: Pick<Config, 'publicUrl'>, httpPort: number): string {
  return (config.publicUrl ?? `http://localhost:${httpPort}`).replace(/\/+$/, '');
}

/** Where a server answers: its public base URL, its RTMP port and its SRT port (undefined: no SRT ingest). */
export interface PublicServer {
  publicUrl: string;
  rtmpPort: number;
  srtPort?: number | undefined;
}

/** The SRT port publishers are told: undefined when SRT is off, or when the port is picked at start (0) and not known here. */
export function configuredSrtPort(config: Pick<Config, 'srtIngest' | 'srtPort'>): number | undefined {
  return config.srtIngest === 'on' && config.srtPort !== 0 ? config.srtPort : undefined;
}

/**
 * Where to publish over SRT with `streamKey`: the key rides in the stream id, so this URL is as secret as the key and
 * is shown only where the key is. Undefined when the server takes no SRT.
 */
export function srtPublishUrl(server: PublicServer, streamKey: string): string | undefined {
  if (server.srtPort === undefined) return undefined;
  return `srt://${new URL(server.publicUrl).hostname}:${server.srtPort}?streamid=publish:${streamKey}`;
}

/** URLs an operator needs for an event: where to publish (RTMP server, WHIP endpoint) and where to watch. */
export interface EventUrls {
  rtmpUrl: string;
  whipUrl: string;
  watchUrl: string;
  hlsUrl: string;
  /** The live thumbnail (the replay's poster once not live): the watch page's og:image. */
  thumbnailUrl: string;
}

/** The public URLs of event `e` on `server` (RTMP goes to the public URL's host name). */
export function eventUrls(server: PublicServer, e: { id: string; slug: string }): EventUrls {
  const base = server.publicUrl;
  return {
    rtmpUrl: `rtmp://${new URL(base).hostname}:${server.rtmpPort}/live`,
    whipUrl: `${base}/whip/${e.id}`,
    watchUrl: `${base}/watch/${e.slug}`,
    hlsUrl: `${base}/live/${e.id}/master.m3u8`,
    thumbnailUrl: `${base}/live/${e.id}/thumbnail.jpg`,
  };
}
