// Signals the control plane sends to an event's viewers (news flashes, disclaimers, ad breaks, event status) over
// the bus, on their own channel per event. The WebSocket gateway subscribes to `signalsChannel(eventId)` and forwards
// each message to the event's clients in the next batch (`batch.signals`, docs/protocol.md); a client that joins
// later gets what is still active (`ViewerOverlays`) in its welcome, or from `GET /api/v1/events/{id}/overlays`.
import type { Bus } from '../lib/bus/bus.ts';
import type { Logger } from '../lib/logger.ts';

/** A news flash as viewers see it. */
export interface NewsFlashWire {
  id: string;
  text: string;
  severity: 'info' | 'warning' | 'critical';
  /** Shown from (ms since epoch). */
  at: number;
  /** Hidden after (ms since epoch). */
  expiresAt: number;
}

/** A disclaimer as viewers see it (stays until cleared). */
export interface DisclaimerWire {
  id: string;
  text: string;
  severity: 'info' | 'warning' | 'critical';
  at: number;
}

/** An ad break as viewers see it. */
export interface AdBreakWire {
  id: string;
  /** Start (ms since epoch); the break runs until `startAt + durationSec`. */
  startAt: number;
  durationSec: number;
  /** Image or video to show; null: a slate. */
  creativeUrl: string | null;
}

/** Everything on an event's signals channel. */
export type ViewerSignal =
  | { signal: 'news_flash'; flash: NewsFlashWire }
  | { signal: 'news_flash_cleared'; id: string }
  | { signal: 'disclaimer'; disclaimer: DisclaimerWire | null }
  | { signal: 'ad_break_start'; adBreak: AdBreakWire }
  | { signal: 'ad_break_end'; id: string }
  | { signal: 'event_status'; status: 'idle' | 'live' | 'offline' | 'ended' };

/** What a viewer must see on joining: the active overlays, with seconds left computed by the server. */
export interface ViewerOverlays {
  newsFlashes: (NewsFlashWire & { remainingSec: number })[];
  disclaimer: DisclaimerWire | null;
  adBreak: (AdBreakWire & { remainingSec: number }) | null;
  eventStatus: 'idle' | 'live' | 'offline' | 'ended';
  /** The server's clock (ms since epoch) when this was read. */
  serverTime: number;
}

/** Seconds from `now` until `endMs` (0 when past), to a tenth of a second. */
export function remainingSec(endMs: number, now: number): number {
  return Math.max(0, Math.round((endMs - now) / 100) / 10);
}

/** Adds `remainingSec` to the timed signals (news flash, ad break start) as seen at `now`; others unchanged. */
export function withRemaining(s: ViewerSignal, now: number): ViewerSignal {
  if (s.signal === 'news_flash')
    return { ...s, flash: { ...s.flash, remainingSec: remainingSec(s.flash.expiresAt, now) } as NewsFlashWire };
  if (s.signal === 'ad_break_start') {
    return {
      ...s,
      adBreak: { ...s.adBreak, remainingSec: remainingSec(s.adBreak.startAt + s.adBreak.durationSec * 1000, now) } as AdBreakWire,
    };
  }
  return s;
}

/** Bus channel of an event's viewer signals (hash tag: one Redis Cluster shard per event). */
export function signalsChannel(eventId: string): string {
  return `onair:signals:{${eventId}}`;
}

/** Parses a signals-channel message; undefined for anything malformed. */
export function decodeViewerSignal(text: string): ViewerSignal | undefined {
  try {
    const m = JSON.parse(text) as { signal?: unknown };
    if (m && typeof m === 'object' && typeof m.signal === 'string') return m as ViewerSignal;
  } catch {
    /* ignored */
  }
  return undefined;
}

/** Sends signals to an event's viewers. */
export interface ViewerSignals {
  /** Publishes on the bus; never throws (a down bus is logged: viewers re-sync from the overlays GET). */
  send(eventId: string, signal: ViewerSignal): Promise<void>;
}

/** Publishes viewer signals through `bus` (or only logs them when there is no bus). */
export function createViewerSignals(deps: { bus?: Bus; logger: Logger }): ViewerSignals {
  const log = deps.logger.child({ component: 'viewer-signals' });
  return {
    async send(eventId, signal) {
      if (!deps.bus) {
        log.debug({ eventId, signal: signal.signal }, 'no bus: viewer signal not sent');
        return;
      }
      try {
        await deps.bus.publish(signalsChannel(eventId), JSON.stringify(signal));
      } catch (err) {
        log.warn({ eventId, signal: signal.signal, err: (err as Error).message }, 'viewer signal not published');
      }
    },
  };
}
