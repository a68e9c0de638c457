// Renders the event list of the home page: live events first, then upcoming/offline ones.
import type { ApiEvent, ApiEventStatus } from '../../control/api-types.ts';
import { el } from './dom.ts';

const STATUS_LABEL: Record<ApiEventStatus, string> = {
  live: 'Live',
  idle: 'Upcoming',
  offline: 'Offline',
  ended: 'Ended',
};

/** Orders events for display: live (newest first), then idle/offline (newest first); ended dropped. */
export function orderEvents(events: readonly ApiEvent[]): { live: ApiEvent[]; other: ApiEvent[] } {
  // Timestamps are epoch milliseconds.
  const byRecent = (key: (e: ApiEvent) => number) => (a: ApiEvent, b: ApiEvent) => key(b) - key(a);
  const live = events.filter((e) => e.status === 'live').sort(byRecent((e) => e.liveSince ?? e.updatedAt));
  const other = events.filter((e) => e.status === 'idle' || e.status === 'offline').sort(byRecent((e) => e.updatedAt));
  return { live, other };
}

/** The event's live thumbnail (its replay's poster once not live); removed when there is none. */
export function thumbnail(url: string, className: string): HTMLImageElement {
  const img = el('img', { className, attrs: { src: url, alt: '', loading: 'lazy', decoding: 'async', width: '320', height: '180' } });
  img.addEventListener('error', () => img.remove(), { once: true });
  return img;
}

function card(event: ApiEvent): HTMLElement {
  const link = el('a', { className: 'event-card', attrs: { href: `/watch/${encodeURIComponent(event.slug)}` } }, [
    thumbnail(event.thumbnailUrl, 'event-thumb'),
    el('span', { className: `badge badge-${event.status}`, text: STATUS_LABEL[event.status] ?? event.status }),
    el('span', { className: 'event-title', text: event.title }),
  ]);
  if (event.description !== '') link.append(el('span', { className: 'event-description', text: event.description }));
  return el('li', {}, [link]);
}

function section(heading: string, events: readonly ApiEvent[]): HTMLElement {
  return el('section', { className: 'event-section' }, [
    el('h2', { text: heading }),
    el('ul', { className: 'event-list' }, events.map(card)),
  ]);
}

/** Replaces the container's content with the grouped list, or the empty-state text. */
export function renderEventList(container: HTMLElement, events: readonly ApiEvent[]): void {
  const { live, other } = orderEvents(events);
  const nodes: Node[] = [];
  if (live.length > 0) nodes.push(section('Live now', live));
  if (other.length > 0) nodes.push(section('Upcoming and offline', other));
  if (nodes.length === 0) {
    nodes.push(el('p', { className: 'empty', text: 'Nothing on air right now. Check back soon.' }));
  }
  container.replaceChildren(...nodes);
}
