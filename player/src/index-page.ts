// Entry of index.html: lists events and refreshes the list every few seconds.
import { listEvents } from './api.ts';
import { byId } from './dom.ts';
import { renderEventList } from './event-list.ts';
import './style.css';

const REFRESH_MS = 5000;

/** Starts the home page; returns a function that stops its refresh loop. */
export function startIndexPage(): () => void {
  const list = byId('events');
  const status = byId('list-status');
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const controller = new AbortController();

  const refresh = async (): Promise<void> => {
    try {
      renderEventList(list, await listEvents(undefined, controller.signal));
      status.textContent = '';
      document.body.dataset.state = 'ready';
    } catch (err) {
      if (stopped) return;
      status.textContent = 'Could not load the schedule; retrying…';
      document.body.dataset.state = 'error';
      console.warn('event list failed', err);
    }
    if (!stopped) timer = setTimeout(() => void refresh(), REFRESH_MS);
  };
  void refresh();

  return () => {
    stopped = true;
    controller.abort();
    clearTimeout(timer);
  };
}

startIndexPage();
