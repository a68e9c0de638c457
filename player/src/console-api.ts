// Typed client of the operator API (/api/v1) for the console: cookie session, CSRF header on every write. The body
// types come from the server's zod schemas (type-only import: erased from the bundle).
import { ApiError } from './api.ts';
import type {
  ApiAdBreak,
  ApiChatSettings,
  ApiComment,
  ApiConsoleEvent,
  ApiDisclaimer,
  ApiEvent,
  ApiRecording,
  ApiClip,
  ApiEventStatus,
  ApiEventStatusInfo,
  ApiHealthSample,
  ApiModeratedComment,
  ApiNewsFlash,
  ApiOperator,
  ApiOverlays,
  ApiSeverity,
  ApiStreamKey,
} from '../../control/api-types.ts';

/** Ladder presets (see the API's LadderPreset). */
export type LadderPresetName = 'standard' | 'passthrough' | 'audio' | 'custom';

/** The console's labels for the presets, in menu order. */
export const LADDER_PRESET_OPTIONS: [LadderPresetName, string][] = [
  ['standard', 'Standard — source quality plus lower rungs'],
  ['passthrough', 'Passthrough — source quality only (cheapest)'],
  ['audio', 'Audio only — radio, podcasts'],
  ['custom', 'Custom — the server’s encoded ladder'],
];

/** An event's part target and GOP in seconds (null each: the server's ONAIR_PART_TARGET_SEC / ONAIR_GOP_SEC). */
export type LatencyTuning = Pick<ApiEvent, 'partTargetSec' | 'gopSec'>;

/** The latency tunings the console offers (`part,gop` in seconds); '' keeps the server's settings. */
export const LATENCY_TUNING_OPTIONS: [string, string][] = [
  ['', 'Server settings (out of the box: 0.2 s parts, 1 s GOP) — lowest latency'],
  ['0.5,1', '0.5 s parts, 1 s GOP — fewer requests per viewer'],
  ['0.2,2', '0.2 s parts, 2 s GOP — less bitrate'],
  ['0.5,2', '0.5 s parts, 2 s GOP — fewer requests and less bitrate'],
];

/** How the console shows an event's tuning: `0.5 s parts, 2 s GOP`, a null one as the server's. */
export function describeLatencyTuning(t: LatencyTuning): string {
  if (t.partTargetSec === null && t.gopSec === null) return 'Server settings (ONAIR_PART_TARGET_SEC, ONAIR_GOP_SEC)';
  const part = t.partTargetSec === null ? 'server’s part target' : `${t.partTargetSec} s parts`;
  const gop = t.gopSec === null ? 'server’s GOP' : `${t.gopSec} s GOP`;
  return `${part}, ${gop}`;
}

/** Lifecycle of an event. */
export type ConsoleEventStatus = ApiEventStatus;

/** Severity of news flashes and disclaimers. */
export type Severity = ApiSeverity;

/** An operator as the API returns it. */
export type Operator = ApiOperator;

/** An event as the console sees it: the console list adds `publishing` and `viewers`, single-event answers do not. */
export type ConsoleEvent = ApiEvent & Partial<Pick<ApiConsoleEvent, 'publishing' | 'viewers'>>;

/** One ingest health sample (GET /events/:id/health and its SSE stream). */
export type HealthSample = ApiHealthSample;

/** An ad break. */
export type AdBreak = ApiAdBreak;

/** GET /events/:id/status. */
export type EventStatusInfo = ApiEventStatusInfo;

/** A news flash. */
export type NewsFlash = ApiNewsFlash;

/** A disclaimer. */
export type Disclaimer = ApiDisclaimer;

/** GET /events/:id/overlays (public). */
export type Overlays = ApiOverlays;

/** The stream key and ingest URLs (shown once); rotation also says whether a publisher was cut off. */
export type StreamKey = ApiStreamKey & { disconnected?: boolean };

/** A comment as REST and the WebSocket return it; the moderators' feed flags hidden and deleted ones. */
export type ConsoleComment = ApiComment & Partial<Pick<ApiModeratedComment, 'hidden' | 'deleted'>>;

/** Chat settings set by moderators. */
export type ChatSettings = ApiChatSettings;

/** One page of the moderators' comment feed (or of the public history, which has no settings). */
export interface ModerationFeedPage {
  comments: ConsoleComment[];
  hasMore: boolean;
  nextAfter: number;
  settings?: ChatSettings;
}

/** A moderation action (docs/protocol.md §5). */
export type ModerationAction =
  | { action: 'hide' | 'unhide' | 'delete'; commentId: string }
  | { action: 'ban' | 'unban'; viewerId: string; reason?: string }
  | { action: 'slow_mode'; seconds: number }
  | { action: 'chat'; enabled: boolean };

/** An event's editable settings as the API names them (null: the server's default). */
export interface EventSettings {
  title: string;
  description: string;
  visibility: 'public' | 'unlisted';
  recording: boolean;
  /** DVR window in seconds (0: off). */
  dvrWindowSec: number | null;
  /** Part target and GOP in seconds. */
  partTargetSec: number | null;
  gopSec: number | null;
}

/** Console API client; holds the CSRF token of the current session. */
export class ConsoleApi {
  private csrf: string | null = null;

  /** Called when a request answers 401 (session gone). */
  onUnauthenticated: () => void = () => undefined;

  /** Low-level request; throws ApiError with the server's code and message. */
  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && this.csrf !== null) headers['x-csrf-token'] = this.csrf;
    let res: Response;
    try {
      res = await fetch(`/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
        signal,
      });
    } catch (err) {
      if (signal?.aborted === true) throw err;
      throw new ApiError(0, 'network', 'cannot reach the server');
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      /* not JSON */
    }
    if (!res.ok) {
      const error = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      if (res.status === 401 && path !== '/auth/login') this.onUnauthenticated();
      throw new ApiError(
        res.status,
        typeof error?.code === 'string' ? error.code : 'http_error',
        typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`,
      );
    }
    return json as T;
  }

  /**
   * A viewer token for the signed-in operator (POST /viewers with role `moderator`, or `admin` for admins): what the
   * event page's real-time preview plays WHEP with, since WHEP takes a viewer token, not the operator session.
   */
  async viewerToken(displayName: string, role: 'moderator' | 'admin'): Promise<{ token: string; expiresAt: number }> {
    const r = await this.request<{ token: string; expiresAt: number }>('POST', '/viewers', { displayName, role });
    return { token: r.token, expiresAt: r.expiresAt };
  }

  /** The signed-in operator, or undefined when there is no session. */
  async me(): Promise<Operator | undefined> {
    try {
      const r = await this.request<{ operator: Operator; csrfToken: string | null }>('GET', '/auth/me');
      this.csrf = r.csrfToken;
      return r.operator;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return undefined;
      throw err;
    }
  }

  /** Signs in (sets the session cookie). */
  async login(email: string, password: string): Promise<Operator> {
    const r = await this.request<{ operator: Operator; csrfToken: string }>('POST', '/auth/login', { email, password });
    this.csrf = r.csrfToken;
    return r.operator;
  }

  /** Signs out. */
  async logout(): Promise<void> {
    await this.request('POST', '/auth/logout').catch(() => undefined);
    this.csrf = null;
  }

  /** Every event with live status. */
  async events(signal?: AbortSignal): Promise<ConsoleEvent[]> {
    return (await this.request<{ events: ConsoleEvent[] }>('GET', '/console/events', undefined, signal)).events;
  }

  /** Recordings, newest first (admins). */
  async recordings(signal?: AbortSignal): Promise<ApiRecording[]> {
    return (await this.request<{ recordings: ApiRecording[] }>('GET', '/recordings', undefined, signal)).recordings;
  }

  /** The event's clips, newest first (admins). */
  async clips(eventId: string, signal?: AbortSignal): Promise<ApiClip[]> {
    return (await this.request<{ clips: ApiClip[] }>('GET', `/events/${encodeURIComponent(eventId)}/clips`, undefined, signal)).clips;
  }

  /** Makes a clip of the event's recording: a range (s into the broadcast) or the last `lastSec` seconds (admins). */
  async createClip(eventId: string, range: { startSec: number; endSec: number } | { lastSec: number }): Promise<ApiClip> {
    return (await this.request<{ clip: ApiClip }>('POST', `/events/${encodeURIComponent(eventId)}/clips`, range)).clip;
  }

  /** Deletes a clip (admins); its recording stays. */
  async deleteClip(id: string): Promise<void> {
    await this.request<null>('DELETE', `/clips/${encodeURIComponent(id)}`);
  }

  /** Deletes a recording and its media (admins). */
  async deleteRecording(id: string): Promise<void> {
    await this.request<null>('DELETE', `/recordings/${encodeURIComponent(id)}`);
  }

  /** Changes an event's ladder preset (applies from its next go-live). */
  async setLadderPreset(id: string, ladderPreset: LadderPresetName): Promise<ConsoleEvent> {
    return (await this.request<{ event: ConsoleEvent }>('PATCH', `/events/${encodeURIComponent(id)}`, { ladderPreset })).event;
  }

  /** One event. */
  async event(id: string, signal?: AbortSignal): Promise<ConsoleEvent> {
    return (await this.request<{ event: ConsoleEvent }>('GET', `/events/${encodeURIComponent(id)}`, undefined, signal)).event;
  }

  /** Creates an event (omitted settings: the server's defaults). */
  async createEvent(
    input: Pick<EventSettings, 'title'> & Partial<EventSettings> & { ladderPreset?: LadderPresetName },
  ): Promise<ConsoleEvent> {
    return (await this.request<{ event: ConsoleEvent }>('POST', '/events', input)).event;
  }

  /**
   * Changes an event's settings (only the fields given; null: the server's default). Part target, GOP and ladder
   * preset apply from its next go-live. 400 (a value out of range, with the rule) and 409 (slug taken) reject.
   */
  async updateEvent(id: string, patch: Partial<EventSettings>): Promise<ConsoleEvent> {
    return (await this.request<{ event: ConsoleEvent }>('PATCH', `/events/${encodeURIComponent(id)}`, patch)).event;
  }

  /** Live status at a glance. */
  async status(id: string, signal?: AbortSignal): Promise<EventStatusInfo> {
    return this.request<EventStatusInfo>('GET', `/events/${encodeURIComponent(id)}/status`, undefined, signal);
  }

  /** Reveals the stream key (once). */
  async revealKey(id: string): Promise<StreamKey> {
    return this.request<StreamKey>('POST', `/events/${encodeURIComponent(id)}/stream-key/reveal`);
  }

  /** Rotates the stream key; disconnects the publisher. */
  async rotateKey(id: string): Promise<StreamKey> {
    return this.request<StreamKey>('POST', `/events/${encodeURIComponent(id)}/stream-key/rotate`);
  }

  /** Ends the event. */
  async endEvent(id: string): Promise<ConsoleEvent> {
    return (await this.request<{ event: ConsoleEvent }>('POST', `/events/${encodeURIComponent(id)}/end`)).event;
  }

  /** Viewer counts of the last hour. */
  async viewerHistory(id: string, since?: number, signal?: AbortSignal): Promise<{ at: number; viewers: number }[]> {
    const q = since === undefined ? '' : `?since=${since}`;
    return (
      await this.request<{ samples: { at: number; viewers: number }[] }>(
        'GET',
        `/events/${encodeURIComponent(id)}/viewers${q}`,
        undefined,
        signal,
      )
    ).samples;
  }

  /** What viewers see now. */
  async overlays(id: string, signal?: AbortSignal): Promise<Overlays> {
    return this.request<Overlays>('GET', `/events/${encodeURIComponent(id)}/overlays`, undefined, signal);
  }

  /** Posts a news flash. */
  async postNewsFlash(id: string, input: { text: string; severity: Severity; durationSec: number }): Promise<NewsFlash> {
    return (await this.request<{ newsFlash: NewsFlash }>('POST', `/events/${encodeURIComponent(id)}/news-flashes`, input)).newsFlash;
  }

  /** Takes a news flash down. */
  async clearNewsFlash(id: string, flashId: string): Promise<void> {
    await this.request('DELETE', `/events/${encodeURIComponent(id)}/news-flashes/${encodeURIComponent(flashId)}`);
  }

  /** Sets the disclaimer. */
  async setDisclaimer(id: string, input: { text: string; severity: Severity }): Promise<Disclaimer> {
    return (await this.request<{ disclaimer: Disclaimer }>('PUT', `/events/${encodeURIComponent(id)}/disclaimer`, input)).disclaimer;
  }

  /** Clears the disclaimer. */
  async clearDisclaimer(id: string): Promise<void> {
    await this.request('DELETE', `/events/${encodeURIComponent(id)}/disclaimer`);
  }

  /** Starts an ad break now. */
  async startAdBreak(id: string, durationSec: number): Promise<AdBreak> {
    return (await this.request<{ adBreak: AdBreak }>('POST', `/events/${encodeURIComponent(id)}/ad-breaks`, { durationSec })).adBreak;
  }

  /** Ends the running ad break now. */
  async stopAdBreak(id: string, breakId: string): Promise<void> {
    await this.request('DELETE', `/events/${encodeURIComponent(id)}/ad-breaks/${encodeURIComponent(breakId)}`);
  }

  /** Visible comments after `after` (public REST history). */
  async comments(
    id: string,
    after: number,
    signal?: AbortSignal,
  ): Promise<{ comments: ConsoleComment[]; hasMore: boolean; nextAfter: number }> {
    return this.request('GET', `/events/${encodeURIComponent(id)}/comments?after=${after}&limit=200`, undefined, signal);
  }

  /**
   * The moderators' comment feed (every comment, hidden/deleted flagged, with the chat settings); falls back to the
   * public history when the server has no moderator feed.
   */
  async moderationComments(id: string, after: number, signal?: AbortSignal): Promise<ModerationFeedPage> {
    try {
      return await this.request<ModerationFeedPage>(
        'GET',
        `/events/${encodeURIComponent(id)}/moderation/comments?after=${after}&limit=200`,
        undefined,
        signal,
      );
    } catch (err) {
      // No moderator feed on this server (or no such event: then the public history answers 404 too).
      if (err instanceof ApiError && err.status === 404) return this.comments(id, after, signal);
      throw err;
    }
  }

  /** Applies a moderation action with the operator session. */
  async moderate(id: string, action: ModerationAction): Promise<unknown> {
    return this.request('POST', `/events/${encodeURIComponent(id)}/moderation`, action);
  }
}
