// Console home, admins: every recording with its status (a failed one says why), duration and size, a download link
// (one MP4, remuxed by the server) and delete (confirmed in place). Polled like the events list.
import { el } from './dom.ts';
import type { ApiRecording } from '../../control/api-types.ts';
import { button, card, duration, errorText, type ConsoleContext, type Unmount } from './console-ui.ts';
import { confirmable } from './console-confirm.ts';
import { thumbnail } from './event-list.ts';

const POLL_MS = 5000;

function size(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Mounts the recordings card at the end of `root` (admins only: the API refuses the others). */
export function mountRecordings(root: HTMLElement, ctx: ConsoleContext): Unmount {
  const list = el('ul', { className: 'console-recordings', attrs: { 'aria-live': 'polite' } });
  const status = el('p', { className: 'status' });
  root.append(card('Recordings', [status, list], 'recordings-card'));
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const aborter = new AbortController();

  const row = (r: ApiRecording): HTMLElement => {
    const meta = [new Date(r.startedAt).toLocaleString(), r.status === 'recording' ? 'recording…' : duration(r.durationSec), size(r.bytes)];
    const children: Node[] = [
      thumbnail(r.posterUrl, 'event-row-thumb'),
      el('span', {
        className: `badge badge-${r.status === 'failed' ? 'offline' : r.status === 'recording' ? 'live' : 'ended'}`,
        text: r.status,
      }),
      el('div', { className: 'event-row-main' }, [
        el('a', { className: 'event-row-title', text: r.eventId, attrs: { href: `/console/events/${encodeURIComponent(r.eventId)}` } }),
        el('span', { className: 'event-row-meta', text: meta.join(' · ') }),
        ...(r.failure ? [el('span', { className: 'form-error', text: r.failure })] : []),
      ]),
    ];
    if (r.status !== 'recording') {
      children.push(el('a', { className: 'btn btn-quiet', text: 'Download MP4', attrs: { href: r.downloadUrl, download: `${r.id}.mp4` } }));
      children.push(
        el('a', { className: 'btn btn-quiet', text: 'Seek previews', attrs: { href: r.previewUrl, target: '_blank', rel: 'noopener' } }),
      );
      const del = button('Delete', 'quiet', { 'data-action': 'delete-recording' });
      children.push(
        confirmable(del, 'Delete this recording and its media?', 'Delete', async () => {
          await ctx.api.deleteRecording(r.id);
          ctx.toast('Recording deleted.');
          await load(false);
        }),
      );
    }
    return el('li', { className: 'event-row', attrs: { 'data-id': r.id, 'data-status': r.status } }, children);
  };

  const load = async (again = true): Promise<void> => {
    try {
      const recordings = await ctx.api.recordings(aborter.signal);
      list.replaceChildren(...recordings.map(row));
      status.textContent = recordings.length === 0 ? 'No recordings yet: every broadcast is recorded unless its event says otherwise.' : '';
    } catch (err) {
      if (stopped) return;
      status.textContent = `Cannot load recordings: ${errorText(err)} — retrying…`;
    }
    if (again && !stopped) timer = setTimeout(() => void load(), POLL_MS);
  };
  void load();

  return () => {
    stopped = true;
    aborter.abort();
    clearTimeout(timer);
  };
}
