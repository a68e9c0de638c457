// Health card of the event page: live bitrate and fps charts fed by the SSE health stream, the viewer count chart
// (viewer history, polled), and the latest ingest details with warnings.
import { el } from './dom.ts';
import type { HealthSample } from './console-api.ts';
import { LineChart } from './console-chart.ts';
import { card, clock, type ConsoleContext } from './console-ui.ts';

/** Viewer history poll period. */
const VIEWERS_POLL_MS = 5000;

/** Builds the card; `viewers` adds a live viewer count point (from the status poll). */
export function healthCard(ctx: ConsoleContext, eventId: string): { root: HTMLElement; viewers(n: number | null): void; destroy(): void } {
  const bitrate = new LineChart({ title: 'Input bitrate', unit: 'kb/s', color: '#60a5fa', minMax: 500 });
  const fps = new LineChart({ title: 'Frame rate', unit: 'fps', color: '#34d399', minMax: 30, digits: 1 });
  const viewers = new LineChart({ title: 'Viewers', unit: '', color: '#fbbf24', minMax: 5 });
  bitrate.root.dataset.chart = 'bitrate';
  fps.root.dataset.chart = 'fps';
  viewers.root.dataset.chart = 'viewers';
  const details = el('dl', { className: 'health-details' });
  const warnings = el('ul', { className: 'warnings', attrs: { 'aria-live': 'polite' } });
  const stream = el('p', { className: 'note health-stream' });
  const root = card(
    'Stream health',
    [el('div', { className: 'charts' }, [bitrate.root, fps.root, viewers.root]), details, warnings, stream],
    'health-card',
  );

  const detail = (name: string, value: string): Node[] => [el('dt', { text: name }), el('dd', { text: value })];
  const show = (s: HealthSample): void => {
    const res = s.width !== null && s.height !== null ? `${s.width}×${s.height}` : '—';
    const codecs = [s.videoCodec, s.audioCodec].filter((c) => c !== null).join(' + ') || '—';
    details.replaceChildren(
      ...detail('Input', `${s.protocol.toUpperCase()} · ${res}`),
      ...detail('Codecs', codecs),
      ...detail('Keyframe every', s.keyframeIntervalSec === null ? '—' : `${s.keyframeIntervalSec.toFixed(1)} s`),
      ...detail(
        'Transcode speed',
        s.transcodeSpeed === null
          ? '—'
          : `${s.transcodeSpeed.toFixed(2)}×${s.transcodeFps === null ? '' : ` (${s.transcodeFps.toFixed(0)} fps)`}`,
      ),
      ...detail('Dropped / late frames', `${s.droppedFrames} / ${s.lateFrames}`),
      ...detail('Updated', clock(s.at)),
    );
    warnings.replaceChildren(
      ...s.warnings.map((w) => el('li', { className: 'warning', text: `⚠ ${w.message}`, attrs: { 'data-code': w.code } })),
    );
  };

  let last: HealthSample | undefined;
  const source = new EventSource(`/api/v1/events/${encodeURIComponent(eventId)}/health/stream`);
  source.addEventListener('health', (e) => {
    let s: HealthSample;
    try {
      s = JSON.parse((e as MessageEvent<string>).data) as HealthSample;
    } catch {
      return;
    }
    bitrate.add([{ at: s.at, value: s.bitrateKbps }]);
    fps.add([{ at: s.at, value: s.fps }]);
    if (last === undefined || s.at >= last.at) {
      last = s;
      show(s);
    }
    stream.textContent = '';
  });
  source.addEventListener('open', () => (stream.textContent = ''));
  source.addEventListener('error', () => {
    stream.textContent = 'Health stream interrupted — reconnecting…';
  });

  let since: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const aborter = new AbortController();
  const poll = async (): Promise<void> => {
    try {
      const samples = await ctx.api.viewerHistory(eventId, since, aborter.signal);
      viewers.add(samples.map((p) => ({ at: p.at, value: p.viewers })));
      const lastSample = samples[samples.length - 1];
      if (lastSample !== undefined) since = lastSample.at;
    } catch {
      /* shown as a flat chart; the status poll reports connectivity */
    }
    if (!stopped) timer = setTimeout(() => void poll(), VIEWERS_POLL_MS);
  };
  void poll();

  return {
    root,
    viewers(n) {
      if (n !== null && since === undefined) viewers.add([{ at: Date.now(), value: n }]);
    },
    destroy() {
      stopped = true;
      aborter.abort();
      clearTimeout(timer);
      source.close();
      bitrate.destroy();
      fps.destroy();
      viewers.destroy();
    },
  };
}
