// Event page, admins: clips of the event's recording. "Clip last 30 s" and a range form (seconds into the
// broadcast) make one; the list links each clip's watch page and deletes it (confirmed in place). A clip is cut at
// segment (keyframe) boundaries, so it may be slightly longer than asked: the list shows where it was cut.
import { el } from './dom.ts';
import type { ApiClip } from '../../control/api-types.ts';
import { busy, button, card, duration, errorText, field, type ConsoleContext } from './console-ui.ts';
import { confirmable } from './console-confirm.ts';

const POLL_MS = 5000;

/** The clips card of event `eventId`. */
export function clipsCard(ctx: ConsoleContext, eventId: string): { root: HTMLElement; destroy(): void } {
  const last30 = button('Clip last 30 s', 'primary', { 'data-action': 'clip-last-30' });
  const startIn = el('input', {
    className: 'input',
    attrs: { name: 'clip-start', type: 'number', min: '0', step: '0.1', inputmode: 'decimal', required: '', placeholder: '0' },
  });
  const endIn = el('input', {
    className: 'input',
    attrs: { name: 'clip-end', type: 'number', min: '0', step: '0.1', inputmode: 'decimal', required: '', placeholder: '30' },
  });
  const make = el('button', { className: 'btn', text: 'Make clip', attrs: { type: 'submit', 'data-action': 'clip-range' } });
  const form = el('form', { className: 'compose clip-form' }, [
    el('div', { className: 'inline-fields' }, [field('From (s)', startIn), field('To (s)', endIn), make]),
  ]);
  const note = el('p', {
    className: 'field-hint',
    text: 'Seconds into the broadcast. Clips are cut at segment boundaries (keyframes), without re-encoding; deleting the recording deletes its clips.',
  });
  const status = el('p', { className: 'status', attrs: { 'data-role': 'clips-status' } });
  const list = el('ul', { className: 'console-clips', attrs: { 'aria-live': 'polite' } });
  const root = card('Clips', [el('div', { className: 'actions' }, [last30]), form, note, status, list], 'clips-card');
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const aborter = new AbortController();

  const row = (c: ApiClip): HTMLElement => {
    const del = button('Delete', 'quiet', { 'data-action': 'delete-clip' });
    return el('li', { className: 'event-row', attrs: { 'data-id': c.id } }, [
      el('div', { className: 'event-row-main' }, [
        el('a', { className: 'event-row-title', text: c.title, attrs: { href: c.watchUrl, target: '_blank', rel: 'noopener' } }),
        el('span', {
          className: 'event-row-meta',
          text: `${duration(c.durationSec)} · ${c.startSec.toFixed(1)}–${c.endSec.toFixed(1)} s · ${new Date(c.createdAt).toLocaleTimeString()}`,
        }),
      ]),
      confirmable(del, 'Delete this clip? Its recording stays.', 'Delete', async () => {
        await ctx.api.deleteClip(c.id);
        ctx.toast('Clip deleted.');
        await load(false);
      }),
    ]);
  };

  const load = async (again = true): Promise<void> => {
    clearTimeout(timer);
    try {
      const clips = await ctx.api.clips(eventId, aborter.signal);
      list.replaceChildren(...clips.map(row));
      status.textContent = clips.length === 0 ? 'No clips yet.' : '';
    } catch (err) {
      if (stopped) return;
      status.textContent = `Cannot load clips: ${errorText(err)} — retrying…`;
    }
    if (again && !stopped) timer = setTimeout(() => void load(), POLL_MS);
  };
  const created = async (c: ApiClip): Promise<void> => {
    ctx.toast(`Clip made: ${duration(c.durationSec)}.`);
    await load();
  };
  last30.addEventListener('click', () => {
    void busy(ctx, last30, async () => created(await ctx.api.createClip(eventId, { lastSec: 30 })));
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const startSec = Number(startIn.value);
    const endSec = Number(endIn.value);
    if (startIn.value === '' || endIn.value === '' || !(endSec > startSec)) return ctx.toast('Give a range: “To” after “From”.', 'error');
    void busy(ctx, make, async () => created(await ctx.api.createClip(eventId, { startSec, endSec })));
  });
  void load();
  return {
    root,
    destroy() {
      stopped = true;
      aborter.abort();
      clearTimeout(timer);
    },
  };
}
