// Event page of the console: status header with end stream, muted preview player (console-preview.ts), health and viewer charts,
// OBS setup, settings and clips (admins), on-screen messages, ad break and chat moderation. The status is polled; charts stream over SSE.
// In cluster mode the header also shows where the live event runs (ingest node, origins, epoch).
import { el } from './dom.ts';
import { ApiError } from './api.ts';
import {
  LADDER_PRESET_OPTIONS,
  describeLatencyTuning,
  type ConsoleEvent,
  type EventStatusInfo,
  type LadderPresetName,
} from './console-api.ts';
import { preview } from './console-preview.ts';
import { confirmable } from './console-confirm.ts';
import { obsCard } from './console-obs.ts';
import { healthCard } from './console-health.ts';
import { moderationCard } from './console-moderation.ts';
import { onScreenCards } from './console-onscreen.ts';
import { clipsCard } from './console-clips.ts';
import { changedSettings, eventFields } from './console-event-fields.ts';
import { busy, button, card, duration, errorText, field, select, statusBadge, type ConsoleContext, type Unmount } from './console-ui.ts';

/** Status poll period. */
const STATUS_POLL_MS = 2000;

/** Mounts the page of event `id` into `root`. */
export function mountEventPage(root: HTMLElement, ctx: ConsoleContext, id: string): Unmount {
  const aborter = new AbortController();
  let stopped = false;
  let cleanup: (() => void)[] = [];
  root.replaceChildren(el('p', { className: 'empty', text: 'Loading event…' }));

  ctx.api.event(id, aborter.signal).then(
    (event) => {
      if (!stopped) cleanup = build(root, ctx, event);
    },
    (err: unknown) => {
      if (stopped) return;
      const back = el('a', { className: 'btn btn-quiet', text: '← All events', attrs: { href: '/console' } });
      const msg = err instanceof ApiError && err.status === 404 ? 'There is no such event.' : `Cannot load the event: ${errorText(err)}`;
      root.replaceChildren(el('p', { className: 'form-error', text: msg }), back);
    },
  );
  return () => {
    stopped = true;
    aborter.abort();
    for (const c of cleanup) c();
  };
}

function build(root: HTMLElement, ctx: ConsoleContext, event: ConsoleEvent): (() => void)[] {
  const isAdmin = ctx.operator.role === 'admin';
  document.title = `${event.title} — onair console`;

  // Header: back, title, status, watch link, end stream.
  const badge = el('span', { className: 'badge-slot' }, [statusBadge(event.status)]);
  const since = el('span', { className: 'since' });
  const viewersNow = el('span', { className: 'viewers-now', attrs: { 'data-role': 'viewers' } });
  const placement = el('div', { className: 'event-placement', attrs: { 'data-role': 'placement' } });
  placement.hidden = true;
  // Why the last publisher was disconnected: a source the origin cannot use (its codec, no media).
  const refusal = el('p', { className: 'source-refusal', attrs: { role: 'alert', 'data-role': 'source-refusal' } });
  const showRefusal = (r: ConsoleEvent['sourceRefusal']): void => {
    refusal.hidden = r === null;
    refusal.textContent = r === null ? '' : `Publisher refused ${new Date(r.at).toLocaleTimeString()}: ${r.reason}`;
  };
  showRefusal(event.sourceRefusal);
  const watch = el('a', {
    className: 'btn btn-quiet',
    text: 'Open viewer page ↗',
    attrs: { href: event.watchUrl, target: '_blank', rel: 'noopener' },
  });
  const endBtn = button('End stream…', 'danger', { 'data-action': 'end' });
  const end = confirmable(
    endBtn,
    'End the event for good? The publisher is disconnected and the key stops working.',
    'End stream',
    async () => {
      try {
        await ctx.api.endEvent(event.id);
        ctx.toast('The event has ended.');
        await pollStatus();
      } catch (err) {
        ctx.toast(errorText(err), 'error');
      }
    },
  );
  const heading = el('h1', { text: event.title });
  const header = el('div', { className: 'event-head' }, [
    el('a', { className: 'back', text: '← Events', attrs: { href: '/console' } }),
    el('div', { className: 'event-head-main' }, [
      heading,
      el('div', { className: 'event-head-meta' }, [badge, since, viewersNow]),
      placement,
      refusal,
    ]),
    el('div', { className: 'actions' }, [watch, ...(isAdmin ? [end] : [])]),
  ]);

  // Preview: LL-HLS, or real time over WHEP where the server offers it.
  const pv = preview(ctx, event.id, event.hlsUrl);

  const obs = obsCard(ctx, event);
  // Renditions (ladder preset): admins change it; it applies from the event's next go-live.
  const presetSelect = select([['', 'Server default'], ...LADDER_PRESET_OPTIONS], { name: 'ladderPreset' });
  presetSelect.value = event.ladderPreset ?? '';
  const presetSave = button('Save', 'primary', { 'data-role': 'save-ladder' });
  presetSave.disabled = true;
  presetSelect.addEventListener(
    'change',
    () => (presetSave.disabled = presetSelect.value === (event.ladderPreset ?? '') || !presetSelect.value),
  );
  presetSave.addEventListener('click', () => {
    void busy(ctx, presetSave, async () => {
      const updated = await ctx.api.setLadderPreset(event.id, presetSelect.value as LadderPresetName);
      event.ladderPreset = updated.ladderPreset;
      presetSave.disabled = true;
      ctx.toast('Renditions saved: they apply from the next go-live.');
    });
  });
  // Part target and GOP (set at creation or in the Settings card): shown, fixed for a live stream.
  const tuning = el('p', {
    className: 'note',
    text: `Latency tuning: ${describeLatencyTuning(event)}.`,
    attrs: { 'data-role': 'latency-tuning' },
  });
  const presetCard = card(
    'Renditions',
    [field('Ladder preset', presetSelect, 'Applies from the next go-live.'), ...(isAdmin ? [presetSave] : []), tuning],
    'ladder-card',
  );
  presetSelect.disabled = !isAdmin;

  /** Admins' Settings card: the create form's fields, saved as one PATCH of the changed ones; API errors shown in it. */
  function settingsCard(): HTMLElement {
    const f = eventFields(event);
    const error = el('p', { className: 'form-error', attrs: { role: 'alert', 'data-role': 'settings-error' } });
    const save = el('button', {
      className: 'btn btn-primary',
      text: 'Save settings',
      attrs: { type: 'submit', 'data-role': 'save-settings' },
    });
    // No browser validation: the API checks the values and its message says what fits.
    const form = el('form', { className: 'settings-form', attrs: { novalidate: '' } }, [
      ...f.fields,
      el('p', { className: 'note', text: 'Latency tuning and the ladder preset apply from the next go-live.' }),
      error,
      save,
    ]);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const patch = changedSettings(event, f.read());
      error.textContent = '';
      if (Object.keys(patch).length === 0) return ctx.toast('Nothing to save.');
      save.disabled = true;
      ctx.api
        .updateEvent(event.id, patch)
        .then(
          (updated) => {
            Object.assign(event, updated);
            heading.textContent = updated.title;
            document.title = `${updated.title} — onair console`;
            description.textContent = updated.description;
            tuning.textContent = `Latency tuning: ${describeLatencyTuning(updated)}.`;
            ctx.toast('Settings saved.');
          },
          (err: unknown) => (error.textContent = errorText(err)),
        )
        .finally(() => (save.disabled = false));
    });
    return card('Settings', [form], 'settings-card');
  }
  const health = healthCard(ctx, event.id);
  const mod = moderationCard(ctx, event.id);
  const onscreen = onScreenCards(ctx, event.id);
  // Clips need the recordings, which are admins' (the API refuses the others).
  const clips = isAdmin ? clipsCard(ctx, event.id) : undefined;
  const description = el('p', { className: 'note', text: event.description });
  const settings = isAdmin ? settingsCard() : undefined;

  root.replaceChildren(
    el('div', { className: 'event-page', attrs: { 'data-event-id': event.id } }, [
      header,
      el('div', { className: 'event-grid' }, [
        el('div', { className: 'col col-main' }, [card('Preview', [pv.root, description], 'preview-card'), health.root, mod.root]),
        el('div', { className: 'col col-side' }, [
          obs.root,
          ...(settings ? [settings] : []),
          presetCard,
          ...(clips ? [clips.root] : []),
          onscreen.ads,
          onscreen.news,
        ]),
      ]),
    ]),
  );

  let status: EventStatusInfo['status'] = event.status;
  let liveSince: number | null = event.liveSince;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const aborter = new AbortController();
  const apply = (s: EventStatusInfo): void => {
    status = s.status;
    liveSince = s.liveSince;
    badge.replaceChildren(statusBadge(s.status, s.publishing));
    document.body.dataset.eventStatus = s.status;
    viewersNow.textContent = s.viewers === null || s.status !== 'live' ? '' : `${s.viewers} watching`;
    health.viewers(s.viewers);
    health.root.dataset.status = s.status;
    obs.update(s.status);
    onscreen.update(s.status);
    endBtn.disabled = s.status === 'ended';
    showPlacement(s.status === 'live' ? s.placement : undefined);
    showRefusal(s.sourceRefusal);
    pv.update(s.status);
    tickSince();
  };
  /** Cluster mode: ingest, origins (primary first; admins see each origin's URL on hover) and epoch. */
  const showPlacement = (p: EventStatusInfo['placement']): void => {
    placement.hidden = !p;
    if (!p) return placement.replaceChildren();
    const last = p.origins.length - 1;
    const origins = p.origins.map((o, i) => {
      const text = (i === 0 ? `${o.id} (primary)` : o.id) + (i < last ? ',' : '');
      return el('span', { className: 'placement-origin', text, attrs: o.url ? { title: o.url } : {} });
    });
    const parts: Node[] = [
      el('span', { text: `ingest ${p.ingest} ·` }),
      el('span', { text: p.origins.length === 1 ? 'origin' : 'origins' }),
      ...origins,
      el('span', { text: '·' }),
      el('span', { text: `epoch ${p.epoch}`, attrs: { 'data-role': 'placement-epoch' } }),
    ];
    // Spaces as text, so the line reads (and copies) as one sentence.
    placement.replaceChildren(...parts.flatMap((n, i) => (i === 0 ? [n] : [document.createTextNode(' '), n])));
    placement.dataset.epoch = String(p.epoch);
  };
  const tickSince = (): void => {
    since.textContent = status === 'live' && liveSince !== null ? `on air ${duration((Date.now() - liveSince) / 1000)}` : '';
  };
  async function pollStatus(): Promise<void> {
    clearTimeout(timer);
    try {
      apply(await ctx.api.status(event.id, aborter.signal));
    } catch (err) {
      if (!stopped && !(err instanceof ApiError && err.status === 401)) ctx.toast(`Status unavailable: ${errorText(err)}`, 'error');
    }
    if (!stopped) timer = setTimeout(() => void pollStatus(), STATUS_POLL_MS);
  }
  void pollStatus();
  const sinceTimer = setInterval(tickSince, 1000);

  return [
    () => {
      stopped = true;
      aborter.abort();
      clearTimeout(timer);
      clearInterval(sinceTimer);
      pv.destroy();
      health.destroy();
      mod.destroy();
      onscreen.destroy();
      clips?.destroy();
      delete document.body.dataset.eventStatus;
      document.title = 'onair console';
    },
  ];
}
