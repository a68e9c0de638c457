// Renders the overlay state on the viewer page: news flash banners over the video (severity-coloured, hidden at
// their end), the disclaimer bar under it (until the operator clears it), and the ad break overlay with the ad
// creative (image or video, or a slate) and a countdown; the live stream is muted behind it and comes back at its end.
import { el } from './dom.ts';
import { isVideoCreative, type AdBreakView, type OverlayState } from './overlay-feed.ts';
import './viewer-overlays.css';

/** Redraw period of countdowns and expiries. */
const TICK_MS = 250;

/** `0:27` */
function mmss(sec: number): string {
  const s = Math.max(0, Math.ceil(sec));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Drives the three overlay elements of the watch page. */
export class ViewerOverlays {
  private state: OverlayState = { newsFlashes: [], disclaimer: null, adBreak: null, skewMs: 0 };
  private readonly dismissed = new Set<string>();
  private readonly tick: ReturnType<typeof setInterval>;
  private adId: string | undefined;
  private mutedByAd = false;
  private readonly countdown: HTMLElement;
  private readonly creative: HTMLElement;

  constructor(
    private readonly news: HTMLElement,
    private readonly disclaimer: HTMLElement,
    private readonly ad: HTMLElement,
    private readonly video: HTMLVideoElement,
  ) {
    this.countdown = el('p', { className: 'ad-countdown', attrs: { role: 'timer' } });
    this.creative = el('div', { className: 'ad-creative' });
    ad.replaceChildren(
      this.creative,
      el('div', { className: 'ad-bar' }, [el('span', { className: 'ad-label', text: 'Advertisement' }), this.countdown]),
    );
    ad.hidden = true;
    news.hidden = true;
    disclaimer.hidden = true;
    this.tick = setInterval(() => this.renderTimed(), TICK_MS);
  }

  /** Shows a new state. */
  update(state: OverlayState): void {
    this.state = state;
    this.renderDisclaimer();
    this.renderTimed();
  }

  /** Stops the timers and clears the overlays. */
  destroy(): void {
    clearInterval(this.tick);
    this.endAd();
    this.news.replaceChildren();
    this.disclaimer.replaceChildren();
  }

  private serverNow(): number {
    return Date.now() + this.state.skewMs;
  }

  private renderDisclaimer(): void {
    const d = this.state.disclaimer;
    this.disclaimer.hidden = d === null;
    if (d === null) {
      this.disclaimer.replaceChildren();
      delete this.disclaimer.dataset.id;
      return;
    }
    if (this.disclaimer.dataset.id === d.id && this.disclaimer.textContent === d.text) return;
    this.disclaimer.dataset.id = d.id;
    this.disclaimer.dataset.severity = d.severity;
    this.disclaimer.replaceChildren(
      el('span', { className: 'disclaimer-icon', text: d.severity === 'info' ? 'ℹ' : '⚠', attrs: { 'aria-hidden': 'true' } }),
      el('span', { className: 'disclaimer-text', text: d.text }),
    );
  }

  private renderTimed(): void {
    const now = this.serverNow();
    // News flashes: newest first, at most two on screen.
    const flashes = this.state.newsFlashes.filter((f) => f.expiresAt > now && !this.dismissed.has(f.id)).slice(0, 2);
    const shownIds = flashes.map((f) => f.id).join(',');
    if (this.news.dataset.ids !== shownIds) {
      this.news.dataset.ids = shownIds;
      this.news.replaceChildren(
        ...flashes.map((f) => {
          const close = el('button', { className: 'news-close', text: '×', attrs: { type: 'button', 'aria-label': 'Dismiss' } });
          close.addEventListener('click', () => {
            this.dismissed.add(f.id);
            this.renderTimed();
          });
          return el(
            'div',
            { className: `news-flash sev-${f.severity}`, attrs: { role: 'alert', 'data-id': f.id, 'data-severity': f.severity } },
            [
              el('span', {
                className: 'news-tag',
                text: f.severity === 'critical' ? 'Breaking' : f.severity === 'warning' ? 'Alert' : 'News',
              }),
              el('span', { className: 'news-text', text: f.text }),
              close,
            ],
          );
        }),
      );
      this.news.hidden = flashes.length === 0;
    }
    // Ad break.
    const ad = this.state.adBreak;
    const end = ad === null ? 0 : ad.startAt + ad.durationSec * 1000;
    if (ad !== null && now >= ad.startAt - 500 && now < end) {
      if (this.adId !== ad.id) this.startAd(ad);
      const left = (end - now) / 1000;
      this.countdown.textContent = `Back to the broadcast in ${mmss(left)}`;
      this.ad.dataset.remaining = String(Math.ceil(left));
    } else if (this.adId !== undefined) {
      this.endAd();
    }
  }

  private startAd(ad: AdBreakView): void {
    this.adId = ad.id;
    this.ad.dataset.id = ad.id;
    this.ad.hidden = false;
    document.body.dataset.adBreak = 'on';
    const slate = (): HTMLElement =>
      el('div', { className: 'ad-slate' }, [
        el('p', { className: 'ad-slate-title', text: 'We’ll be right back' }),
        el('p', { className: 'ad-slate-sub', text: 'The broadcast continues after this short break.' }),
      ]);
    let media: HTMLElement;
    if (ad.creativeUrl === null) {
      media = slate();
      this.ad.dataset.creative = 'slate';
    } else if (isVideoCreative(ad.creativeUrl)) {
      const v = el('video', { className: 'ad-media', attrs: { playsinline: '', autoplay: '', loop: '', muted: '' } });
      v.muted = true;
      v.src = ad.creativeUrl;
      v.addEventListener('error', () => v.replaceWith(slate()));
      void v.play().catch(() => undefined);
      media = v;
      this.ad.dataset.creative = 'video';
    } else {
      const img = el('img', { className: 'ad-media', attrs: { alt: 'Advertisement', src: ad.creativeUrl } });
      img.addEventListener('error', () => {
        img.replaceWith(slate());
        this.ad.dataset.creative = 'slate';
      });
      media = img;
      this.ad.dataset.creative = 'image';
    }
    this.creative.replaceChildren(media);
    // The live stream keeps playing underneath (so it is there at once at the end), muted.
    if (!this.video.muted) {
      this.video.muted = true;
      this.mutedByAd = true;
    }
  }

  private endAd(): void {
    this.adId = undefined;
    this.ad.hidden = true;
    delete this.ad.dataset.id;
    delete this.ad.dataset.remaining;
    delete document.body.dataset.adBreak;
    this.creative.replaceChildren();
    if (this.mutedByAd) {
      this.video.muted = false;
      this.mutedByAd = false;
    }
  }
}
