// What the viewer page shows on top of the video (news flashes, disclaimer, ad break): WebSocket signals when the
// chat connection carries them, and the public overlays GET polled as a fallback and for late joiners.

/** A news flash as viewers see it. */
export interface NewsFlashView {
  id: string;
  text: string;
  severity: 'info' | 'warning' | 'critical';
  at: number;
  expiresAt: number;
}

/** The disclaimer (stays until cleared). */
export interface DisclaimerView {
  id: string;
  text: string;
  severity: 'info' | 'warning' | 'critical';
  at: number;
}

/** An ad break; it runs until `startAt + durationSec` (server clock). */
export interface AdBreakView {
  id: string;
  startAt: number;
  durationSec: number;
  creativeUrl: string | null;
}

/** Everything on screen, in server time. */
export interface OverlayState {
  newsFlashes: NewsFlashView[];
  disclaimer: DisclaimerView | null;
  adBreak: AdBreakView | null;
  /** Server clock minus local clock (ms). */
  skewMs: number;
}

/** True when an ad creative URL looks like a video file (otherwise it is shown as an image). */
export function isVideoCreative(url: string): boolean {
  return /\.(mp4|webm|ogv|mov|m4v)(\?|#|$)/i.test(url);
}

/** Poll period while no WebSocket signals arrive. */
const POLL_MS = 2000;
/** Poll period once the WebSocket carries signals (a safety net only). */
const POLL_WITH_WS_MS = 15_000;
/** Remembered cleared/ended ids (so a stale poll answer does not bring them back). */
const MAX_GONE = 200;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function asFlash(v: unknown): NewsFlashView | undefined {
  if (!isObj(v) || typeof v.id !== 'string' || typeof v.text !== 'string' || typeof v.expiresAt !== 'number') return undefined;
  const severity = v.severity === 'warning' || v.severity === 'critical' ? v.severity : 'info';
  return { id: v.id, text: v.text, severity, at: typeof v.at === 'number' ? v.at : 0, expiresAt: v.expiresAt };
}

function asDisclaimer(v: unknown): DisclaimerView | null {
  if (!isObj(v) || typeof v.id !== 'string' || typeof v.text !== 'string') return null;
  const severity = v.severity === 'warning' || v.severity === 'critical' ? v.severity : 'info';
  return { id: v.id, text: v.text, severity, at: typeof v.at === 'number' ? v.at : 0 };
}

function asAdBreak(v: unknown): AdBreakView | null {
  if (!isObj(v) || typeof v.id !== 'string' || typeof v.startAt !== 'number' || typeof v.durationSec !== 'number') return null;
  return {
    id: v.id,
    startAt: v.startAt,
    durationSec: v.durationSec,
    creativeUrl: typeof v.creativeUrl === 'string' ? v.creativeUrl : null,
  };
}

/** Keeps the overlay state of one event and reports every change. */
export class OverlayFeed {
  private flashes = new Map<string, NewsFlashView>();
  private disclaimer: DisclaimerView | null = null;
  private adBreak: AdBreakView | null = null;
  private skewMs = 0;
  private readonly gone = new Set<string>();
  /** Local time of the last WebSocket signal that changed something (newer than a poll that started before it). */
  private lastSignalAt = 0;
  private wsCarriesSignals = false;
  private lastStatus: string | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;
  private aborter = new AbortController();

  constructor(
    private readonly eventId: string,
    private readonly onChange: (state: OverlayState) => void,
    /** Called when a signal says the event status changed (e.g. ended). */
    private readonly onStatus: (status: string) => void = () => undefined,
  ) {}

  /** Starts polling. */
  start(): void {
    this.stopped = false;
    void this.poll();
  }

  /** Stops polling. */
  stop(): void {
    this.stopped = true;
    this.aborter.abort();
    clearTimeout(this.timer);
  }

  /** The current state (news flashes past their end are left out). */
  state(now = Date.now()): OverlayState {
    const serverNow = now + this.skewMs;
    const newsFlashes = [...this.flashes.values()].filter((f) => f.expiresAt > serverNow).sort((a, b) => b.at - a.at);
    const ad = this.adBreak;
    const adBreak = ad !== null && serverNow >= ad.startAt - 1000 && serverNow < ad.startAt + ad.durationSec * 1000 ? ad : null;
    return { newsFlashes, disclaimer: this.disclaimer, adBreak, skewMs: this.skewMs };
  }

  /**
   * Applies one WebSocket message (docs/protocol.md): `welcome.overlays`, an `overlays` snapshot, `batch.signals`
   * (or a lone `{"type":"signal",…}`); returns true when it carried overlay state.
   */
  applyMessage(m: Record<string, unknown>): boolean {
    if (m.type === 'welcome') {
      if (!isObj(m.overlays)) return false;
      this.wsCarriesSignals = true;
      this.applySnapshot(m.overlays, Infinity);
      return true;
    }
    if (m.type === 'overlays') {
      this.applySnapshot(m, Infinity);
      return true;
    }
    if (m.type === 'batch') {
      if (!Array.isArray(m.signals)) return false;
      for (const s of m.signals) if (isObj(s)) this.applySignal(s);
      return true;
    }
    return m.type === 'signal' ? this.applySignal(m) : false;
  }

  /** Applies one signal (`{"signal": …}`, docs/protocol.md §4); returns true when it was one. */
  private applySignal(body: Record<string, unknown>): boolean {
    // `remainingSec` (computed by the edge) beats our idea of the server clock.
    const endsIn = (v: unknown): number | undefined =>
      isObj(v) && typeof v.remainingSec === 'number' ? Date.now() + this.skewMs + v.remainingSec * 1000 : undefined;
    switch (body.signal) {
      case 'news_flash': {
        const f = asFlash(body.flash);
        const end = endsIn(body.flash);
        if (f !== undefined && end !== undefined) f.expiresAt = end;
        if (f !== undefined && !this.gone.has(f.id)) this.flashes.set(f.id, f);
        break;
      }
      case 'news_flash_cleared':
        if (typeof body.id === 'string') this.forget(body.id, () => this.flashes.delete(body.id as string));
        break;
      case 'disclaimer':
        this.disclaimer = asDisclaimer(body.disclaimer);
        break;
      case 'disclaimer_cleared':
        this.disclaimer = null;
        break;
      case 'ad_break_start': {
        const ad = asAdBreak(body.adBreak);
        const end = endsIn(body.adBreak);
        if (ad !== null && end !== undefined) ad.durationSec = (end - ad.startAt) / 1000;
        if (ad !== null && !this.gone.has(ad.id)) this.adBreak = ad;
        break;
      }
      case 'ad_break_end':
        if (typeof body.id === 'string') this.forget(body.id, () => this.adBreak?.id === body.id && (this.adBreak = null));
        else this.adBreak = null;
        break;
      case 'event_status':
        if (typeof body.status === 'string') this.statusSeen(body.status);
        return true;
      default:
        return false;
    }
    this.wsCarriesSignals = true;
    this.lastSignalAt = Date.now();
    this.emit();
    return true;
  }

  /** Reports an event status once per change. */
  private statusSeen(status: string): void {
    if (status === this.lastStatus) return;
    const first = this.lastStatus === undefined;
    this.lastStatus = status;
    if (!first) this.onStatus(status);
  }

  private forget(id: string, drop: () => unknown): void {
    this.gone.add(id);
    if (this.gone.size > MAX_GONE) this.gone.delete(this.gone.values().next().value as string);
    drop();
  }

  private applySnapshot(o: Record<string, unknown>, requestedAt: number): void {
    if (typeof o.serverTime === 'number') this.skewMs = o.serverTime - Date.now();
    if (typeof o.eventStatus === 'string') this.statusSeen(o.eventStatus);
    // A signal that arrived after this snapshot was requested is newer: keep what it said.
    if (this.lastSignalAt > requestedAt) return;
    const flashes = Array.isArray(o.newsFlashes) ? o.newsFlashes.map(asFlash).filter((f): f is NewsFlashView => f !== undefined) : [];
    this.flashes = new Map(flashes.filter((f) => !this.gone.has(f.id)).map((f) => [f.id, f]));
    this.disclaimer = asDisclaimer(o.disclaimer);
    const ad = asAdBreak(o.adBreak);
    if (ad !== null && isObj(o.adBreak) && typeof o.adBreak.remainingSec === 'number' && typeof o.serverTime === 'number') {
      // Trust the server's remaining time over start + duration (a break ended early has less left).
      const endAt = o.serverTime + o.adBreak.remainingSec * 1000;
      ad.durationSec = (endAt - ad.startAt) / 1000;
    }
    this.adBreak = ad !== null && !this.gone.has(ad.id) ? ad : null;
    this.emit();
  }

  private emit(): void {
    this.onChange(this.state());
  }

  private async poll(): Promise<void> {
    const requestedAt = Date.now();
    try {
      const res = await fetch(`/api/v1/events/${encodeURIComponent(this.eventId)}/overlays`, {
        cache: 'no-store',
        signal: this.aborter.signal,
      });
      if (res.ok) this.applySnapshot((await res.json()) as Record<string, unknown>, requestedAt);
    } catch {
      /* retried at the next poll */
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.poll(), this.wsCarriesSignals ? POLL_WITH_WS_MS : POLL_MS);
  }
}
