// Console home: every event with its live status (polled), and the form that creates one.
import { el } from './dom.ts';
import { thumbnail } from './event-list.ts';
import { LADDER_PRESET_OPTIONS, type ConsoleEvent, type LadderPresetName } from './console-api.ts';
import { eventFields } from './console-event-fields.ts';
import { mountRecordings } from './console-recordings.ts';
import { busy, card, errorText, field, select, statusBadge, type ConsoleContext, type Unmount } from './console-ui.ts';

/** Status poll period of the list. */
const POLL_MS = 3000;

const ORDER: Record<string, number> = { live: 0, offline: 1, idle: 2, ended: 3 };

/** Mounts the events list into `root`. */
export function mountEventList(root: HTMLElement, ctx: ConsoleContext): Unmount {
  const list = el('ul', { className: 'console-events', attrs: { 'aria-live': 'polite' } });
  const status = el('p', { className: 'status' });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const aborter = new AbortController();

  const f = eventFields();
  const ladder = select([['', 'Server default'], ...LADDER_PRESET_OPTIONS], { name: 'ladderPreset' });
  const create = el('button', { className: 'btn btn-primary', text: 'Create event', attrs: { type: 'submit' } });
  // Renditions after the recording fields, as before: the shared fields end with the latency tuning.
  const form = el('form', { className: 'create-form' }, [
    ...f.fields.slice(0, -1),
    field('Renditions', ladder),
    ...f.fields.slice(-1),
    create,
  ]);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void busy(ctx, create, async () => {
      const ev = await ctx.api.createEvent({
        ...f.read(),
        ...(ladder.value ? { ladderPreset: ladder.value as LadderPresetName } : {}),
      });
      ctx.toast(`Event “${ev.title}” created.`);
      ctx.navigate(`/console/events/${encodeURIComponent(ev.id)}`);
    });
  });
  if (ctx.operator.role !== 'admin') form.replaceChildren(el('p', { className: 'empty', text: 'Only admins create events.' }));

  const home = el('div', { className: 'console-home' }, [
    card('Events', [status, list], 'events-card'),
    card('New event', [form], 'create-card'),
  ]);
  root.replaceChildren(home);
  const unmountRecordings = ctx.operator.role === 'admin' ? mountRecordings(home, ctx) : undefined;

  const row = (e: ConsoleEvent): HTMLElement => {
    const link = el('a', { className: 'event-row-title', text: e.title, attrs: { href: `/console/events/${encodeURIComponent(e.id)}` } });
    const meta: string[] = [];
    if (e.visibility === 'unlisted') meta.push('unlisted');
    if (e.status === 'live' && typeof e.viewers === 'number') meta.push(`${e.viewers} watching`);
    meta.push(`/watch/${e.slug}`);
    if (e.sourceRefusal) meta.push(`publisher refused: ${e.sourceRefusal.reason}`);
    const watch = el('a', {
      className: 'btn btn-quiet',
      text: 'Viewer page ↗',
      attrs: { href: e.watchUrl, target: '_blank', rel: 'noopener' },
    });
    return el('li', { className: 'event-row', attrs: { 'data-id': e.id, 'data-status': e.status } }, [
      thumbnail(e.thumbnailUrl, 'event-row-thumb'),
      statusBadge(e.status, e.publishing),
      el('div', { className: 'event-row-main' }, [link, el('span', { className: 'event-row-meta', text: meta.join(' · ') })]),
      watch,
    ]);
  };

  const load = async (): Promise<void> => {
    try {
      const events = await ctx.api.events(aborter.signal);
      events.sort((a, b) => (ORDER[a.status] ?? 9) - (ORDER[b.status] ?? 9) || b.createdAt - a.createdAt);
      list.replaceChildren(...events.map(row));
      status.textContent = events.length === 0 ? 'No events yet: create one to get a stream key.' : '';
    } catch (err) {
      if (stopped) return;
      status.textContent = `Cannot load events: ${errorText(err)} — retrying…`;
    }
    if (!stopped) timer = setTimeout(() => void load(), POLL_MS);
  };
  void load();
  if (ctx.operator.role === 'admin') f.title.focus();

  return () => {
    stopped = true;
    aborter.abort();
    clearTimeout(timer);
    unmountRecordings?.();
  };
}
