// "On screen" card of the event page: news flash composer with the active flashes, disclaimer set/clear, and the
// ad break button with its countdown. What viewers see is read back from the public overlays GET.
import { el } from './dom.ts';
import type { Overlays, Severity } from './console-api.ts';
import { busy, button, card, duration, errorText, field, select, type ConsoleContext } from './console-ui.ts';

/** Overlays poll period. */
const POLL_MS = 2000;

const SEVERITIES = [
  ['info', 'Info'],
  ['warning', 'Warning'],
  ['critical', 'Critical'],
] as const;

/** Builds the news flash / disclaimer card and the ad break card; `update` follows the event status. */
export function onScreenCards(
  ctx: ConsoleContext,
  eventId: string,
): { news: HTMLElement; ads: HTMLElement; update(status: string): void; destroy(): void } {
  const isAdmin = ctx.operator.role === 'admin';
  let overlays: Overlays | undefined;
  let skew = 0;
  let eventStatus = 'idle';

  // News flash composer.
  const flashText = el('textarea', {
    className: 'input',
    attrs: { name: 'flash-text', rows: '2', maxlength: '280', placeholder: 'Breaking: …' },
  });
  const flashSeverity = select(SEVERITIES, { name: 'flash-severity' });
  const flashDuration = select(
    [
      ['10', '10 s'],
      ['30', '30 s'],
      ['60', '1 min'],
      ['120', '2 min'],
      ['300', '5 min'],
      ['900', '15 min'],
    ],
    { name: 'flash-duration' },
  );
  flashDuration.value = '30';
  const flashPost = el('button', {
    className: 'btn btn-primary',
    text: 'Show news flash',
    attrs: { type: 'submit', 'data-action': 'post-flash' },
  });
  const flashForm = el('form', { className: 'compose' }, [
    field('News flash', flashText),
    el('div', { className: 'inline-fields' }, [field('Severity', flashSeverity), field('Shown for', flashDuration)]),
    flashPost,
  ]);
  flashForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = flashText.value.trim();
    if (text === '') return ctx.toast('Write the news flash first.', 'error');
    void busy(ctx, flashPost, async () => {
      await ctx.api.postNewsFlash(eventId, { text, severity: flashSeverity.value as Severity, durationSec: Number(flashDuration.value) });
      flashText.value = '';
      ctx.toast('News flash is on screen.');
      await refresh();
    });
  });
  const flashes = el('ul', { className: 'active-list', attrs: { 'aria-label': 'News flashes on screen' } });

  // Disclaimer.
  const discText = el('textarea', {
    className: 'input',
    attrs: { name: 'disclaimer-text', rows: '2', maxlength: '1000', placeholder: 'e.g. Contains flashing images.' },
  });
  const discSeverity = select(SEVERITIES, { name: 'disclaimer-severity' });
  const discSet = el('button', {
    className: 'btn btn-primary',
    text: 'Set disclaimer',
    attrs: { type: 'submit', 'data-action': 'set-disclaimer' },
  });
  const discClear = button('Clear', 'quiet', { 'data-action': 'clear-disclaimer' });
  const discNow = el('p', { className: 'note current-disclaimer' });
  const discForm = el('form', { className: 'compose' }, [
    field('Disclaimer (stays until cleared)', discText),
    el('div', { className: 'inline-fields' }, [field('Severity', discSeverity), el('div', { className: 'actions' }, [discSet, discClear])]),
    discNow,
  ]);
  discForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = discText.value.trim();
    if (text === '') return ctx.toast('Write the disclaimer first.', 'error');
    void busy(ctx, discSet, async () => {
      await ctx.api.setDisclaimer(eventId, { text, severity: discSeverity.value as Severity });
      ctx.toast('Disclaimer set.');
      await refresh();
    });
  });
  discClear.addEventListener('click', () => {
    void busy(ctx, discClear, async () => {
      await ctx.api.clearDisclaimer(eventId);
      ctx.toast('Disclaimer cleared.');
      await refresh();
    });
  });

  // Ad break.
  const adDuration = select(
    [
      ['15', '15 s'],
      ['30', '30 s'],
      ['60', '1 min'],
      ['90', '90 s'],
      ['120', '2 min'],
      ['180', '3 min'],
    ],
    { name: 'ad-duration', 'aria-label': 'Ad break length' },
  );
  adDuration.value = '30';
  const adStart = button('Start ad break', 'primary', { 'data-action': 'start-ad' });
  const adStop = button('End break now', 'quiet', { 'data-action': 'stop-ad' });
  const adCountdown = el('p', { className: 'ad-countdown', attrs: { role: 'timer', 'aria-live': 'off' } });
  const adNote = el('p', { className: 'note' });
  adStart.addEventListener('click', () => {
    void busy(ctx, adStart, async () => {
      await ctx.api.startAdBreak(eventId, Number(adDuration.value));
      ctx.toast('Ad break started.');
      await refresh();
    });
  });
  adStop.addEventListener('click', () => {
    const ad = overlays?.adBreak;
    if (!ad) return;
    void busy(ctx, adStop, async () => {
      await ctx.api.stopAdBreak(eventId, ad.id);
      ctx.toast('Ad break ended: back to the live stream.');
      await refresh();
    });
  });

  const renderAd = (): void => {
    const ad = overlays?.adBreak ?? null;
    const live = eventStatus === 'live';
    if (ad !== null) {
      const left = (ad.startAt + ad.durationSec * 1000 - (Date.now() + skew)) / 1000;
      adCountdown.textContent = `Ad break on air — ${duration(Math.ceil(Math.max(0, left)))} left`;
      adCountdown.dataset.remaining = String(Math.max(0, Math.ceil(left)));
      adCountdown.hidden = false;
      adStop.hidden = false;
      adStart.hidden = true;
    } else {
      adCountdown.hidden = true;
      delete adCountdown.dataset.remaining;
      adStop.hidden = true;
      adStart.hidden = false;
    }
    adStart.disabled = !live;
    adDuration.disabled = !live || ad !== null;
    adNote.textContent = live
      ? 'Viewers see the ad creative (or a slate) with a countdown, then the live stream again.'
      : 'Ad breaks can start while the event is live.';
  };

  const render = (): void => {
    const o = overlays;
    flashes.replaceChildren(
      ...(o?.newsFlashes ?? []).map((f) => {
        const down = button('Take down', 'quiet');
        down.addEventListener('click', () => {
          void busy(ctx, down, async () => {
            await ctx.api.clearNewsFlash(eventId, f.id);
            await refresh();
          });
        });
        const left = Math.max(0, Math.ceil((f.expiresAt - (Date.now() + skew)) / 1000));
        return el('li', { className: `active-item sev-${f.severity}`, attrs: { 'data-id': f.id } }, [
          el('span', { className: 'active-text', text: f.text }),
          el('span', { className: 'active-meta', text: `${duration(left)} left` }),
          ...(isAdmin ? [down] : []),
        ]);
      }),
    );
    flashes.hidden = flashes.children.length === 0;
    const d = o?.disclaimer ?? null;
    discNow.textContent = d === null ? 'No disclaimer on screen.' : `On screen now: “${d.text}”`;
    discClear.disabled = d === null;
    renderAd();
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const aborter = new AbortController();
  async function refresh(): Promise<void> {
    try {
      overlays = await ctx.api.overlays(eventId, aborter.signal);
      skew = overlays.serverTime - Date.now();
      render();
    } catch (err) {
      if (!stopped) adNote.textContent = `Cannot read what viewers see: ${errorText(err)}`;
    }
  }
  const poll = async (): Promise<void> => {
    await refresh();
    if (!stopped) timer = setTimeout(() => void poll(), POLL_MS);
  };
  void poll();
  const tick = setInterval(renderAd, 500);

  const readOnly = (nodes: Node[]): Node[] =>
    isAdmin ? nodes : [el('p', { className: 'note', text: 'Only admins can change what is on screen.' })];
  const news = card('News flash & disclaimer', [...readOnly([flashForm]), flashes, ...readOnly([discForm])], 'onscreen-card');
  const ads = card(
    'Ad break',
    [...readOnly([el('div', { className: 'actions' }, [adDuration, adStart, adStop])]), adCountdown, adNote],
    'ad-card',
  );
  render();
  return {
    news,
    ads,
    update(status) {
      eventStatus = status;
      renderAd();
    },
    destroy() {
      stopped = true;
      aborter.abort();
      clearTimeout(timer);
      clearInterval(tick);
    },
  };
}
